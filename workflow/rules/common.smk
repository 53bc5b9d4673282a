# Config loading and validation, shared names. Runs before any rule is planned.
import os
import sys
from pathlib import Path

import yaml
from snakemake.utils import update_config

from invdesign.config import validate_config
from invdesign.errors import InvdesignError
from invdesign.pipeline.launch import train_resources

_cli_configfiles = [str(p) for p in (getattr(workflow, "overwrite_configfiles", None) or [])]
if not _cli_configfiles:
    # no --configfile given: the default campaign (done here, not with `configfile:`, so that a
    # --configfile replaces the default campaigns instead of being
    # merged into them); values given with --config still win
    _default = yaml.safe_load(Path(workflow.basedir, "config", "config.yaml").read_text())
    update_config(_default, dict(config))
    config.clear()
    config.update(_default)
_config_source = ", ".join(_cli_configfiles) or "config/config.yaml"
try:
    _validated = validate_config(dict(config), source=_config_source)
except InvdesignError as _exc:
    sys.stderr.write(f"invdesign error: {_exc}\n")
    raise SystemExit(1)
config.clear()
config.update(_validated)

CAMPAIGNS = sorted(config["campaigns"])
RESULTS = config["results"].rstrip("/")
THREADS = config["runtime"]["threads"]
# GPUs a training job asks the executor for (SLURM --gpus, Kubernetes nvidia.com/gpu); 0 on CPU-only runs
GPUS = 0 if config["runtime"]["device"] == "cpu" else config["runtime"]["gpus"]
# what a training job asks for: GPUs on one node, or nodes x GPUs for multi-node DDP (SLURM)
TRAIN_RESOURCES = train_resources(GPUS, config["runtime"]["nodes"])
# sampling and latent search run on one GPU when there is one: on a CPU node the full-size crystal diffusion
# model's 10,000 samples take 10 h or more on two cores (docs/benchmarks.md)
SEARCH_RESOURCES = {"gpu": 0 if config["runtime"]["device"] == "cpu" else 1}


wildcard_constraints:
    campaign="|".join(CAMPAIGNS),
    generator="vae|diffusion|ebm",


def chain_priority(wc):
    """Crystal campaigns' jobs go first: their CHGNet check (relax_crystal_batch) is the longest
    single-threaded job and sits at the end of the chain, so starting that chain early lets it run
    beside the molecule training instead of after it (Snakemake picks higher priorities first)."""
    return 1 if config["campaigns"][wc.campaign]["domain"] == "crystals" else 0


def generator_types(campaign):
    return [g["type"] for g in config["campaigns"][campaign]["generators"]]


SAMPLING_ONLY = ("compositions",)  # generator keys that change what is sampled, not the trained model


def generator_params(training=False):
    """The config of the job's generator (a change re-runs its training and sampling only); for training,
    without the sampling-only keys."""
    def params(wc):
        gen = next(g for g in config["campaigns"][wc.campaign]["generators"] if g["type"] == wc.generator)
        return {k: v for k, v in gen.items() if not (training and k in SAMPLING_ONLY)}

    return params


def composition_feedback(wc):
    """The verdict tables a generator's structure prediction chooses its formulas from (none otherwise)."""
    camp = config["campaigns"][wc.campaign]
    gen = next(g for g in camp["generators"] if g["type"] == wc.generator)
    return camp["oracle"]["feedback_from"] if (gen.get("compositions") or {}).get("from_feedback") else []


def campaign_samples(wc):
    return [f"{RESULTS}/{wc.campaign}/samples/samples_{g}.parquet" for g in generator_types(wc.campaign)]


def ood_model(wc):
    """The campaign's graph EBM (its energy scores every candidate for being out of distribution)."""
    return [f"{RESULTS}/{wc.campaign}/models/generator_ebm.pt"] if "ebm" in generator_types(wc.campaign) else []


def campaign_params(*keys):
    """The parts of a campaign's config a rule depends on (a change re-runs that rule)."""
    return lambda wc: {k: config["campaigns"][wc.campaign].get(k) for k in keys}


def log_path(rule_name):
    return f"{RESULTS}/logs/{{campaign}}/{rule_name}.log"


def bench_path(rule_name):
    return f"{RESULTS}/benchmarks/{{campaign}}/{rule_name}.tsv"
