"""Snakemake script of rule 'oracle_merge': binds the rule's input, output and params by name to invdesign.pipeline.verify.oracle_merge."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import oracle_merge

run(oracle_merge, snakemake)  # noqa: F821 (injected by Snakemake)
