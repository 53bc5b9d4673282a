"""Snakemake script for the report figures; the logic lives in invdesign.pipeline.plots."""
from invdesign.pipeline.runner import run

run("report_figures", snakemake)  # noqa: F821 (injected by Snakemake)
