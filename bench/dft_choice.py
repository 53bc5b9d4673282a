"""Which molecules the DFT tier checks, against the rule it replaced and a random choice (issue #35; plan:
bench/records/dft_choice/PLAN.md, written before any record).

    python -m bench.dft_choice inputs  --campaign /tmp/def1/results/qm9_gap --name def1
    python -m bench.dft_choice run     [--name def1 ...]
    python -m bench.dft_choice analyse
    python -m bench.dft_choice replay    (plan addendum 1: rounds that refit the choice model on DFT values)

``inputs`` copies what the analysis needs from a finished molecule campaign into the records folder: its
xTB-checked rows (SMILES, filter rank, predicted value, raw xTB value and verdict, the GFN2-xTB geometry, the
shipped rule's final_rank and chance, the campaign's own DFT values) and its calibration points. ``run`` gives
every xTB-verified row the campaign's DFT did not check the oracle's DFT single point (records appended as they
come; resumable). ``analyse`` recomputes the current rule's chance of confirmation from the inputs with the
product code (:meth:`invdesign.oracles.xtb.XtbOracle._confirm_chance`) and compares the choices.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.lib.common import ROOT, run_step, write_analysis
from bench.lib.stats import confirmed_share

log = logging.getLogger("bench")
PACKAGES = ("rdkit", "tblite", "pyscf", "numpy", "scipy")
RECORDS = ROOT / "bench" / "records" / "dft_choice"
#: the columns of a campaign's xTB-checked rows that the analysis reads
INPUT_COLUMNS = ["rank", "smiles", "generator", "predicted_property", "xtb_ok", "xtb_connectivity_ok", "xtb_gap_ev",
                 "xtb_verified", "xtb_calibrated", "xtb_target_probability", "final_rank", "molblock"]
TOP_K = 6


def inputs(args, name: str) -> None:
    campaign, out = Path(args.campaign), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checked = pd.read_parquet(campaign / "oracle" / "checked.parquet")
    checked = checked[checked["xtb_ok"].notna()][INPUT_COLUMNS]
    verified = pd.read_parquet(campaign / "candidates_verified.parquet")
    dft = verified[verified["dft_ok"].notna()][["rank", "dft_ok", "dft_gap_ev", "dft_seconds", "dft_error"]]
    table = checked.merge(dft.rename(columns=lambda c: c if c == "rank" else f"campaign_{c}"), on="rank", how="left")
    table.to_parquet(out / f"inputs_{name}.parquet")
    prepared = json.loads((campaign / "oracle" / "prepared.json").read_text())
    (out / f"calibration_{name}.json").write_text(json.dumps(prepared) + "\n")
    log.info("%s: %d xTB-checked rows (%d verified, %d with the campaign's DFT)", name, len(table),
             int(table["xtb_verified"].sum()), int(table["campaign_dft_ok"].notna().sum()))


def _names(out: Path, names) -> list[str]:
    return names or sorted(p.stem.removeprefix("inputs_") for p in out.glob("inputs_*.parquet"))


def run(args) -> None:
    from invdesign.config.oracles import XtbOracleSettings
    from invdesign.oracles.dft import default_threads, frontier_from_molblock

    out = Path(args.out)
    path = out / "records.jsonl"
    done = {(r["campaign"], r["rank"]) for r in map(json.loads, path.read_text().splitlines())} \
        if path.exists() else set()
    d = XtbOracleSettings().dft
    # the order of measurement (plan, addendum 2): every campaign's new-rule picks first, then the rest in a seeded
    # random order across campaigns, so that a study cut short by time still compares the picks and its other
    # molecules are a random sample
    first, rest = [], []
    empty = pd.DataFrame(columns=["campaign", "rank", "dft_gap_ev"])
    for name in _names(out, args.name):
        t = _campaign(out, name, empty)
        t = t[t["campaign_dft_ok"].isna()]
        picks = set(t[t["dft_choice_probability"].gt(0) & t["molblock"].notna()]
                    .sort_values("dft_choice_probability", ascending=False).head(TOP_K)["rank"])
        for r in t.itertuples(index=False):
            if (name, int(r.rank)) not in done:
                (first if int(r.rank) in picks else rest).append((name, r))
    order = np.random.default_rng(0).permutation(len(rest))
    todo = first + [rest[i] for i in order]
    log.info("%d DFT single points to run (%d recorded)", len(todo), len(done))
    t0 = time.monotonic()
    for i, (name, r) in enumerate(todo, start=1):
        res = frontier_from_molblock(r.molblock, functional=d.functional, basis=d.basis, density_fit=d.density_fit,
                                     device=d.device, threads=default_threads(), max_memory_mb=d.max_memory_mb)
        rec = {"campaign": name, "rank": int(r.rank), "smiles": r.smiles,
               **{k: res.get(k) for k in ("dft_ok", "dft_gap_ev", "dft_seconds", "dft_error", "dft_n_basis")}}
        with path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        log.info("%d/%d %s %s: DFT gap %s (%.0f s; %.0f s so far)", i, len(todo), name, r.smiles,
                 f"{rec['dft_gap_ev']:.3f}" if rec["dft_gap_ev"] is not None else "-", rec["dft_seconds"] or 0,
                 time.monotonic() - t0)


def _auc(score, label, rng, n_boot: int = 2000) -> dict:
    """ROC AUC of ``score`` (higher = more likely) for ``label``, ties counted half, with a bootstrap 95%
    interval."""
    from scipy.stats import rankdata

    def auc(s, y):
        n1, n0 = int(y.sum()), int((~y).sum())
        if not n1 or not n0:
            return np.nan
        r = rankdata(s)
        return (r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)

    s, y = np.nan_to_num(np.asarray(score, float), nan=-np.inf), np.asarray(label, bool)  # no score: last
    boots = [auc(s[i], y[i]) for i in (rng.integers(0, len(s), len(s)) for _ in range(n_boot))]
    return {"auc": float(auc(s, y)), "ci95": [float(np.nanpercentile(boots, 2.5)), float(np.nanpercentile(boots, 97.5))]}


def _campaign(out: Path, name: str, records: pd.DataFrame) -> pd.DataFrame:
    """The xTB-verified rows of one campaign with their DFT gap and the new rule's chance."""
    from invdesign.oracles.xtb import apply_calibration, fit_calibration
    from invdesign.pipeline.verify import make_oracle

    t = pd.read_parquet(out / f"inputs_{name}.parquet")
    t = t[t["xtb_verified"].astype(bool)].reset_index(drop=True)
    prepared = json.loads((out / f"calibration_{name}.json").read_text())
    x = np.array([p["xtb"] for p in prepared["points"]])
    y = np.array([p["reference"] for p in prepared["points"]])
    prepared = {**prepared, **fit_calibration(x, y)}  # the calibration as the product fits it now
    target = {"window": [4.0, 5.0], "unit": "eV"}
    oracle = make_oracle("molecules", {}, target, "gap_ev")  # the default campaign's oracle settings
    t["shipped_final_rank"] = t.pop("final_rank")
    t["xtb_calibrated"] = apply_calibration(t["xtb_gap_ev"], prepared)
    t, model = oracle._confirm_chance(t, prepared)
    rec = records[records["campaign"] == name].set_index("rank")
    own = t["campaign_dft_ok"].notna()
    t["dft_gap_ev"] = np.where(own, pd.to_numeric(t["campaign_dft_gap_ev"], errors="coerce"),
                               pd.to_numeric(t["rank"].map(rec["dft_gap_ev"]), errors="coerce"))
    t["dft_source"] = np.where(own, "campaign", np.where(t["rank"].isin(rec.index), "bench", "missing"))
    t["confirmed"] = confirmed_share(t["dft_gap_ev"], (4.0, 5.0), 0.8)
    t.attrs["model"] = model
    return t


