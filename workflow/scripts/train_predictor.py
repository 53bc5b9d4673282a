"""Snakemake script for the 'train_predictor' step; the logic lives in invdesign.pipeline.steps."""
from invdesign.pipeline.runner import run

run("train_predictor", snakemake)  # noqa: F821 (injected by Snakemake)
