"""Snakemake script for the 'calibrate_xtb' step; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("calibrate_xtb", snakemake)  # noqa: F821 (injected by Snakemake)
