"""The crystal generator against matched classical baselines, judged by the CHGNet + SevenNet committee (issue #24;
plan: bench/records/baselines/PLAN.md, addendum 2, written before this script).

    python -m bench.crystal_baselines propose --campaign results/mp_bulk
    python -m bench.crystal_baselines check   --campaign results/mp_bulk [--arms generator screening ...] [--threads 1]
    python -m bench.crystal_baselines check   --arms generator --threads 1 --cost-rerun /tmp/rerun   # addendum 4
    python -m bench.crystal_baselines analyse

Every arm hands ``--n`` cells to the same oracle chain (:func:`invdesign.pipeline.verify.run_oracle_chain`): the
campaign's CHGNet settings with ``committee.select: all`` (SevenNet re-relaxes every cell CHGNet relaxed), the same
hull and novelty reference (the campaign's known.parquet: every MP elasticity cell), the same atomic volumes (its
prepared.json). The element set is fixed in the plan (the default campaign's own choice):

* ``generator``: the campaign's ranked candidates (its generator's samples, searched and filtered);
* ``screening``: known cells of the source data set made of two elements of the set, drawn at random; handed to the
  oracle as passing although known, so a hit there is a *rediscovery*;
* ``substitution_random``: random (prototype, element pair) substitutions (:mod:`invdesign.chem.substitution`, the
  workflow's ``substitution`` generator type): a binary cell of the source data set with
  its two elements replaced by two of the set, rescaled to the additive volume, through the campaign's filters
  (validity, uniqueness, novelty against everything known); drawn at random among those that pass;
* ``substitution_ranked``: the same passing substitutions ranked as the workflow ranks candidates (the campaign's
  predictor, distance to the target; inside it the highest prediction first).

A hit is ``committee_confirmed`` (both potentials: stable, EOS bulk modulus in the target, novel after relaxation); a
rediscovery is the same verdict without novelty. CPU seconds of each stage are recorded in ``timing.json``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.lib.common import baselines_parser, campaign_cpu_seconds, campaign_settings, run_step, write_analysis
from bench.lib.stats import fisher_p, poisson_rate_ci, wilson

log = logging.getLogger("bench")
#: the packages whose versions the analysis records
PACKAGES = ("pymatgen", "chgnet", "sevenn", "matcalc", "torch", "scipy")
ARMS = ("generator", "screening", "substitution_random", "substitution_ranked")
ELEMENTS = ("C", "Ir", "N", "Os", "Re", "Rh", "Ru", "W")  # fixed in the plan, addendum 2
#: the campaign's Snakemake rules whose CPU time each arm's proposals need (besides the arm's own proposal step)
CAMPAIGN_RULES = {"generator": ("featurize", "train_generator_vae", "train_predictor", "search_vae", "filter_rank"),
                  "substitution_ranked": ("featurize", "train_predictor")}


def binary_of_set(structure) -> bool:
    els = {el.symbol for el in structure.composition.elements}
    return len(els) == 2 and els <= set(ELEMENTS)


def predicted(table: pd.DataFrame, predictor: tuple, tgt: dict) -> pd.DataFrame:
    """The campaign's predictor (``(model, checkpoint)`` of :func:`invdesign.artifacts.load_model`) on ``table``'s
    cells: ``predicted_property``, ``distance_to_target``, ``in_target``, and the tie-break inside the target
    (highest prediction first, in ``generator_disagreement``, the column :func:`invdesign.pipeline.filter.rank`
    sorts by last)."""
    import torch

    from invdesign.domains import get_domain
    from invdesign.pipeline.filter import predict
    from invdesign.targets import distance_to_target, in_target

    model, ck = predictor
    pred = predict(model, get_domain("crystals").featurize_like(table, ck["meta"]), torch.device("cpu"))
    table = table.copy()
    table["predicted_property"], table["distance_to_target"] = pred, distance_to_target(pred, tgt)
    table["in_target"], table["generator_disagreement"] = in_target(pred, tgt), -np.nan_to_num(pred, nan=-np.inf)
    return table


def propose(args) -> None:
    from invdesign.artifacts import load_model, read_table
    from invdesign.chem.crystals import structure_from_record
    from invdesign.chem.substitution import binary_prototypes, substitutions
    from invdesign.domains import get_domain
    from invdesign.pipeline.filter import rank

    campaign, out = Path(args.campaign), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    camp = campaign_settings(campaign, args.configfile)
    tgt = camp.target.to_dict()
    dataset = read_table(campaign / "data" / "dataset.parquet")
    known = read_table(campaign / "data" / "known.parquet")
    volumes = json.loads((campaign / "oracle" / "prepared.json").read_text())["atomic_volumes"]
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() else {}
    rng = np.random.default_rng(args.seed)
    predictor = load_model(campaign / "models" / "predictor.pt")
    arms = {}

    arms["generator"] = read_table(campaign / "candidates.parquet")
    timing["generator"] = {"propose_cpu_seconds": 0.0}

    t0 = time.process_time()
    pool = dataset[[binary_of_set(structure_from_record(r)) for r in dataset["structure"]]]
    pick = pool.sample(n=min(args.n, len(pool)), random_state=args.seed)
    screen = predicted(pick[["id", "formula", "structure", "num_sites"]].rename(columns={"id": "sample_id"}),
                       predictor, tgt)
    screen = screen.assign(valid=True, unique=True, novel=False, passes=True, generator="screening",
                           reject_reason="known cell (screening arm: judged as if new)")
    screen.insert(0, "rank", np.arange(1, len(screen) + 1))
    arms["screening"] = screen
    timing["screening"] = {"propose_cpu_seconds": time.process_time() - t0, "n_pool": int(len(pool))}
    log.info("screening: %d known cells of two elements of the set; %d drawn", len(pool), len(screen))

    t0 = time.process_time()
    protos = binary_prototypes(dataset["id"], [structure_from_record(r) for r in dataset["structure"]])
    log.info("%d binary prototypes in the source data set", len(protos))
    subs = substitutions(protos, ELEMENTS, volumes, args.n_substitutions, rng)
    checked = get_domain("crystals").filter_candidates(subs, dataset, camp.filters, known)
    keep = checked[checked["valid"] & checked["unique"]].copy()
    sub_seconds = time.process_time() - t0
    log.info("substitution: %d drawn, %d valid, %d valid+unique, %d pass every filter", len(subs),
             int(checked["valid"].sum()), len(keep), int(keep["passes"].sum()))
    passing = keep[keep["passes"]]
    pick = passing.sample(n=min(args.n, len(passing)), random_state=args.seed)
    pick = pick.assign(generator="substitution_random", predicted_property=np.nan, distance_to_target=np.nan,
                       in_target=False)
    pick.insert(0, "rank", np.arange(1, len(pick) + 1))
    arms["substitution_random"] = pick
    t1 = time.process_time()
    ranked = rank(predicted(keep, predictor, tgt).assign(generator="substitution_ranked"))
    arms["substitution_ranked"] = ranked
    n_sub = {"n_drawn": int(len(subs)), "n_valid": int(checked["valid"].sum()), "n_valid_unique": int(len(keep)),
             "n_passing": int(keep["passes"].sum())}
    timing["substitution_random"] = {"propose_cpu_seconds": sub_seconds, **n_sub}
    timing["substitution_ranked"] = {"propose_cpu_seconds": sub_seconds + time.process_time() - t1, **n_sub,
                                     "n_passing_in_target": int((ranked["passes"] & ranked["in_target"]).sum())}
    for arm, table in arms.items():
        table.to_parquet(out / f"{arm}_candidates.parquet")
    timing["elements"] = list(ELEMENTS)
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    log.info("%s", json.dumps(timing))


def _chain(camp, oracle: dict, campaign: Path, candidates: Path, folder: Path) -> tuple[dict, dict]:
    """Run the oracle chain on one arm's candidate table; return its metrics and the wall and CPU seconds spent."""
    from invdesign.pipeline.verify import run_oracle_chain

    t0, c0 = time.monotonic(), time.process_time()
    m = run_oracle_chain(campaign=f"baseline_{folder.name}", domain="crystals", oracle=oracle,
                         target=camp.target.to_dict(), property_column=camp.dataset.property_column,
                         property_kind=None, candidates=str(candidates), known=str(campaign / "data" / "known.parquet"),
                         prepared=str(campaign / "oracle" / "prepared.json"), folder=str(folder))
    return m, {"oracle_wall_seconds": time.monotonic() - t0, "oracle_cpu_seconds": time.process_time() - c0}


