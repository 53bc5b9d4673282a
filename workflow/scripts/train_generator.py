"""Snakemake script for the 'train_generator' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("train_generator", snakemake)  # noqa: F821 (injected by Snakemake)
