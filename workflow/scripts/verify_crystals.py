"""Snakemake script for the 'verify_crystals' step; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("verify_crystals", snakemake)  # noqa: F821 (injected by Snakemake)
