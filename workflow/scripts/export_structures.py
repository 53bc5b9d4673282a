"""Snakemake script of rule 'export_structures': binds the rule's input, output and params by name to invdesign.pipeline.verify.export_structures."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.verify import export_structures

run(export_structures, snakemake)  # noqa: F821 (injected by Snakemake)
