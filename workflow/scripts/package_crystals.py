"""Snakemake script for the 'package_crystals' step; the logic lives in invdesign.pipeline.verify."""
from invdesign.pipeline.runner import run

run("package_crystals", snakemake)  # noqa: F821 (injected by Snakemake)
