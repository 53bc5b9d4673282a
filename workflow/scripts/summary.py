"""Snakemake script for the 'summary' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("summary", snakemake)  # noqa: F821 (injected by Snakemake)
