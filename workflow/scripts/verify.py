"""Snakemake script of rule 'verify': binds the rule's input, output and params by name to invdesign.pipeline.verify.verify."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import verify

run(verify, snakemake)  # noqa: F821 (injected by Snakemake)
