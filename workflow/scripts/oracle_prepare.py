"""Snakemake script of rule 'oracle_prepare': binds the rule's input, output and params by name to invdesign.pipeline.verify.oracle_prepare."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import oracle_prepare

run(oracle_prepare, snakemake)  # noqa: F821 (injected by Snakemake)
