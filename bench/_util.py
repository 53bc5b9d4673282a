"""Set-up shared by the bench scripts (run as scripts: ``python bench/<name>.py``)."""

from __future__ import annotations

import logging
from pathlib import Path


def setup_run(args):
    """Logging, torch threads, the output folder and the device; returns (out folder, torch device)."""
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_or_analyse_parser(doc: str):
    """The parser of a bench script with a long ``run`` (records appended as they come) and an ``analyse`` step."""
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["run", "analyse"])
    return p


def run_or_analyse(parser, argv, run, analyse):
    """Parse, log at INFO (the package at WARNING), then ``run(args)`` or ``analyse(args)``."""
    return run_step(parser, argv, {"run": run, "analyse": analyse})


def write_analysis(out, res: dict) -> dict:
    """``res`` as ``out``/analysis.json (indented) and on stdout; returns it."""
    import json

    text = json.dumps(res, indent=1)
    (Path(out) / "analysis.json").write_text(text + "\n")
    print(text)
    return res


def poisson_rate_ci(k: int, exposure: float, level: float = 0.95) -> list[float]:
    """Exact (Garwood) interval of a rate: ``k`` events over ``exposure`` (e.g. hits per CPU-hour)."""
    from scipy.stats import chi2

    if not exposure:
        return [float("nan"), float("nan")]
    a = 1 - level
    lo = chi2.ppf(a / 2, 2 * k) / 2 if k else 0.0
    hi = chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return [float(lo / exposure), float(hi / exposure)]


def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value of k1 of n1 against k2 of n2 (two arms' hit counts)."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])


def campaign_settings(campaign, configfile: str):
    """The settings of ``campaign`` (a results folder named after it) in the config file it ran with."""
    from invdesign.config import Config, load_config

    cfg = Config.parse(load_config(configfile), source=configfile)
    return cfg.campaigns[Path(campaign).name]


def campaign_cpu_seconds(campaign_benchmarks, rules) -> float | None:
    """Sum of the ``cpu_time`` of a campaign's Snakemake benchmark files of ``rules`` (None if one is missing)."""
    import pandas as pd

    total = 0.0
    for rule in rules:
        path = Path(campaign_benchmarks) / f"{rule}.tsv"
        if not path.exists():
            return None
        total += float(pd.read_csv(path, sep="\t")["cpu_time"].iloc[-1])
    return total


def baselines_parser(doc: str, campaign: str, arms):
    """The common options of a matched-baselines script (``propose``, ``check``, ``analyse`` of one campaign)."""
    import argparse

    root = Path(__file__).resolve().parents[1]
    name = Path(campaign).name
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["propose", "check", "analyse"])
    p.add_argument("--campaign", default=campaign)
    p.add_argument("--campaign-benchmarks", default=f"results/benchmarks/{name}",
                   help="the campaign's Snakemake benchmark files (CPU time of training and sampling)")
    p.add_argument("--configfile", default="config/config.yaml", help="the config the campaign ran with")
    p.add_argument("--out", default=str(root / "bench" / "records" / "baselines" /
                                        {"qm9_gap": "molecules", "mp_bulk": "crystals"}.get(name, name)))
    p.add_argument("--arms", nargs="+", choices=list(arms), default=list(arms))
    p.add_argument("--seed", type=int, default=0)
    return p


def run_step(parser, argv, steps: dict):
    """Parse, log at INFO (the package at WARNING), then run the chosen step."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("invdesign").setLevel(logging.WARNING)
    return steps[args.what](args)


def provenance(packages) -> dict:
    """What an analysis was made with: the git commit of the project (and whether tracked files had changes) and the
    installed version of each package ('not installed' where missing), as a campaign's provenance.json has them."""
    from invdesign.pipeline.provenance import git_state, tool_versions

    return {**git_state(str(Path(__file__).parent)), "versions": tool_versions(packages)}
