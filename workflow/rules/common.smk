# Config loading and validation, shared names. Runs before any rule is planned.
import sys
from pathlib import Path

import yaml
from snakemake.utils import update_config

from invdesign.config import validate_config
from invdesign.errors import InvdesignError

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


wildcard_constraints:
    campaign="|".join(CAMPAIGNS),


def campaign_params(*keys):
    """The parts of a campaign's config a rule depends on (a change re-runs that rule)."""
    return lambda wc: {k: config["campaigns"][wc.campaign].get(k) for k in keys}


def log_path(rule_name):
    return f"{RESULTS}/logs/{{campaign}}/{rule_name}.log"


def bench_path(rule_name):
    return f"{RESULTS}/benchmarks/{{campaign}}/{rule_name}.tsv"
