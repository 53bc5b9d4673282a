"""Snakemake script of rule 'featurize': binds the rule's input, output and params by name to invdesign.pipeline.featurize.featurize."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.featurize import featurize

run(featurize, snakemake)  # noqa: F821 (injected by Snakemake)
