"""Snakemake script of rule 'summary': binds the rule's input, output and params by name to invdesign.pipeline.filter.summary."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.filter import summary

run(summary, snakemake)  # noqa: F821 (injected by Snakemake)
