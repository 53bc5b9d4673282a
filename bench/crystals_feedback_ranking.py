"""Targeted crystal search, protocol v3: pick candidates by what the CHGNet oracle has said so far.

    python -m bench.crystals_feedback_ranking rank --batches bench/out/crystals bench/out/crystals_seed{2,3,...} \
        --out bench/out/crystals_v3
    python -m bench.crystals_feedback_ranking evaluate --out bench/out/crystals_v3 --lane 0 --threads 1 &
    python -m bench.crystals_feedback_ranking evaluate --out bench/out/crystals_v3 --lane 1 --threads 1 &
    python -m bench.crystals_feedback_ranking analyse --out bench/out/crystals_v3 --until 2026-11-24T05:10:00+00:00
    # protocol v4: compositions from the verdicts, structures from the diffusion model, same lanes and look
    python -m bench.crystals_feedback_ranking propose --out bench/out/crystals_v4 --after bench/out/crystals_v3

``rank``: pools the saved targeted samples of the given batch folders (written by
``bench/crystals_generators.py``: the diffusion model's samples toward K >= 300 GPa) and keeps the valid,
unique, novel ones that no earlier check evaluated and whose reduced formula no earlier check evaluated (so
every new hit is a new formula): ``pool.parquet``. The earlier checks' per-candidate CHGNet verdicts (stable
or not, EOS bulk modulus of the stable ones) go to ``earlier.parquet``. ``ranker.json`` holds a
leave-one-batch-out check of :class:`invdesign.search.feedback.OracleFeedbackRanker` on those verdicts, its
weights and its first picks.

``propose`` (protocol v4): a pool made by structure prediction instead. The ranker, refitted on the earlier
verdicts plus those of ``--after``, names the elements that raise the oracle's modulus; the diffusion model
generates lattice and coordinates for every unchecked binary formula of those elements (types given); the
valid, unique, novel cells with the predictor's value go to ``pool.parquet``, all verdicts so far to
``earlier.parquet``, the summary to ``propose.json``.

``evaluate``: adaptive, one lane per thread. Before each pick the ranker is refitted on the earlier verdicts
plus every verdict of this study so far (all lanes); the best-scored formula no lane has claimed is claimed
and CHGNet-checked exactly as protocol v2 checks a batch (cell scaled to its composition's additive volume,
relaxation, hull of the training phases + elemental references, EOS of the stable ones). Every verdict is
appended to ``lane{i}.jsonl`` at once, so a stopped lane loses at most the cell in hand. The lanes' bookkeeping
lives outside the study folder, in ``--lane-dir`` (default ``bench/out/lanes/<name of --out>``): ``claims/`` and
``claims_screening/`` (one exclusive file per cell a lane took; a cell with a verdict in the study folder counts
as taken without one), and a ``STOP`` file there (or in the study folder) ends the lanes after their current cell.

Every check is the workflow's CHGNet oracle (``ChgnetOracle``, ``invdesign.pipeline.verify.make_oracle``) with
the bench's settings (``bench.lib.crystals.ORACLE_CFG``: fmax 0.1 eV/A, 300 steps, E_hull <= 0.1 eV/atom); its
``dataset`` is the hull's reference phases and the known set (the training cells; for the screening arm those
outside the arm).

``screen`` (protocol v6): the study's own screening arm, training cells in a seeded random order, checked
as the first screening arm was (``screen{i}.jsonl``); ``--arm-size`` stops the lanes of an arm at its planned
size. ``release``: frees the claims left without a verdict by a stopped session, before the next one starts.

``analyse``: counts every verdict finished by ``--until`` (a time fixed in advance, so where the lanes stand
cannot pick the result). Hits (stable, EOS K >= target) are checked for novelty after relaxation against the
training cells; one-sided Fisher's exact test against the screening baseline of ``--screening`` (or, with
``--screening-arm``, the screening verdicts in the same folder, at the alpha the v6 spending rule allows).

    # protocol v6 (several sessions; see docs/benchmarks.md)
    python -m bench.crystals_feedback_ranking evaluate --out bench/records/crystals_v6 --lane 0 --warmup 10 --arm-size 300 &
    python -m bench.crystals_feedback_ranking screen --out bench/records/crystals_v6 --lane 0 --arm-size 300 &
    python -m bench.crystals_feedback_ranking analyse --out bench/records/crystals_v6 --screening-arm --arm-size 300 \
        --until <the session's stop> --spent <alpha spent by earlier looks>

``analyse`` reads only the verdict files of ``--out`` and the training cells of ``--models`` (its
``dataset.parquet``, prepared there from the MP mirror when missing); it needs no weights and no lane files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.lib.common import ROOT, provenance, setup_run, write_analysis
from bench.lib.crystals import campaign, known_cells, label_hits, load, make_chgnet, predicted, quality, \
    targeted_order
from bench.lib.stats import compare_rates

log = logging.getLogger("bench")
#: the packages whose versions the summaries and the analysis record
PACKAGES = ("pymatgen", "chgnet", "matcalc", "scipy", "torch")

VERDICT_COLUMNS = ["batch", "formula", "pred", "stable", "eos_bulk_modulus_gpa", "hit"]


def _fractions(formula: str) -> dict[str, float]:
    from invdesign.chem.crystals import element_fractions

    return element_fractions(formula)


def _batch(folder: Path, predictor, meta) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(samples with the predictor's value and an ``evaluated`` flag, per-candidate records of the earlier check)."""
    from invdesign.artifacts import read_table

    res = json.loads((folder / "results.json").read_text())["generators"]["diffusion"]["targeted"]
    samples = read_table(folder / "samples_diffusion_targeted.parquet", ["formula", "structure", "valid"])
    samples["pred"] = predicted(samples, predictor, meta)
    check = res.get("chgnet", {})
    order = targeted_order(samples, samples["pred"].to_numpy(), one_per_formula=bool(res.get("one_per_formula")))
    done = order[: check.get("evaluated", 0)]
    samples["evaluated"] = False
    samples.loc[samples.index[done], "evaluated"] = True
    samples["batch"] = str(folder)
    records = pd.DataFrame(check.get("candidates", []))
    if len(records):
        if list(records["formula"]) != list(samples["formula"].iloc[done]):
            raise SystemExit(f"{folder}: the saved check does not follow the predictor's ranking of its samples")
        records["pred"] = samples["pred"].iloc[done].to_numpy()
        records["batch"] = str(folder)
    return samples, records


