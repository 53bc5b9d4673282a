"""Snakemake script of rule 'oracle_batch': binds the rule's input, output and params by name to invdesign.pipeline.verify.oracle_batch."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import oracle_batch

run(oracle_batch, snakemake)  # noqa: F821 (injected by Snakemake)
