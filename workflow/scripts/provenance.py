"""Snakemake script of rule 'provenance': binds the rule's input, output and params by name to invdesign.pipeline.provenance.write_provenance."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.provenance import write_provenance

run(write_provenance, snakemake)  # noqa: F821 (injected by Snakemake)