def _fit(records: pd.DataFrame, target: float):
    from invdesign.search.feedback import OracleFeedbackRanker

    return OracleFeedbackRanker((target, None)).fit(
        [_fractions(f) for f in records["formula"]], records["pred"].to_numpy(),
        records["stable"].to_numpy(bool), records["eos_bulk_modulus_gpa"].astype(float).to_numpy())


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp)
    os.replace(tmp, path)


def _ranked(pool: pd.DataFrame, ranker) -> pd.DataFrame:
    """The pool scored by the ranker, best first, one cell (the best) per formula; without a ranker (a cold
    start, before the oracle has said enough) by the DFT predictor's value, the ranker's columns left empty."""
    if ranker is None:
        out = pool.reset_index(drop=True).assign(score=np.nan, p_stable=np.nan, expected=np.nan)
        return out.sort_values("pred", ascending=False, kind="stable").drop_duplicates("formula")
    scored = ranker.score([_fractions(f) for f in pool["formula"]], pool["pred"].to_numpy())
    out = pd.concat([pool.reset_index(drop=True), scored], axis=1)
    return out.sort_values("score", ascending=False, kind="stable").drop_duplicates("formula")


def _auc(score, label) -> float | None:
    from scipy.stats import mannwhitneyu

    label = np.asarray(label, bool)
    if label.all() or not label.any():
        return None
    return float(mannwhitneyu(np.asarray(score)[label], np.asarray(score)[~label]).statistic
                 / (label.sum() * (~label).sum()))


def _predictor(models: Path):
    """(the predictor ``crystals_generators.py`` trained in ``models``, the graphs' meta)."""
    from invdesign.artifacts import load_graphs, load_model

    meta = load_graphs(models / "graphs.pt").meta
    predictor, _ = load_model(models / "predictor.pt")
    return predictor, meta


def _training_cells(models: Path) -> pd.DataFrame:
    """The training cells (``id``, ``formula``, ``structure``, ...) of the bench campaign in ``models``, prepared
    there as ``crystals_generators.py`` does when the folder has no dataset yet."""
    df, _ = load(models, campaign())
    return df[df["split"] == "train"].reset_index(drop=True)


