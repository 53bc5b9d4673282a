"""Snakemake script for the 'relax_crystal_batch' step; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("relax_crystal_batch", snakemake)  # noqa: F821 (injected by Snakemake)
