"""Snakemake script of rule 'prepare_dataset': binds the rule's input, output and params by name to invdesign.pipeline.data.prepare_dataset."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.data import prepare_dataset

run(prepare_dataset, snakemake)  # noqa: F821 (injected by Snakemake)