def analyse(args) -> dict:
    from scipy.stats import hypergeom

    out = Path(args.out)
    records = pd.DataFrame(map(json.loads, (out / "records.jsonl").read_text().splitlines()))
    rng = np.random.default_rng(0)
    res, pooled = {"plan": "bench/records/dft_choice/PLAN.md", "window_ev": [4.0, 5.0], "top_k": TOP_K,
                   "campaigns": {}}, []
    for name in _names(out, args.name):
        t = _campaign(out, name, records)
        ok = t["dft_gap_ev"].notna()
        shipped = t[t["campaign_dft_ok"].notna()]
        eligible = t[ok & t["dft_choice_probability"].gt(0) & t["molblock"].notna()]
        new = eligible.sort_values("dft_choice_probability", ascending=False).head(TOP_K)
        n, k = int(ok.sum()), int(t.loc[ok, "confirmed"].sum())
        per = {"n_xtb_verified": int(len(t)), "n_dft_ok": n, "n_dft_missing_or_failed": int((~ok).sum()),
               "n_confirmed_all": k, "confirmed_share_all": k / n if n else None,
               "shipped": {"picks": shipped["smiles"].tolist(), "n_confirmed": int(shipped["confirmed"].sum())},
               "new": {"picks": new["smiles"].tolist(), "n_confirmed": int(new["confirmed"].sum()),
                       "chances": new["dft_choice_probability"].round(3).tolist(),
                       "expected_confirmed": float(new["dft_choice_probability"].sum())},
               "random_expected_confirmed": TOP_K * k / n if n else None,
               "p_random_at_least_new": float(hypergeom(n, k, TOP_K).sf(int(new["confirmed"].sum()) - 1)),
               "model": t.attrs["model"]}
        pooled.append(t[ok].assign(campaign=name))
        res["campaigns"][name] = per
        log.info("%s: shipped %d/%d, new %d/%d, random %.2f expected; %d of %d confirmed", name,
                 per["shipped"]["n_confirmed"], len(shipped), per["new"]["n_confirmed"], len(new),
                 per["random_expected_confirmed"], k, n)
    allrows = pd.concat(pooled, ignore_index=True)
    y = allrows["confirmed"].to_numpy(bool)
    centre = 4.5
    scores = {"new_chance": allrows["dft_choice_probability"].fillna(0).to_numpy(float),
              # the shipped order within each campaign (final_rank 1 = first), as a score
              "shipped_order": -allrows.groupby("campaign")["shipped_final_rank"].rank().to_numpy(float),
              "calibrated_xtb_alone": -np.abs(allrows["xtb_calibrated"].to_numpy(float) - centre),
              "predictor_alone": -np.abs(allrows["predicted_property"].to_numpy(float) - centre)}
    p = scores["new_chance"]
    res["pooled"] = {"n": int(len(allrows)), "n_confirmed": int(y.sum()),
                     "auc": {k: _auc(v, y, rng) for k, v in scores.items()},
                     "brier_new_chance": float(np.mean((p - y) ** 2)),
                     "mean_new_chance": float(p.mean()), "observed_confirmed_share": float(y.mean()),
                     "shipped_top_k_confirmed": sum(c["shipped"]["n_confirmed"] for c in res["campaigns"].values()),
                     "new_top_k_confirmed": sum(c["new"]["n_confirmed"] for c in res["campaigns"].values()),
                     "random_top_k_expected": float(sum(c["random_expected_confirmed"]
                                                        for c in res["campaigns"].values()))}
    return write_analysis(out, res, PACKAGES)


