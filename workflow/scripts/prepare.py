"""Snakemake script for the 'prepare' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("prepare", snakemake)  # noqa: F821 (injected by Snakemake)
