"""Snakemake script for the 'filter' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("filter", snakemake)  # noqa: F821 (injected by Snakemake)
