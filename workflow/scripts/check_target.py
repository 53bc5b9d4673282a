"""Snakemake script of rule 'check_target': binds the rule's input, output and params by name to invdesign.pipeline.data.check_target."""
from invdesign.pipeline.data import check_target
from invdesign.pipeline.glue import run

run(check_target, snakemake)  # noqa: F821 (injected by Snakemake)
