"""Snakemake script of rule 'train_predictor': binds the rule's input, output and params by name to invdesign.pipeline.train.train_predictor."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.train import train_predictor

run(train_predictor, snakemake)  # noqa: F821 (injected by Snakemake)