def _update_timing(out: Path, arm: str, spent: dict) -> None:
    timing = json.loads((out / "timing.json").read_text())  # read again: another process may check other arms
    timing[arm] |= spent
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")


VERDICTS = ("stable", "sevennet_stable", "eos_in_target", "committee_confirmed")
MEASURED = ("e_hull", "sevennet_e_hull", "eos_bulk_modulus_gpa", "sevennet_eos_bulk_modulus_gpa")


def _record_rerun(out: Path, arm: str, folder: Path, m: dict, spent: dict, threads) -> None:
    """Plan addendum 4: an arm checked again into ``folder`` to measure its cost under this run's conditions; record
    that cost (``rerun_*``) and compare the rerun's verdicts with the recorded ones, which stay."""
    first = pd.read_parquet(out / arm / "candidates_verified.parquet")
    again = pd.read_parquet(folder / "candidates_verified.parquet")
    same = {c: bool(first[c].astype(str).tolist() == again[c].astype(str).tolist()) for c in VERDICTS}
    diff = {c: float(np.nanmax(np.abs(pd.to_numeric(first[c], errors="coerce").to_numpy(float)
                                      - pd.to_numeric(again[c], errors="coerce").to_numpy(float)), initial=0.0))
            for c in MEASURED}
    log.info("%s rerun: %d committee-confirmed; same verdicts: %s; %s", arm, m["n_confirmed"], json.dumps(same),
             json.dumps(spent))
    _update_timing(out, arm, {f"rerun_{k}": v for k, v in spent.items()} |
                   {"rerun_threads": threads, "rerun_same_verdicts": same, "rerun_max_abs_diff": diff})


