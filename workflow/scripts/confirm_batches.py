"""Snakemake script of rule 'confirm_batches': binds the rule's input, output and params by name to invdesign.pipeline.verify.confirm_batches."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import confirm_batches

run(confirm_batches, snakemake)  # noqa: F821 (injected by Snakemake)