STRATEGIES = {"one_shot": 6, "rounds_2x3": 3, "rounds_3x2": 2}  # picks per round of the budget of TOP_K


def _choose(c, p, v, per_round: int, s_x: float, errors: np.ndarray) -> np.ndarray:
    """Indices of the ``TOP_K`` molecules a strategy checks: rounds of ``per_round`` highest chances, the choice
    model refitted on the DFT values of the rounds before (:func:`invdesign.oracles.choice.refit`)."""
    from invdesign.oracles.choice import combine, confirmation_probability, predictor_spread, refit

    s_p = predictor_spread(c, p, s_x)
    fit = {"offset_x": 0.0, "offset_p": 0.0, "s_x": s_x, "s_p": s_p}
    checked: list[int] = []
    while len(checked) < min(TOP_K, len(c)):
        mean, sd = combine(c - fit["offset_x"], fit["s_x"], p - fit["offset_p"], fit["s_p"])
        chance = confirmation_probability(mean, sd, (4.0, 5.0), errors, 0.8)
        chance[checked] = -1.0
        n = min(per_round, TOP_K - len(checked))
        checked += [int(i) for i in np.argsort(-chance, kind="stable")[:n]]
        seen = np.full(len(c), np.nan)
        seen[checked] = v[checked]
        fit = refit(c, p, seen, s_x, s_p, protocol_mean=float(errors.mean()))
    return np.array(checked)


