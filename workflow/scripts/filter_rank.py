"""Snakemake script of rule 'filter_rank': binds the rule's input, output and params by name to invdesign.pipeline.filter.filter_rank."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.filter import filter_rank

run(filter_rank, snakemake)  # noqa: F821 (injected by Snakemake)
