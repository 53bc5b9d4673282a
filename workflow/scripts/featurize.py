"""Snakemake script for the 'featurize' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("featurize", snakemake)  # noqa: F821 (injected by Snakemake)