def replay(args) -> dict:
    """Addendum 1 of the plan: one-shot against rounds that refit the choice model on each round's DFT values."""
    from importlib import resources

    out = Path(args.out)
    records = pd.DataFrame(map(json.loads, (out / "records.jsonl").read_text().splitlines()))
    errors = np.asarray(json.loads(resources.files("invdesign.oracles").joinpath("dft_protocol_qm9.json")
                                   .read_text())["errors"]["gap_ev"], float)
    res = {"plan": "bench/records/dft_choice/PLAN.md (addendum 1)", "top_k": TOP_K, "subpools": args.subpools,
           "subpool_size": args.subpool_size, "campaigns": {}}
    for name in _names(out, args.name):
        t = _campaign(out, name, records)
        t = t[t["dft_gap_ev"].notna() & t["xtb_calibrated"].notna()].reset_index(drop=True)
        c, p = t["xtb_calibrated"].to_numpy(float), t["predicted_property"].to_numpy(float)
        v, y = t["dft_gap_ev"].to_numpy(float), t["confirmed"].to_numpy(bool)
        s_x = t.attrs["model"]["calibration_spread"]
        rng = np.random.default_rng(0)
        counts = {k: [] for k in [*STRATEGIES, "random"]}
        for _ in range(args.subpools):
            sub = rng.choice(len(t), size=min(args.subpool_size, len(t)), replace=False)
            for k, per in STRATEGIES.items():
                counts[k].append(int(y[sub][_choose(c[sub], p[sub], v[sub], per, s_x, errors)].sum()))
            counts["random"].append(int(y[rng.choice(sub, size=TOP_K, replace=False)].sum()))
        per = {}
        for k, n in counts.items():
            n = np.asarray(n, float)
            diff = n - np.asarray(counts["one_shot"], float)
            boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
            per[k] = {"mean_confirmed_of_6": float(n.mean()), "range_5_95": [float(np.percentile(n, 5)),
                                                                          float(np.percentile(n, 95))],
                      "mean_minus_one_shot": float(diff.mean()),
                      "ci95_minus_one_shot": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}
        res["campaigns"][name] = {"n_pool": int(len(t)), "n_confirmed_pool": int(y.sum()), "strategies": per}
        log.info("%s (%d molecules, %d confirmed): %s", name, len(t), int(y.sum()),
                 {k: round(v["mean_confirmed_of_6"], 2) for k, v in per.items()})
    return write_analysis(out, res, PACKAGES, name="replay.json")


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["inputs", "run", "analyse", "replay"])
    p.add_argument("--campaign", help="inputs: a finished molecule campaign's results folder")
    p.add_argument("--name", nargs="*", default=None, help="inputs: the name it is recorded under (one); "
                   "run/analyse: which recorded campaigns (default: all)")
    p.add_argument("--out", default=str(RECORDS))
    p.add_argument("--subpools", type=int, default=500, help="replay: random sub-pools per campaign")
    p.add_argument("--subpool-size", type=int, default=30, help="replay: molecules in each sub-pool")
    run_step(p, argv, {"inputs": lambda a: inputs(a, a.name[0]), "run": run, "analyse": analyse,
                       "replay": replay})


if __name__ == "__main__":
    main()
