"""The crystal committee's elastic measures against the Materials Project (issue #33).

Random MP cells (numpy seed fixed, at most ``--max-sites`` sites) are relaxed with the oracle's own path and
settings (CHGNet: ``relax``; SevenNet: the committee's ``relax_ase`` of the CHGNet-relaxed cell) and get the elastic
tensor of each potential (matcalc ``ElasticityCalc`` via ``invdesign.oracles.elasticity``): VRH shear and bulk
moduli and Chen's Vickers hardness, against MP's PBE values (plan: bench/records/committee_shear/PLAN.md).

    python -m bench.committee_shear run [--n 60]     # one JSON line per cell in records.jsonl (resumable)
    python -m bench.committee_shear analyse          # analysis.json: n, MAE, bias, P95, Spearman per potential
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from bench.lib.common import run_or_analyse, run_or_analyse_parser, write_analysis

log = logging.getLogger("bench")
DATA = "mp-binary-pbe-elasticity-2025.1.json.gz"
POTENTIALS = ("chgnet", "sevennet")
QUANTITIES = {"g": "shear_modulus_gpa", "k": "bulk_modulus_gpa", "hardness": "vickers_hardness_gpa"}
#: the targets of config/mp_shear.yaml, config/materials_bulk_modulus.yaml and config/mp_hardness.yaml (GPa)
TARGETS = {"g": 150.0, "k": 250.0, "hardness": 20.0}
#: the packages whose versions the analysis records
PACKAGES = ("chgnet", "sevenn", "matcalc", "pymatgen", "torch")


def sample(path: Path, max_sites: int, seed: int) -> list[dict]:
    """The MP items with at most ``max_sites`` sites, in a random order (``seed``)."""
    with gzip.open(path, "rt") as fh:
        pool = [it for it in json.load(fh) if len(it["structure"]["sites"]) <= max_sites]
    return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]


def measure(structure, potential: str, calculator, settings, relax_ions: bool) -> tuple[dict, object]:
    """Relax ``structure`` the oracle's way for ``potential`` and fit its elastic tensor: (record part, relaxed)."""
    from invdesign.oracles.committee import relax_ase
    from invdesign.oracles.relax import relax
    from invdesign.oracles.elasticity import elastic_moduli

    t0 = time.monotonic()
    if potential == "chgnet":
        row = relax([structure], fmax=settings.fmax, steps=settings.max_steps, calculator=calculator, log_every=0)[0]
    else:
        row = relax_ase([structure], calculator, fmax=settings.fmax, steps=settings.max_steps)[0]
    fit = elastic_moduli([row["structure"]], calculator, fmax=settings.fmax, relax_ions=relax_ions,
                         max_gpa=math.inf)[0]  # raw values: analyse applies the oracle's elastic_max_gpa
    part = {f"{potential}_{k}": fit[k] for k in ("g", "k", "hardness", "r2")}
    part |= {f"{potential}_error": row["error"] or fit["error"], f"{potential}_converged": row["converged"],
             f"{potential}_seconds": round(time.monotonic() - t0, 1)}
    return part, row["structure"]


