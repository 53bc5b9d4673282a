"""Summarise a finished campaign run as Markdown tables for docs/benchmarks.md.

Usage: python -m bench.campaign_report [results_dir] [--wall SECONDS]

Reads what the workflow's rules write for each campaign under results/<campaign>/:

* ``metrics.json`` (filter_rank): the filter funnel and rates, overall and per generator (``by_generator``);
* ``models/generator_<type>_metrics.json`` (train_generator, one per generator) and
  ``models/predictor_metrics.json`` (train_predictor, with the held-out test MAE);
* ``oracle/metrics.json`` and ``candidates_verified.csv`` (verify): the oracle's verdicts;
* ``benchmarks/<campaign>/*.tsv``: Snakemake's per-rule wall time and peak memory (one file per job;
  the oracle_batch jobs are summed);

and prints the measured numbers with the machine and date, so that numbers in the docs always come from a run.
A campaign whose oracle step has not run yet is reported without it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
from pathlib import Path

import pandas as pd

from bench.lib.common import provenance

#: the packages whose versions the report records
PACKAGES = ("torch", "torch-geometric", "rdkit", "tblite", "pyscf", "chgnet", "sevenn", "matcalc", "pymatgen",
            "snakemake")
#: per-rule columns, in workflow order; ``{type}`` expands to each generator
RULES = ["prepare_dataset", "featurize", "train_generator_{type}", "train_predictor", "search_{type}", "filter_rank",
         "oracle_prepare", "oracle_batch", "verify"]

#: oracle metrics keys: checked, handled, confirmed in target, predictor-vs-oracle MAE; then extra counts shown
ORACLE_KEYS = {
    "xtb": ("n_xtb_run", "n_xtb_verified", "n_xtb_in_target", "predictor_vs_xtb_mae",
            ("n_xtb_broken_connectivity", "expected_xtb_hits")),
    "chgnet": ("n_checked", "n_relaxed", "n_stable_eos_in_target", "eos_vs_predictor_mae_gpa",
               ("n_stable", "n_eos", "n_relaxed_onto_known", "n_sun_eos_in_target")),
}


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


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def campaign_rows(results: Path):
    """(campaign, filter metrics, {generator type: training metrics}, predictor metrics, oracle metrics or None,
    verified table or None, {benchmark name: (seconds, peak RSS MB, jobs)}) per campaign with a metrics.json."""
    for mpath in sorted(results.glob("*/metrics.json")):
        root = mpath.parent
        camp = root.name
        m = json.loads(mpath.read_text())
        gens = {p.name[len("generator_"):-len("_metrics.json")]: json.loads(p.read_text())
                for p in sorted((root / "models").glob("generator_*_metrics.json"))}
        pred = _json(root / "models" / "predictor_metrics.json") or {}
        oracle = _json(root / "oracle" / "metrics.json")
        vpath = root / "candidates_verified.csv"
        verified = pd.read_csv(vpath) if vpath.exists() else None
        bench: dict[str, tuple[float, float, int]] = {}
        for tsv in sorted((results / "benchmarks" / camp).glob("*.tsv")):
            b = pd.read_csv(tsv, sep="\t")
            name = "oracle_batch" if re.fullmatch(r"oracle_batch_\d+", tsv.stem) else tsv.stem
            s, rss, jobs = float(b["s"].iloc[0]), float(b["max_rss"].iloc[0]), 1
            if name in bench:  # the oracle's batch jobs: total time, largest peak, number of jobs
                s, rss, jobs = bench[name][0] + s, max(bench[name][1], rss), bench[name][2] + 1
            bench[name] = (s, rss, jobs)
        yield camp, m, gens, pred, oracle, verified, bench


def _f(v, fmt=".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="?", default="results")
    ap.add_argument("--wall", type=float, help="wall time of the whole snakemake run, seconds")
    args = ap.parse_args(argv)
    results = Path(args.results)
    print(f"Measured {dt.date.today().isoformat()} on {machine()}.\n")
    prov = provenance(PACKAGES)
    changes = " (with uncommitted changes)" if prov["git_dirty"] else ""
    print(f"Reported at commit {prov['git_commit']}{changes}; "
          + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + ".\n")
    if args.wall:
        print(f"Whole `snakemake` run: {args.wall / 60:.1f} min wall time.\n")
    rows = list(campaign_rows(results))
    if not rows:
        raise SystemExit(f"no results/<campaign>/metrics.json under {results}; run the workflow first")
    units = {"gap_ev": "eV", "bulk_modulus_gpa": "GPa", "shear_modulus_gpa": "GPa", "homo_ev": "eV", "lumo_ev": "eV"}

    print("| campaign | target | samples | validity | uniqueness | novelty | valid+unique+novel | passing all filters "
          "| passing & predicted in target | predictor test MAE | generator epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for camp, m, gens, pred, *_ in rows:
        unit = units.get(m["property"], "")
        epochs = ", ".join(f"{t} {g['epochs_run']}" for t, g in gens.items()) or "-"
        target = {k: v for k, v in m["target"].items() if v is not None}  # (older runs wrote every key)
        print(f"| {camp} | {m['property']} {json.dumps(target)} | {m['n_samples']} | {m['validity']:.3f} | "
              f"{m['uniqueness']:.3f} | {m['novelty']:.3f} | {m['n_valid_unique_novel']} | {m['n_candidates']} | "
              f"{m['n_candidates_in_target']} ({100 * m['candidates_in_target_share']:.0f}%) | "
              f"{_f(pred.get('test_mae'))} {unit} | {epochs} |")

    print("\nPer generator (filter funnel from metrics.json `by_generator`, training from "
          "models/generator_<type>_metrics.json):\n")
    print("| campaign | generator | samples | validity | raw validity | uniqueness | novelty | passing | "
          "passing & in target | epochs (best) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for camp, m, gens, *_ in rows:
        by = m.get("by_generator", {})
        for t in sorted(set(by) | set(gens)):
            b, g = by.get(t, {}), gens.get(t, {})
            print(f"| {camp} | {t} | {_f(b.get('n_samples'))} | {_f(b.get('validity'), '.3f')} | "
                  f"{_f(b.get('raw_validity'), '.3f')} | {_f(b.get('uniqueness'), '.3f')} | "
                  f"{_f(b.get('novelty'), '.3f')} | {_f(b.get('n_candidates'))} | "
                  f"{_f(b.get('n_candidates_in_target'))} | {_f(g.get('epochs_run'))} ({_f(g.get('best_epoch'))}) | "
                  f"{_f(g.get('seconds'), '.0f')} |")

    checked = [r for r in rows if r[4] is not None]
    if checked:
        print("\nOracle (oracle/metrics.json, candidates_verified.csv):\n")
        print("| campaign | oracle | verified rows | checked | handled | oracle errors | confirmed in target | "
              "predictor vs oracle MAE | more |")
        print("|---|---|---|---|---|---|---|---|---|")
        for camp, m, _, _, o, verified, _ in checked:
            name = o.get("oracle", "?")
            n_chk, n_ok, n_hit, mae, extra = ORACLE_KEYS.get(name, ("n_checked", "n_relaxed", "", "", ()))
            more = ", ".join(f"{k.removeprefix('n_')} {_f(o[k])}" for k in extra if k in o)
            if not o.get("property_measured", True):
                more = (more + "; " if more else "") + f"{m['property']} not measured by {name}"
            print(f"| {camp} | {name} | {len(verified) if verified is not None else '-'} | {_f(o.get(n_chk))} | "
                  f"{_f(o.get(n_ok))} | {_f(o.get('n_oracle_errors'))} | {_f(o.get(n_hit))} | "
                  f"{_f(o.get(mae))} {units.get(m['property'], '')} | {more or '-'} |")

    print("\nPer-rule wall time (s) / peak RSS (MB), from Snakemake `benchmark:` files "
          "(oracle_batch: time summed over its (N) jobs, largest peak):\n")
    names: list[str] = []
    present = {b for *_, bench in rows for b in bench}
    for rule in RULES:
        pattern = re.escape(rule).replace(re.escape("{type}"), r"\w+")
        names += sorted(b for b in present if re.fullmatch(pattern, b) and b not in names)
    names += sorted(present - set(names))
    print("| campaign | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for camp, *_, bench in rows:
        cells = [f"{bench[n][0]:.0f} / {bench[n][1]:.0f}" + (f" ({bench[n][2]})" if n == "oracle_batch" else "")
                 if n in bench else "-" for n in names]
        print(f"| {camp} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
