"""Summarise a finished campaign run as a Markdown table for docs/benchmarks.md.

Usage: python bench/campaign_report.py [results_dir] [--wall SECONDS]

Reads results/<campaign>/metrics.json (filter funnel and rates), models/*_metrics.json (training)
and benchmarks/<campaign>/*.tsv (Snakemake's per-rule wall time and peak memory), and prints the
measured numbers with the machine and date, so that numbers in the docs always come from a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from pathlib import Path

import pandas as pd


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = torch.__version__
    except ImportError:
        gpu, tv = "?", "?"
    return f"{cpu}, {os.cpu_count()} cores visible, {gpu}, torch {tv}, Python {platform.python_version()}"


def campaign_rows(results: Path):
    for mpath in sorted(results.glob("*/metrics.json")):
        camp = mpath.parent.name
        m = json.loads(mpath.read_text())
        gen = json.loads((mpath.parent / "models" / "generator_metrics.json").read_text())
        pred = json.loads((mpath.parent / "models" / "predictor_metrics.json").read_text())
        bench = {}
        for tsv in sorted((results / "benchmarks" / camp).glob("*.tsv")):
            b = pd.read_csv(tsv, sep="\t")
            bench[tsv.stem] = (float(b["s"].iloc[0]), float(b["max_rss"].iloc[0]))
        yield camp, m, gen, pred, bench


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default="results")
    ap.add_argument("--wall", type=float, help="wall time of the whole snakemake run, seconds")
    args = ap.parse_args()
    results = Path(args.results)
    print(f"Measured {dt.date.today().isoformat()} on {machine()}.\n")
    if args.wall:
        print(f"Whole `snakemake` run: {args.wall / 60:.1f} min wall time.\n")
    print("| campaign | target | samples | validity | uniqueness | novelty | valid+unique+novel | passing all filters "
          "| passing & predicted in target | predictor test MAE | generator epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = list(campaign_rows(results))
    for camp, m, gen, pred, _ in rows:
        unit = {"gap_ev": "eV", "bulk_modulus_gpa": "GPa"}.get(m["property"], "")
        print(f"| {camp} | {m['property']} {json.dumps(m['target'])} | {m['n_samples']} | {m['validity']:.3f} | "
              f"{m['uniqueness']:.3f} | {m['novelty']:.3f} | {m['n_valid_unique_novel']} | {m['n_candidates']} | "
              f"{m['n_candidates_in_target']} ({100 * m['candidates_in_target_share']:.0f}%) | "
              f"{pred.get('test_mae', float('nan')):.3g} {unit} | {gen['epochs_run']} |")
    print("\nPer-rule wall time (s) / peak RSS (MB), from Snakemake `benchmark:` files:\n")
    rules = ["prepare_dataset", "featurize", "train_generator", "train_predictor", "search", "filter_rank"]
    print("| campaign | " + " | ".join(rules) + " |")
    print("|---|" + "---|" * len(rules))
    for camp, _, _, _, bench in rows:
        cells = [f"{bench[r][0]:.0f} / {bench[r][1]:.0f}" if r in bench else "-" for r in rules]
        print(f"| {camp} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
