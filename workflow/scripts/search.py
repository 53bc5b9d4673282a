"""Snakemake script for the 'search' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("search", snakemake)  # noqa: F821 (injected by Snakemake)
