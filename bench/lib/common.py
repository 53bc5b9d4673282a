"""Running a bench script: logging and threads, the parsers of its steps, the analysis file with its provenance, and
the campaign a study ran on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

#: the repository root (the scripts' default paths are under it)
ROOT = Path(__file__).resolve().parents[2]


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


def write_analysis(out, res: dict, packages, name: str = "analysis.json", indent: int = 1) -> dict:
    """``res`` with its :func:`provenance` (the versions of ``packages``) as ``out``/``name`` and on stdout; returns
    what was written."""
    res = res | {"provenance": provenance(packages)}
    text = json.dumps(res, indent=indent)
    (Path(out) / name).write_text(text + "\n")
    print(text)
    return res


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

    name = Path(campaign).name
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["propose", "check", "analyse"])
    p.add_argument("--campaign", default=campaign)
    p.add_argument("--campaign-benchmarks", default=f"results/benchmarks/{name}",
                   help="the campaign's Snakemake benchmark files (CPU time of training and sampling)")
    p.add_argument("--configfile", default="config/config.yaml", help="the config the campaign ran with")
    p.add_argument("--out", default=str(ROOT / "bench" / "records" / "baselines" /
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

    return {**git_state(str(ROOT)), "versions": tool_versions(packages)}
