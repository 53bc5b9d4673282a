"""Checks for bench/slurm_local.sh, read from the SLURM controller's job records (``scontrol show job``).

    python -m bench.slurm_local_check campaign RESULTS          the tiny campaign's jobs asked for what they should
    python -m bench.slurm_local_check timelimit-config DIR      writes DIR/config.yaml for the time-limit phase
    python -m bench.slurm_local_check timelimit DIR             the killed training job resumed and finished

Prints one ``ok``/``FAIL`` line per claim; exits 1 when one fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

EPOCHS = 1200


def slurm_jobs() -> list[dict]:
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True).stdout
    jobs = []
    for line in out.splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        rule, _, wildcards = f.get("Comment", "").removeprefix("rule_").partition("_wildcards_")
        jobs.append({"id": int(f["JobId"]), "rule": rule, "wildcards": wildcards, "state": f.get("JobState"),
                     "nodes": int(f.get("NumNodes", "0")), "per_node": f.get("TresPerNode", ""),
                     "per_job": f.get("TresPerJob", ""), "run_time": f.get("RunTime"),
                     "time_limit": f.get("TimeLimit")})
    return sorted(jobs, key=lambda j: j["id"])


class Checks:
    def __init__(self):
        self.ok = True

    def __call__(self, cond, msg: str) -> None:
        print(("ok   " if cond else "FAIL ") + msg)
        self.ok &= bool(cond)


def campaign(results: Path) -> bool:
    jobs = slurm_jobs()  # the cluster is new for each run of slurm_local.sh, and this phase comes first
    check = Checks()
    train = [j for j in jobs if j["rule"] in ("train_generator", "train_predictor")]
    search = [j for j in jobs if j["rule"] == "search"]
    relax = [j for j in jobs if j["rule"] == "oracle_batch"]
    check(jobs and all(j["state"] == "COMPLETED" for j in jobs), f"{len(jobs)} SLURM jobs, all COMPLETED")
    check(len(train) == 8 and all(j["nodes"] == 2 and j["per_node"] == "gres:gpu:1" for j in train),
          f"{len(train)} training jobs, each on 2 nodes with gres:gpu:1 per node")
    check(len(search) == 6 and all(j["nodes"] == 1 and j["per_job"] == "gres:gpu:1" for j in search),
          f"{len(search)} search jobs, each with one GPU")
    check(len(relax) == 2, f"{len(relax)} CHGNet batch jobs (checkpoint fan-out)")
    logs = sorted((results / "logs").glob("*/train_*.log"))
    check(len(logs) == 8 and all("x 2 processes (DDP)" in p.read_text() for p in logs),
          f"{len(logs)} training logs, each from 2 DDP processes")
    check((results / "summary.csv").exists(), f"{results}/summary.csv written")
    return check.ok


def timelimit_config(out: Path) -> None:
    cfg = yaml.safe_load(Path("config/tests/tiny.yaml").read_text())
    mol = cfg["campaigns"]["tiny_mol"]
    mol["generators"] = [dict(mol["generators"][0], epochs=EPOCHS, patience=None, max_minutes=None)]
    cfg.update(campaigns={"tiny_mol": mol}, results=str(out),
               runtime={"device": "cpu", "threads": 1, "checkpoint_minutes": 0.25})
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def timelimit(out: Path) -> bool:
    jobs = [j for j in slurm_jobs() if j["rule"] == "train_generator" and j["time_limit"] == "00:01:00"]
    for j in jobs:
        print(f"  SLURM job {j['id']}: {j['state']} after {j['run_time']} (limit {j['time_limit']})")
    metrics = json.loads((out / "tiny_mol/models/generator_vae_metrics.json").read_text())
    log = (out / "logs/tiny_mol/train_generator_vae.log").read_text()
    check = Checks()
    check(len(jobs) >= 2 and all(j["state"] == "TIMEOUT" for j in jobs[:-1]) and jobs[-1]["state"] == "COMPLETED",
          f"{len(jobs)} attempts: {len(jobs) - 1} killed at the time limit, then one completed")
    check(metrics["resumed_after_epoch"] > 0 and "resumed from" in log,
          f"the last attempt resumed after epoch {metrics['resumed_after_epoch']}")
    check(metrics["epochs_run"] == EPOCHS,
          f"training ran to epoch {metrics['epochs_run']} of {EPOCHS} ({metrics['seconds']:.0f} s of training in all)")
    check(not (out / "tiny_mol/models/generator_vae.pt.resume").exists(), "the checkpoint was removed")
    return check.ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["campaign", "timelimit-config", "timelimit"])
    ap.add_argument("path", type=Path, help="the results folder (campaign) or the time-limit phase's folder")
    args = ap.parse_args(argv)
    what, path = args.what, args.path
    if what == "timelimit-config":
        timelimit_config(path)
        return 0
    return 0 if {"campaign": campaign, "timelimit": timelimit}[what](path) else 1


if __name__ == "__main__":
    sys.exit(main())
