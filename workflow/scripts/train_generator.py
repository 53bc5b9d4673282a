"""Snakemake script of rule 'train_generator': binds the rule's input, output and params by name to invdesign.pipeline.train.train_generator."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.train import train_generator

run(train_generator, snakemake)  # noqa: F821 (injected by Snakemake)
