"""Snakemake script of rule 'search': binds the rule's input, output and params by name to invdesign.pipeline.search.search."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.search import search

run(search, snakemake)  # noqa: F821 (injected by Snakemake)
