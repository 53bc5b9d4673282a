"""Snakemake script for the 'crystal_batches' checkpoint; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("crystal_batches", snakemake)  # noqa: F821 (injected by Snakemake)
