"""Snakemake script of rule 'report_landing': binds the rule's input, output and params by name to invdesign.pipeline.landing.landing_page."""
from invdesign.pipeline.glue import run
from invdesign.pipeline.landing import landing_page

run(landing_page, snakemake)  # noqa: F821 (injected by Snakemake)
