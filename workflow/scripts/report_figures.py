"""Snakemake script of rule 'report_figures': binds the rule's input, output and params by name to invdesign.pipeline.report.report_figures."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.report import report_figures

run(report_figures, snakemake)  # noqa: F821 (injected by Snakemake)