def run(args) -> None:
    import torch
    from pymatgen.core import Structure

    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.oracles.committee import load_sevennet
    from invdesign.oracles.potentials import load_chgnet
    from invdesign.properties import chen_vickers_hardness

    torch.set_num_threads(1)
    settings = ChgnetOracleSettings()
    relax_ions = settings.elastic_relax_ions if args.relax_ions == "settings" else args.relax_ions == "true"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    done = {json.loads(line)["mp_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    items = sample(Path(args.data), args.max_sites, args.seed)[:args.n]
    calcs = {"chgnet": load_chgnet(use_device="cpu").calculator, "sevennet": load_sevennet(settings.committee.model)}
    for i, it in enumerate(items, start=1):
        if it["mp_id"] in done:
            continue
        k, g = it["bulk_modulus_vrh"], it["shear_modulus_vrh"]
        rec = {"rank": i - 1, "mp_id": it["mp_id"], "formula": it["formula"], "num_sites": len(it["structure"]["sites"]),
               "mp_g": g, "mp_k": k, "mp_hardness": chen_vickers_hardness(k, g), "relax_ions": relax_ions}
        cell = Structure.from_dict(it["structure"])
        part, cell = measure(cell, "chgnet", calcs["chgnet"], settings, relax_ions)
        rec |= part
        rec |= measure(cell, "sevennet", calcs["sevennet"], settings, relax_ions)[0] if cell is not None else \
            {"sevennet_error": "no CHGNet-relaxed cell"}
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.info("%d/%d %s %s: G MP %.0f CHGNet %.0f SevenNet %s GPa [%.0f + %s s]", i, len(items), rec["mp_id"],
                 rec["formula"], g, rec["chgnet_g"], rec.get("sevennet_g"), rec["chgnet_seconds"],
                 rec.get("sevennet_seconds"))


def errors_summary(err: np.ndarray, ref: np.ndarray, val: np.ndarray, rng) -> dict:
    from scipy.stats import spearmanr

    a = np.abs(err)
    boot = [a[rng.integers(0, len(a), len(a))].mean() for _ in range(2000)]
    return {"n": int(len(err)), "mae_gpa": float(a.mean()), "mean_signed_error_gpa": float(err.mean()),
            "abs_error_p95_gpa": float(np.percentile(a, 95)), "rmse_gpa": float(np.sqrt((err ** 2).mean())),
            "mae_ci95_gpa": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "spearman_r": float(spearmanr(val, ref).statistic)}


def threshold_verdicts(val: np.ndarray, ref: np.ndarray, threshold: float) -> dict:
    """The verdict "at least ``threshold``" by the potential against MP's (not in the plan: the configs' targets)."""
    v, r = val >= threshold, ref >= threshold
    return {"threshold_gpa": threshold, "n_mp_at_least": int(r.sum()), "n_potential_at_least": int(v.sum()),
            "n_both": int((v & r).sum()), "n_agree": int((v == r).sum()), "n": int(len(v))}


def potential_stats(d, p: str, ok: np.ndarray) -> dict:
    """Errors against MP of potential ``p`` on the cells ``ok``, per quantity, with the signed errors."""
    res: dict = {"n_failed": int((~ok).sum()), "signed_errors_gpa": {}}
    for q, name in QUANTITIES.items():
        v, ref = d.loc[ok, f"{p}_{q}"].to_numpy(float), d.loc[ok, f"mp_{q}"].to_numpy(float)
        res[name] = errors_summary(v - ref, ref, v, np.random.default_rng(0)) | {
            "median_abs_error_gpa": float(np.median(np.abs(v - ref))),
            "at_target": threshold_verdicts(v, ref, TARGETS[q])} | (
            {"median_ratio_to_mp": float(np.median(v / ref))} if q != "hardness" else {})  # H_V can be <= 0
        res["signed_errors_gpa"][name] = [round(float(e), 2) for e in v - ref]
    return res


def committee_stats(d, both: np.ndarray) -> dict:
    """SevenNet - CHGNet on the cells both measured."""
    return {name: errors_summary(d.loc[both, f"sevennet_{q}"].to_numpy(float) - d.loc[both, f"chgnet_{q}"].to_numpy(
        float), d.loc[both, f"chgnet_{q}"].to_numpy(float), d.loc[both, f"sevennet_{q}"].to_numpy(float),
        np.random.default_rng(0)) for q, name in QUANTITIES.items()}


def analyse(args) -> dict:
    """As planned (every finite value), and as the oracle judges since elastic_max_gpa (a G or K above it is an
    error: added after SevenNet gave UBi 27,372 GPa in this run)."""
    import pandas as pd

    from invdesign.config.oracles import ChgnetOracleSettings

    out = Path(args.out)
    d = pd.read_json(out / "records.jsonl", lines=True)
    cap = ChgnetOracleSettings().elastic_max_gpa
    res: dict = {"n_cells": int(len(d)), "max_sites": args.max_sites, "seed": args.seed,
                 "relax_ions": sorted({bool(x) for x in d["relax_ions"]}), "elastic_max_gpa": cap,
                 "seconds_per_cell_median": {p: float(d[f"{p}_seconds"].median()) for p in POTENTIALS},
                 "errors": {p: [e for e in d[f"{p}_error"].fillna("") if e] for p in POTENTIALS}}
    for view, limit in (("as_planned", math.inf), ("with_oracle_cap", cap)):
        finite = {p: np.isfinite(pd.to_numeric(d[f"{p}_g"], errors="coerce").to_numpy(float)) for p in POTENTIALS}
        ok = {p: finite[p] & (np.fmax(d[f"{p}_g"], d[f"{p}_k"]).to_numpy(float) <= limit) for p in POTENTIALS}
        res[view] = {p: potential_stats(d, p, ok[p]) for p in POTENTIALS}
        res[view]["committee_sevennet_minus_chgnet"] = committee_stats(d, ok["chgnet"] & ok["sevennet"])
    return write_analysis(out, res, PACKAGES)


def main(argv=None) -> None:
    p = run_or_analyse_parser(__doc__)
    p.add_argument("--out", default="bench/records/committee_shear")
    p.add_argument("--data", default=str(Path(os.environ.get("INVDESIGN_DATA_MIRROR", "/work/shared/data")) / DATA))
    p.add_argument("--n", type=int, default=60, help="cells of the random order to run")
    p.add_argument("--max-sites", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relax-ions", choices=["settings", "true", "false"], default="settings",
                   help="override oracle.elastic_relax_ions (for the one-cell timing)")
    run_or_analyse(p, argv, run, analyse)


if __name__ == "__main__":
    main()
