"""Snakemake script for the 'verify_molecules' step; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("verify_molecules", snakemake)  # noqa: F821 (injected by Snakemake)
