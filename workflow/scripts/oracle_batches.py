"""Snakemake script of rule 'oracle_batches': binds the rule's input, output and params by name to invdesign.pipeline.verify.oracle_batches."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import oracle_batches

run(oracle_batches, snakemake)  # noqa: F821 (injected by Snakemake)