def check(args) -> None:
    campaign, out = Path(args.campaign), Path(args.out)
    camp = campaign_settings(campaign, args.configfile)
    # one batch per arm and potential: the reference phases of the arm's chemical systems are relaxed once (the
    # verdicts do not depend on the batching; the cost is what a user running this arm alone would pay)
    oracle = camp.oracle.to_dict() | {"top_k": args.n, "batch_size": args.n}
    oracle["committee"] = oracle["committee"] | {"select": "all", "top_k": None, "batch_size": args.n}
    for arm in args.arms:
        candidates = out / f"{arm}_candidates.parquet"
        checked = (out / arm / "metrics.json").exists()
        if args.cost_rerun:
            if not checked:
                log.info("%s: not checked yet, nothing to rerun", arm)
                continue
            folder = Path(args.cost_rerun) / arm
            m, spent = _chain(camp, oracle, campaign, candidates, folder)
            _record_rerun(out, arm, folder, m, spent, args.threads)
            continue
        if checked:
            log.info("%s: checked already", arm)
            continue
        m, spent = _chain(camp, oracle, campaign, candidates, out / arm)
        log.info("%s: %d committee-confirmed of %d checked; %s", arm, m["n_confirmed"],
                 m["n_checked_by_confirming_tier"], json.dumps(spent))
        _update_timing(out, arm, spent)


