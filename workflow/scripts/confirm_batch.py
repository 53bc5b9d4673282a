"""Snakemake script of rule 'confirm_batch': binds the rule's input, output and params by name to invdesign.pipeline.verify.confirm_batch."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import confirm_batch

run(confirm_batch, snakemake)  # noqa: F821 (injected by Snakemake)
