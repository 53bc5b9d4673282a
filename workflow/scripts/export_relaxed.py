"""Snakemake script of rule 'export_relaxed': binds the rule's input, output and params by name to invdesign.pipeline.verify.export_relaxed."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import export_relaxed

run(export_relaxed, snakemake)  # noqa: F821 (injected by Snakemake)
