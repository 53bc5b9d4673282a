"""Snakemake script of rule 'known_reference': binds the rule's input, output and params by name to invdesign.pipeline.data.known_reference."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.data import known_reference

run(known_reference, snakemake)  # noqa: F821 (injected by Snakemake)