def analyse(args) -> dict:
    from pymatgen.core import Composition

    from invdesign.artifacts import read_table
    from invdesign.targets import in_target

    out = Path(args.out)
    camp = campaign_settings(args.campaign, args.configfile)
    tgt = camp.target.to_dict()
    timing = json.loads((out / "timing.json").read_text())
    bench_dir = Path(args.campaign_benchmarks)
    res = {"elements": timing.get("elements"), "arms": {}}
    for arm in ARMS:
        if not (out / arm / "metrics.json").exists():
            continue
        v = pd.read_parquet(out / arm / "candidates_verified.parquet")
        ran = v["sevennet_error"].notna()
        hit = v["committee_confirmed"].eq(True)
        k7 = pd.to_numeric(v["sevennet_eos_bulk_modulus_gpa"], errors="coerce").to_numpy(float)
        both_stable = v["stable"].eq(True) & v["sevennet_stable"].eq(True)
        both = both_stable & v["eos_in_target"].eq(True) & in_target(k7, tgt)  # the verdict without novelty
        n, hits = int(len(v)), int(hit.sum())
        t = timing.get(arm, {})
        extra = campaign_cpu_seconds(bench_dir, CAMPAIGN_RULES.get(arm, ()))
        # addendum 4: an arm's oracle cost measured again under the other arms' conditions replaces its first one
        oracle_cpu = t.get("rerun_oracle_cpu_seconds", t.get("oracle_cpu_seconds", 0.0))
        cpu = (t.get("propose_cpu_seconds") or 0.0) + (extra or 0.0) + oracle_cpu
        res["arms"][arm] = r = {
            "n_checked": n, "n_committee_ran": int(ran.sum()), "n_both_stable": int(both_stable.sum()),
            "n_hits": hits, "hits_per_check": hits / n if n else None, "ci95": wilson(hits, n),
            "n_rediscoveries": int((both & ~hit).sum()),
            "n_stable_in_target_either_novelty": int(both.sum()),
            "ci95_stable_in_target": wilson(int(both.sum()), n),
            "n_relaxed_onto_known": int(v["matches_known"].fillna("").ne("").sum()),
            "distinct_formulas": int(v["formula"].nunique()),
            "campaign_cpu_seconds": extra, "oracle_cpu_seconds_used": oracle_cpu, "cpu_seconds": cpu,
            "hits_per_cpu_hour": hits / (cpu / 3600) if cpu else None,
            "hits_per_cpu_hour_ci95": poisson_rate_ci(hits, cpu / 3600), **t,
            "hits": v.loc[hit, "formula"].tolist(), "stable_in_target": v.loc[both, "formula"].tolist()}
        if arm == "generator":  # its cells inside the element set: the element-matched arms' reach
            inside = v["formula"].map(lambda f: {el.symbol for el in Composition(f).elements} <= set(ELEMENTS))
            n_in, hits_in = int(inside.sum()), int((inside & hit).sum())
            r["inside_set"] = {"n_checked": n_in, "n_hits": hits_in, "ci95": wilson(hits_in, n_in)}
        if arm == "screening":  # known cells: the committee's verdict against the data set's own DFT modulus
            dft = read_table(Path(args.campaign) / "data" / "dataset.parquet").set_index("id")
            dft = dft[camp.dataset.property_column]
            k_dft = v["sample_id"].map(dft).to_numpy(float)
            k_mean = np.nanmean(np.c_[pd.to_numeric(v["eos_bulk_modulus_gpa"], errors="coerce").to_numpy(float), k7], 1)
            dft_in = in_target(k_dft, tgt)
            r["known_dft"] = {
                "n_dft_in_target": int(dft_in.sum()), "n_both_stable_dft_in_target": int((both_stable & dft_in).sum()),
                "n_rediscoveries_dft_in_target": int((both & dft_in).sum()),
                "median_committee_minus_dft_k_gpa_both_stable": float(np.median((k_mean - k_dft)[both_stable]))}
    base = res["arms"].get("generator")
    for arm, r in res["arms"].items():
        if base and arm != "generator":
            for key, col in (("n_hits", "fisher_p_hits_vs_generator"),
                             ("n_stable_in_target_either_novelty", "fisher_p_stable_in_target_vs_generator")):
                r[col] = fisher_p(base[key], base["n_checked"], r[key], r["n_checked"])
            inside = base.get("inside_set")
            if inside:
                r["fisher_p_hits_vs_generator_inside_set"] = fisher_p(inside["n_hits"], inside["n_checked"],
                                                                      r["n_hits"], r["n_checked"])
    return write_analysis(out, res, PACKAGES)


def main(argv=None) -> None:
    p = baselines_parser(__doc__, "results/mp_bulk", ARMS)
    p.add_argument("--n", type=int, default=24, help="cells per arm handed to the oracle")
    p.add_argument("--n-substitutions", type=int, default=3000)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--cost-rerun", default=None, metavar="DIR",
                   help="check: run the checked arms again into DIR to measure their oracle cost under this run's "
                        "conditions (recorded as rerun_*; the recorded verdicts stay and are compared)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run_step(p, argv, {"propose": propose, "check": check, "analyse": analyse})


if __name__ == "__main__":
    main()