def _lane_dir(args) -> Path:
    """Where the lanes of the study ``args.out`` keep their claims and look for ``STOP`` (never the study folder:
    that holds the evidence)."""
    return Path(args.lane_dir) if args.lane_dir else ROOT / "bench" / "out" / "lanes" / Path(args.out).name


def _stopped(out: Path, lanes: Path) -> bool:
    return (lanes / "STOP").exists() or (out / "STOP").exists()


def rank(args) -> int:
    out, _ = setup_run(args)
    models = Path(args.models)
    predictor, meta = _predictor(models)
    pools, recs = zip(*(_batch(Path(b), predictor, meta) for b in args.batches))
    pool, records = pd.concat(pools, ignore_index=True), pd.concat(recs, ignore_index=True)
    records = records[records["oracle_error"].fillna("").eq("") | ~records["stable"]]  # a failed EOS says nothing
    log.info("%d earlier verdicts (%d stable, %d hits) from %d batches", len(records), records["stable"].sum(),
             records["hit"].sum(), records["batch"].nunique())
    # leave-one-batch-out: does the ranker order the earlier verdicts better than the predictor alone?
    held = []
    for b in records["batch"].unique():
        test = records["batch"] == b
        s = _fit(records[~test], args.target_min).score([_fractions(f) for f in records.loc[test, "formula"]],
                                                         records.loc[test, "pred"].to_numpy())
        held.append(s.set_index(records.index[test]))
    held = pd.concat(held).loc[records.index]
    hit, stable = records["hit"].to_numpy(bool), records["stable"].to_numpy(bool)
    cv = {"verdicts": len(records), "hits": int(hit.sum()), "stable": int(stable.sum()),
          "auc_hit": {"ranker": _auc(held["score"], hit), "predictor": _auc(records["pred"], hit)},
          "auc_stable": {"ranker": _auc(held["p_stable"], stable), "predictor": _auc(records["pred"], stable)},
          "calibration": {"expected_stable": float(held["p_stable"].sum()), "expected_hits": float(held["score"].sum())}}
    by_ranker = hit[np.argsort(-held["score"].to_numpy(), kind="stable")]
    by_predictor = hit[np.argsort(-records["pred"].to_numpy(), kind="stable")]
    cv["hits_among_best"] = {str(k): {"ranker": int(by_ranker[:k].sum()), "predictor": int(by_predictor[:k].sum())}
                             for k in (20, 40, 60)}
    ranker = _fit(records, args.target_min)
    vun = pool[pool["valid"] & pool["unique"] & pool["novel"]]
    seen = set(pool.loc[pool["evaluated"], "formula"])
    fresh = vun[~vun["evaluated"] & ~vun["formula"].isin(seen)]
    fresh = fresh[["batch", "formula", "pred", "structure"]].reset_index(drop=True)
    _atomic_parquet(fresh, out / "pool.parquet")
    _atomic_parquet(records[["batch", "formula", "pred", "stable", "eos_bulk_modulus_gpa", "hit"]],
                    out / "earlier.parquet")
    first = _ranked(fresh, ranker)
    summary = {"date": str(date.today()), "provenance": provenance(PACKAGES), "batches": list(args.batches),
               "target_min_gpa": args.target_min,
               "pool_valid_unique_novel": len(vun), "pool_fresh_cells": len(fresh),
               "pool_fresh_formulas": int(fresh["formula"].nunique()), "excluded_formulas": len(seen),
               "sigma_gpa": ranker.sigma, "leave_one_batch_out": cv,
               "expected_hits_first": {str(k): float(first["score"].head(k).sum()) for k in (20, 40, 80)},
               "weights": ranker.weights().round(3).to_dict(orient="index"),
               "first20": first.drop(columns="structure").head(20).round(3).to_dict(orient="records")}
    (out / "ranker.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "weights"}, indent=2))
    return 0


def propose(args) -> int:
    """Protocol v4's pool: the ranker, refitted on every verdict so far, names the elements that raise the
    oracle's modulus (positive weight, seen in at least two verdicts); the diffusion model predicts
    structures (given types, generated lattice and coordinates) for every binary formula of those elements
    that nobody has checked, a cell of one and one of two formula units where it fits; the valid, unique,
    novel cells with the DFT predictor's value form the pool, which ``evaluate`` ranks with the full ranker."""
    import torch

    from invdesign.artifacts import load_model, read_table
    from invdesign.chem.crystals import binary_formulas
    from invdesign.domains import get_domain
    from invdesign.pipeline.compositions import composition_cells
    from invdesign.sampling import make_sampler

    out, _ = setup_run(args)
    dom = get_domain("crystals")
    models = Path(args.models)
    predictor, meta = _predictor(models)
    train_df = _training_cells(models)
    if args.elements:  # a list fixed in advance: no earlier verdicts, no ranker yet (evaluate starts cold)
        ranker, elements = None, sorted(set(args.elements))
        known = pd.DataFrame(columns=VERDICT_COLUMNS)
        unknown = sorted(set(elements) - set(meta["elements"]))
        if unknown:
            raise SystemExit(f"--elements: {' '.join(unknown)} not in the training cells")
    else:
        after = Path(args.after)
        earlier = read_table(after / "earlier.parquet", VERDICT_COLUMNS)
        new = pd.DataFrame(_verdicts(after))
        new = new[new["oracle_error"].fillna("").eq("") | ~new["stable"]]  # a failed EOS says nothing
        known = pd.concat([earlier, new[earlier.columns]], ignore_index=True)
        ranker = _fit(known, args.target_min)
        elements = ranker.raising_elements(min_verdicts=2)  # positive fitted weight, in >= 2 verdicts
    log.info("%d elements: %s", len(elements), " ".join(elements))
    comps = binary_formulas(elements, args.max_reduced_atoms)
    seen = set(known["formula"])
    formulas = [f for f in comps if f not in seen]
    if ranker is None:
        chosen = pd.DataFrame({"formula": formulas}).head(args.compositions)
    else:
        scored = ranker.score([_fractions(f) for f in formulas], np.full(len(formulas), ranker.centre))
        scored.insert(0, "formula", formulas)
        chosen = scored.sort_values("score", ascending=False, kind="stable").head(args.compositions)
    types, owner = composition_cells(list(chosen["formula"]), meta, args.cells_per_composition)
    model, _ = load_model(models / "diffusion.pt")  # the diffusion model crystals_generators.py trained there
    # unconditional structure prediction (no property target) with the bench diffusion generator's sampling
    # settings; a SampleRequest with compositions would condition every cell on a value inside the target
    sampler = make_sampler("diffusion", model, campaign(target_min=args.target_min).generator("diffusion").sample)
    t0 = time.monotonic()
    raw = model.sample(types=types, generator=torch.Generator().manual_seed(args.seed), batch_size=64,
                       progress=lambda d, n: log.info("structure prediction: %d / %d cells", d, n),
                       **sampler.model_kwargs())
    seconds = time.monotonic() - t0
    samples = dom.decode(raw, meta)
    checked = dom.filter_candidates(samples, train_df, None, known_cells())  # default filters; novelty vs all MP
    checked["pred"] = predicted(checked, predictor, meta)
    checked["batch"] = f"csp-seed{args.seed}"
    vun = checked[checked["valid"] & checked["unique"] & checked["novel"] & ~checked["formula"].isin(seen)]
    pool = vun[["batch", "formula", "pred", "structure"]].reset_index(drop=True)
    _atomic_parquet(pool, out / "pool.parquet")
    _atomic_parquet(known[VERDICT_COLUMNS], out / "earlier.parquet")
    first = _ranked(pool, ranker)
    summary = {"date": str(date.today()), "provenance": provenance(PACKAGES),
               "after": None if args.elements else str(args.after),
               "verdicts": len(known), "stable": int(known["stable"].sum()),
               "hits": int(known["hit"].sum()), "elements": elements, "binary_formulas": len(comps), "unchecked_formulas": len(formulas),
               "chosen_formulas": len(chosen), "cells": len(types), "seconds": seconds,
               "quality": quality(samples, checked), "same_formula_as_asked": float(
                   (samples["formula"].to_numpy() == np.array(owner, dtype=object)).mean()),
               "pool_cells": len(pool), "pool_formulas": int(pool["formula"].nunique()),
               "expected_hits_first": {str(k): float(first["score"].head(k).sum()) for k in (20, 40, 80)}
               if ranker else None,
               "expected_stable_first": {str(k): float(first["p_stable"].head(k).sum()) for k in (20, 40, 80)}
               if ranker else None,
               "chosen": chosen.head(40).round(3).to_dict(orient="records"),
               "first20": first.drop(columns="structure").head(20).round(3).to_dict(orient="records")}
    (out / "propose.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("chosen",)}, indent=2))
    return 0


def _num(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def _verdicts(out: Path, files: str = "lane*.jsonl") -> list[dict]:
    """Every verdict line of a study folder: the targeted lanes' (``lane*.jsonl``) or, with
    ``files="screen*.jsonl"``, the screening lanes' (protocol v6)."""
    return [json.loads(line) for p in sorted(out.glob(files)) for line in p.read_text().splitlines()]


def _screening_cells(models: Path, seed: int, size: int):
    """The screening arm of protocol v6: (training cells, positions of the first ``size`` of a seeded permutation,
    the training cells left over: the arm's hull references; every screened cell is left out of every screened
    cell's hull, as in the first screening arm)."""
    train = _training_cells(models)
    pick = np.random.default_rng(seed).permutation(len(train))[:size]
    return train, pick, train.drop(index=pick)


def _append(path: Path, rec: dict) -> None:
    with path.open("a") as fh:  # one line per verdict, flushed: a stopped lane loses at most the cell in hand
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _oracle_fields(v, target_min: float, t0: float) -> dict:
    """The oracle's part of a lane verdict (one row of ``ChgnetOracle.evaluate``), the same for both arms; a hit is
    stable with an EOS modulus at or above the target."""
    k = _num(v["eos_bulk_modulus_gpa"])
    return {"stable": bool(v["stable"]), "e_hull": _num(v["e_hull"]), "eos_bulk_modulus_gpa": k,
            "hit": bool(v["stable"] and k is not None and k >= target_min),
            "oracle_error": v["oracle_error"], "relaxed_cif": v["relaxed_cif"],
            "seconds": time.monotonic() - t0, "finished_utc": datetime.now(UTC).isoformat(timespec="seconds")}


def _claim(folder: Path, name: str) -> bool:
    try:  # exclusive: two lanes never check the same candidate
        fd = os.open(folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, datetime.now(UTC).isoformat(timespec="seconds").encode())
    os.close(fd)
    return True


def screen_arm(args) -> int:
    """Protocol v6's screening arm: training cells in a seeded random order, each claimed by one lane and
    CHGNet-checked as the first screening arm was (the cell as it is, relaxation, hull of the training cells
    not in the arm + elemental references, EOS of the stable ones); verdicts to ``screen{lane}.jsonl``."""
    out, _ = setup_run(args)
    train, pick, others = _screening_cells(Path(args.models), args.screening_seed, args.arm_size)
    oracle = make_chgnet(campaign(target_min=args.target_min), "stable", False)  # the cell as it is
    lanes = _lane_dir(args)
    claims = lanes / "claims_screening"
    claims.mkdir(parents=True, exist_ok=True)
    path = out / f"screen{args.lane}.jsonl"
    while not _stopped(out, lanes):
        done = _verdicts(out, "screen*.jsonl")
        if len(done) >= args.arm_size:
            log.info("screening lane %d: the arm has its %d verdicts", args.lane, args.arm_size)
            break
        taken = {p.name for p in claims.iterdir()} | {f"{r['pick']:04d}" for r in done}
        rank = next((r for r in range(len(pick)) if f"{r:04d}" not in taken), None)
        if rank is None:
            break
        if not _claim(claims, f"{rank:04d}"):
            continue
        idx = int(pick[rank])
        t0 = time.monotonic()
        v = oracle.evaluate(train.iloc[[idx]][["formula", "structure"]].assign(rank=1), others, {}).iloc[0]
        rec = {"arm": "screening", "lane": args.lane, "pick": rank, "id": str(train.loc[idx, "id"]),
               "formula": str(train.loc[idx, "formula"]), "dft_bulk_modulus_gpa": float(train.loc[idx, "bulk_modulus_gpa"])
               } | _oracle_fields(v, args.target_min, t0)
        _append(path, rec)
        k = rec["eos_bulk_modulus_gpa"]
        log.info("screening lane %d: pick %d %s stable=%s K=%s (%.0f s)", args.lane, rank, rec["formula"],
                 rec["stable"], k and round(k), rec["seconds"])
    return 0


def release(args) -> int:
    """Frees the claims of a study folder that have no verdict (a lane stopped mid-check, e.g. when a session
    ended): run once, with no lane running, before the lanes of a new session start."""
    out, lanes = Path(args.out), _lane_dir(args)
    done_t = {r["formula"] for r in _verdicts(out)}
    done_s = {f"{r['pick']:04d}" for r in _verdicts(out, "screen*.jsonl")}
    freed = []
    for folder, done in ((lanes / "claims", done_t), (lanes / "claims_screening", done_s)):
        for p in sorted(folder.glob("*")) if folder.exists() else []:
            if p.name not in done:
                p.unlink()
                freed.append(f"{folder.name}/{p.name}")
    print(json.dumps({"freed": freed}))
    return 0


def evaluate(args) -> int:
    """Adaptive: before each pick the ranker is refitted on the earlier verdicts plus every verdict of this
    study so far (all lanes), and the best-scored formula nobody has claimed is claimed (an exclusive file in
    the lane folder's ``claims/``) and CHGNet-checked: the cell scaled to its additive volume (per-element
    volumes of the training cells), relaxed, on the hull of the training phases, EOS if stable."""
    from invdesign.artifacts import read_table

    out, _ = setup_run(args)
    pool = read_table(out / "pool.parquet", ["batch", "formula", "pred", "structure"])
    earlier = read_table(out / "earlier.parquet", VERDICT_COLUMNS)
    train = _training_cells(Path(args.models))
    oracle = make_chgnet(campaign(target_min=args.target_min), "stable", True)
    prepared = oracle.prepare(train)  # the per-element volumes
    lanes = _lane_dir(args)
    claims = lanes / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    path = out / f"lane{args.lane}.jsonl"
    picks = 0
    while picks < args.max_picks and not _stopped(out, lanes):
        mine = _verdicts(out)
        if args.arm_size and len(mine) >= args.arm_size:
            log.info("lane %d: the targeted arm has its %d verdicts", args.lane, args.arm_size)
            break
        known = pd.concat([earlier, pd.DataFrame(mine, columns=earlier.columns)], ignore_index=True) if mine \
            else earlier
        ranker = None
        if len(known) >= args.warmup:  # a cold start picks by the predictor until the oracle has said enough
            try:
                ranker = _fit(known, args.target_min)
            except ValueError as err:  # e.g. fewer than 2 stable cells with a modulus yet
                log.info("lane %d: ranker not fitted yet (%s); the predictor picks", args.lane, err)
        taken = {p.name for p in claims.iterdir()} | {r["formula"] for r in mine}
        ranked = _ranked(pool[~pool["formula"].isin(taken)], ranker)
        if ranked.empty:
            log.info("lane %d: the pool is exhausted", args.lane)
            break
        row = ranked.iloc[0]
        if not _claim(claims, row["formula"]):
            continue
        t0 = time.monotonic()
        v = oracle.evaluate(pd.DataFrame({"rank": [1], "formula": [row["formula"]], "structure": [row["structure"]]}),
                            train, prepared).iloc[0]
        rec = {"arm": "targeted", "lane": args.lane, "pick": len(taken), "formula": row["formula"], "batch": row["batch"],
               "pred": float(row["pred"]), "ranked_by": "predictor" if ranker is None else "ranker",
               "score": _num(row["score"]), "p_stable": _num(row["p_stable"]), "expected": _num(row["expected"]),
               "verdicts_known": len(known)} | _oracle_fields(v, args.target_min, t0)
        _append(path, rec)
        k = rec["eos_bulk_modulus_gpa"]
        picks += 1
        log.info("lane %d: pick %d %s (%s) score %s stable=%s K=%s (%.0f s)", args.lane, rec["pick"],
                 row["formula"], rec["ranked_by"], rec["score"], rec["stable"], k and round(k), rec["seconds"])
    return 0


def spending_look(n_t: int, n_s: int, arm_size: int, alpha: float, spent: float) -> dict:
    """Protocol v6's alpha at a look: information t = min(n_T, n_S) / arm_size; the one-sided ``alpha`` is spent
    along the O'Brien-Fleming-type Lan-DeMets function a(t) = 2 (1 - Phi(z_{1-alpha/2} / sqrt t)); a look
    tests at a(t) minus what earlier looks spent (``spent``), and the final look (t >= 1) at ``alpha`` minus
    it (Bonferroni over the looks: valid without modelling their correlation, slightly conservative)."""
    from scipy.stats import norm

    t = min(n_t, n_s) / arm_size
    final = t >= 1
    cum = alpha if final else float(2 * (1 - norm.cdf(norm.ppf(1 - alpha / 2) / np.sqrt(t))))
    return {"information": t, "final": final, "alpha_spent_before": spent, "alpha_cumulative": cum,
            "alpha_nominal": max(cum - spent, 0.0)}


def _stable_at(recs: list[dict], threshold: float) -> int:
    """Verdicts that are stable with an EOS modulus at or above ``threshold`` (GPa)."""
    return sum(r["stable"] and r["eos_bulk_modulus_gpa"] is not None and r["eos_bulk_modulus_gpa"] >= threshold
               for r in recs)


def analyse(args) -> int:
    from pymatgen.core import Structure

    if args.screening_arm and args.arm_size <= 0:
        raise SystemExit("analyse --screening-arm: give the study's planned --arm-size (300 for protocol v6)")
    out, _ = setup_run(args)

    def finished(files: str) -> list[dict]:
        """Verdicts in finishing order; a look counts every verdict finished by a time fixed in advance."""
        recs = _verdicts(out, files)
        if args.until:
            until = datetime.fromisoformat(args.until)
            recs = [r for r in recs if datetime.fromisoformat(r["finished_utc"]) <= until]
        return sorted(recs, key=lambda r: r["finished_utc"])

    prefix = finished("lane*.jsonl")
    if args.screening_arm:  # two lanes can both pick at 299: an arm is at most its first arm_size verdicts
        prefix = prefix[:args.arm_size]
    m = len(prefix)
    if not prefix:
        raise SystemExit(f"{out}: no verdicts yet; run the evaluate step first")
    look = None
    if args.screening_arm:  # protocol v6: the study's own screening arm, same cut-off time
        srecs = finished("screen*.jsonl")[:args.arm_size]
        if not srecs:
            raise SystemExit(f"{out}: no screening verdicts yet; run the screen step first")
        screen = {"evaluated": len(srecs), "stable_and_on_target": int(sum(r["hit"] for r in srecs)),
                  "stable": int(sum(r["stable"] for r in srecs)),
                  "stable_at_250": _stable_at(srecs, 250), "stable_at_200": _stable_at(srecs, 200),
                  "oracle_errors": sum(bool(r["oracle_error"]) for r in srecs),
                  "hits": [{k: r[k] for k in ("pick", "id", "formula", "dft_bulk_modulus_gpa", "eos_bulk_modulus_gpa",
                                              "e_hull")} for r in srecs if r["hit"]],
                  "hours_of_lanes": sum(r["seconds"] for r in srecs) / 3600}
        look = spending_look(m, len(srecs), args.arm_size, args.alpha, args.spent)
    elif args.screening_counts:  # counts recorded in docs/benchmarks.md (the screening arm's files are not needed)
        n_s, k_s = args.screening_counts
        screen = {"evaluated": n_s, "stable_and_on_target": k_s}
    else:
        screen = json.loads((Path(args.screening) / "results.json").read_text())["screening_baseline"]
    hits = [{"formula": r["formula"], "structure": Structure.from_str(r["relaxed_cif"], fmt="cif"),
             "eos_bulk_modulus_gpa": r["eos_bulk_modulus_gpa"], "e_hull": r["e_hull"], "pick": r["pick"]}
            for r in prefix if r["hit"]]
    label_hits(hits, _training_cells(Path(args.models)))
    n_hit = len(hits)
    sun = sum(h["novel"] and h["duplicate_of"] is None for h in hits)
    res = {"date": str(date.today()), "until": args.until, "evaluated": m,
           "stable": int(sum(r["stable"] for r in prefix)),
           "relax_failures": sum(not r["relaxed_cif"] for r in prefix),  # no relaxed cell: relaxation failed
           "oracle_errors": sum(bool(r["oracle_error"]) for r in prefix),
           "hits": [{k: h[k] for k in ("pick", "formula", "eos_bulk_modulus_gpa", "e_hull", "novel", "known_as")}
                    for h in hits],
           "test_hits": compare_rates(m, n_hit, screen["evaluated"], screen["stable_and_on_target"]),
           "sun_hits": compare_rates(m, sun, screen["evaluated"], screen["stable_and_on_target"]),
           "stable_at_250": _stable_at(prefix, 250),
           "stable_at_200": _stable_at(prefix, 200),
           "ranked_by": pd.Series([r.get("ranked_by", "ranker") for r in prefix]).value_counts().to_dict(),
           # calibration over the ranker's picks (cold-start picks by the predictor carry no probability)
           "expected_stable_at_pick": float(sum(r["p_stable"] for r in prefix if r["p_stable"] is not None)),
           "stable_at_ranker_picks": int(sum(r["stable"] for r in prefix if r["p_stable"] is not None)),
           "expected_hits_at_pick": float(sum(r["score"] for r in prefix if r["score"] is not None)),
           "hits_at_ranker_picks": int(sum(r["hit"] for r in prefix if r["score"] is not None)),
           "hours_of_lanes": sum(r["seconds"] for r in prefix) / 3600}
    if look is not None:
        res["screening_arm"] = screen
        res["look"] = look | {"met": bool(res["test_hits"]["p_one_sided_fisher"] < look["alpha_nominal"])}
    write_analysis(out, res, PACKAGES, indent=2)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("rank", "propose", "evaluate", "screen", "release", "analyse"):
        p = sub.add_parser(name)
        p.add_argument("--out", default=str(ROOT / "bench" / "out" / "crystals_v3"))
        p.add_argument("--models", default=str(ROOT / "bench" / "out" / "crystals"),
                       help="folder with dataset.parquet, graphs.pt and predictor.pt (diffusion.pt for propose) of "
                            "the batches, as crystals_generators.py writes them; analyse needs only the dataset, "
                            "and prepares it there when missing")
        p.add_argument("--target-min", type=float, default=300.0)
        p.add_argument("--threads", type=int, default=1)
        if name == "rank":
            p.add_argument("--batches", nargs="+", required=True)
        if name == "propose":
            p.add_argument("--after", default=str(ROOT / "bench" / "out" / "crystals_v3"),
                           help="the earlier study folder: its earlier.parquet and lane verdicts train the ranker")
            p.add_argument("--compositions", type=int, default=5000, help="at most this many, best-scored first")
            p.add_argument("--cells-per-composition", type=int, default=2)
            p.add_argument("--max-reduced-atoms", type=int, default=8)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--elements", nargs="+", default=None,
                           help="the elements, fixed in advance, instead of those the --after verdicts name")
        if name in ("evaluate", "screen", "analyse"):
            p.add_argument("--arm-size", type=int, default=0,
                           help="a lane stops once its arm has this many verdicts (0: no limit; v6: 300 per arm)")
        if name in ("evaluate", "screen", "release"):
            p.add_argument("--lane-dir", default=None,
                           help="the lanes' claims and STOP file (default: bench/out/lanes/<name of --out>)")
        if name == "screen":
            p.add_argument("--lane", type=int, default=0)
            p.add_argument("--screening-seed", type=int, default=1)
        if name == "evaluate":
            p.add_argument("--lane", type=int, default=0)
            p.add_argument("--lanes", type=int, default=1)
            p.add_argument("--max-picks", type=int, default=400)
            p.add_argument("--warmup", type=int, default=0,
                           help="pick by the DFT predictor until this many verdicts (earlier + this study) exist")
        if name == "analyse":
            p.add_argument("--screening", default=str(ROOT / "bench" / "out" / "crystals"))
            p.add_argument("--until", default=None, help="ISO time (UTC): count only verdicts finished by then")
            p.add_argument("--screening-counts", type=int, nargs=2, metavar=("EVALUATED", "HITS"), default=None,
                           help="the screening arm as counts (e.g. 235 3 from docs/benchmarks.md)")
            p.add_argument("--screening-arm", action="store_true",
                           help="protocol v6: the screening verdicts in the same folder (screen*.jsonl)")
            p.add_argument("--alpha", type=float, default=0.025, help="one-sided alpha of the whole study (v6)")
            p.add_argument("--spent", type=float, default=0.0, help="alpha spent by earlier looks of the study (v6)")
    args = ap.parse_args(argv)
    return {"rank": rank, "propose": propose, "evaluate": evaluate, "screen": screen_arm, "release": release,
            "analyse": analyse}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
