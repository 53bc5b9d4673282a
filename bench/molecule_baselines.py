"""The molecule generators against matched classical baselines, judged by DFT (issue #24; plan:
bench/records/baselines/PLAN.md, written before this script).

    python -m bench.molecule_baselines propose --campaign results/qm9_gap
    python -m bench.molecule_baselines check   --campaign results/qm9_gap [--arms ga library generators]
    python -m bench.molecule_baselines analyse

Three arms hand molecules to the same oracle chain, with the same filters, the same novelty reference (the
campaign's known.parquet: all of QM9), the same xTB calibration (the campaign's prepared.json) and the same DFT
budget (``--n-dft`` single points each):

* ``generators``: the campaign's own ranked candidates (its VAE, diffusion and EBM samples);
* ``ga``: the graph GA of :mod:`invdesign.chem.graph_ga` seeded with random training molecules, its score minus
  the campaign's independent predictor's distance to the target; known molecules are not kept;
* ``library``: random single graph edits of random training molecules, a virtual library screened by the same
  predictor.

Each arm's proposals are filtered (:meth:`Domain.filter_candidates`, the campaign's filters) and ranked as the
workflow ranks them (passing, predicted in the target, distance to the target). ``check`` runs
:func:`invdesign.pipeline.verify.run_oracle_chain` per arm with the campaign's oracle settings, xTB on the
``--n-xtb`` best and DFT on the ``--n-dft`` best of those (further xTB blocks while an arm is short of DFT-eligible
molecules); CPU seconds of the proposals and wall seconds of each check are recorded.
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
PACKAGES = ("rdkit", "tblite", "pyscf", "torch", "scipy")
ARMS = ("generators", "ga", "library")
MAX_EXTRA_BLOCKS = 5
#: the campaign's Snakemake rules whose CPU time each arm's proposals need (besides the arm's own proposal step):
#: every arm ranks by the campaign's predictor; the generators arm also trains and samples its three generators
CAMPAIGN_RULES = {"generators": ("featurize", "train_predictor", "filter_rank",
                                 *(f"{s}_{g}" for g in ("vae", "diffusion", "ebm")
                                   for s in ("train_generator", "search"))),
                  "ga": ("featurize", "train_predictor"), "library": ("featurize", "train_predictor")}


class Predictor:
    """The campaign's independent predictor as a function of SMILES (NaN where no graph)."""

    def __init__(self, campaign: Path):
        import torch

        from invdesign.artifacts import load_model
        from invdesign.domains import get_domain

        self.model, ck = load_model(campaign / "models" / "predictor.pt")
        self.meta, self.dom, self.device = ck["meta"], get_domain("molecules"), torch.device("cpu")

    def __call__(self, smiles: list[str]) -> np.ndarray:
        from invdesign.pipeline.filter import predict

        graphs = self.dom.featurize_like(pd.DataFrame({"smiles": smiles}), self.meta)
        return predict(self.model, graphs, self.device)


def ranked(samples: list[str], arm: str, camp, campaign: Path, predictor: Predictor) -> pd.DataFrame:
    """The workflow's filters and ranking applied to one arm's proposals."""
    from invdesign.artifacts import read_table
    from invdesign.domains import get_domain
    from invdesign.pipeline.filter import rank
    from invdesign.targets import distance_to_target, in_target

    dom = get_domain("molecules")
    checked = dom.filter_candidates(pd.DataFrame({"smiles": samples}),
                                    read_table(campaign / "data" / "dataset.parquet"), camp.filters,
                                    read_table(campaign / "data" / "known.parquet"))
    keep = checked[checked["valid"] & checked["unique"]].copy()
    pred = predictor(keep["smiles"].tolist())
    tgt = camp.target.to_dict()
    keep["predicted_property"], keep["distance_to_target"] = pred, distance_to_target(pred, tgt)
    keep["in_target"], keep["generator"] = in_target(pred, tgt), arm
    return rank(with_tie_break(keep, tgt))


def with_tie_break(table: pd.DataFrame, tgt: dict) -> pd.DataFrame:
    """The same tie-break for every arm inside the target: closeness of the prediction to the window's centre (in
    the ``generator_disagreement`` column that :func:`invdesign.pipeline.filter.rank` sorts by last; the
    campaign's own tie-break, the generator's disagreement with the predictor, has no meaning for a baseline)."""
    from invdesign.targets import target_bounds

    lo, hi = target_bounds(tgt)
    centre = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else np.nan
    pred = table["predicted_property"].to_numpy(float)
    table = table.drop(columns=["rank"], errors="ignore")
    table["generator_disagreement"] = np.abs(pred - centre) if np.isfinite(centre) else 0.0
    return table


def propose(args) -> None:
    import random

    from invdesign.artifacts import read_table
    from invdesign.chem.graph_ga import mutate, run_ga
    from invdesign.data.known import novelty_key
    from invdesign.targets import distance_to_target

    campaign, out = Path(args.campaign), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    camp = campaign_settings(campaign, args.configfile)
    predictor = Predictor(campaign)
    train = read_table(campaign / "data" / "dataset.parquet")
    train = train[train["split"] == "train"]["smiles"].tolist()
    known = set(read_table(campaign / "data" / "known.parquet")["smiles"])
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() else {}
    rng = np.random.default_rng(args.seed)
    for arm in args.arms:
        t0 = time.process_time()
        if arm == "generators":
            from invdesign.pipeline.filter import rank

            table = rank(with_tie_break(read_table(campaign / "candidates.parquet"), camp.target.to_dict()))
        elif arm == "ga":
            seeds = list(rng.choice(train, size=args.ga_population, replace=False))
            tgt = camp.target.to_dict()

            lo, hi = tgt["window"]

            def score(batch):  # outside the window: its distance; inside: the distance to its centre, a gradient
                pred = predictor(batch)
                return -(distance_to_target(pred, tgt) + 0.1 * np.abs(pred - (lo + hi) / 2))

            scored = run_ga(score, seeds, generations=args.ga_generations, population=args.ga_population,
                            offspring=args.ga_population, seed=args.seed,
                            keep=lambda s: novelty_key(s) not in known,
                            progress=lambda g, best: log.info("GA generation %d: best score %.3f", g, best))
            table = ranked(list(scored), arm, camp, campaign, predictor)
        else:
            py = random.Random(args.seed)
            parents = list(rng.choice(train, size=args.library_parents, replace=False))
            lib = {c for p in parents for c in (mutate(p, py) for _ in range(args.library_edits)) if c}
            log.info("library: %d distinct single-edit neighbours of %d training molecules", len(lib), len(parents))
            table = ranked(sorted(lib), arm, camp, campaign, predictor)
        seconds = time.process_time() - t0
        table.to_parquet(out / f"{arm}_candidates.parquet")
        timing[arm] = {"propose_cpu_seconds": seconds if arm != "generators" else None,
                       "n_proposed_valid_unique": int(len(table)), "n_passing": int(table["passes"].sum()),
                       "n_passing_in_target": int((table["passes"] & table["in_target"]).sum())}
        log.info("%s: %s", arm, timing[arm])
        (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")


def blocks(out: Path, arm: str) -> list[str]:
    """The arm's checked blocks in order: its first (``arm``), then the further xTB blocks (plan, addendum 3)."""
    return [b for b in [arm, *(f"{arm}_more{i}" for i in range(1, MAX_EXTRA_BLOCKS + 1))]
            if (out / b / "metrics.json").exists()]


def xtb_checked(out: Path, block: str) -> pd.DataFrame:
    """The rows xTB checked in one block: those of its verdict table (every passing candidate) with an xTB result."""
    verdicts = pd.read_parquet(out / block / "candidates_verified.parquet")
    return verdicts[verdicts["xtb_ok"].notna()]


def check(args) -> None:
    """Each arm's first block (xTB on its ``--n-xtb`` best, DFT on up to ``--n-dft`` of those), then, while its DFT
    count is short of ``--n-dft``, further blocks of the next ``--n-xtb`` of its ranking (plan, addendum 3)."""
    from invdesign.pipeline.verify import run_oracle_chain

    campaign, out = Path(args.campaign), Path(args.out)
    camp = campaign_settings(campaign, args.configfile)
    for arm in args.arms:
        for i in range(MAX_EXTRA_BLOCKS + 1):
            name = arm if i == 0 else f"{arm}_more{i}"
            done = blocks(out, arm)
            if name in done:
                continue
            n_dft = sum(json.loads((out / b / "metrics.json").read_text())["n_checked_by_confirming_tier"]
                        for b in done)
            if i and n_dft >= args.n_dft:
                break
            if i:  # the arm's ranking without what earlier blocks checked
                seen = set().union(*(xtb_checked(out, b)["smiles"] for b in done))
                table = pd.read_parquet(out / f"{arm}_candidates.parquet")
                table = table[~table["smiles"].isin(seen)]
                if not (table["passes"] & table["in_target"]).any():
                    log.info("%s: no candidates left for another block", arm)
                    break
                table.to_parquet(out / f"{name}_candidates.parquet")
            oracle = camp.oracle.to_dict() | {"top_k": args.n_xtb}
            oracle["dft"] = oracle["dft"] | {"top_k": args.n_dft - n_dft}
            t0 = time.monotonic()
            m = run_oracle_chain(campaign=f"baseline_{name}", domain="molecules", oracle=oracle,
                                 target=camp.target.to_dict(), property_column=camp.dataset.property_column,
                                 property_kind=None, candidates=str(out / f"{name}_candidates.parquet"),
                                 known=str(campaign / "data" / "known.parquet"),
                                 prepared=str(campaign / "oracle" / "prepared.json"), folder=str(out / name))
            timing = json.loads((out / "timing.json").read_text())
            timing.setdefault(name, {})["oracle_wall_seconds"] = time.monotonic() - t0
            log.info("%s: %d confirmed of %d checked by DFT", name, m["n_confirmed"],
                     m["n_checked_by_confirming_tier"])
            (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")


def analyse(args) -> dict:
    out = Path(args.out)
    timing = json.loads((out / "timing.json").read_text())
    res = {"arms": {}}
    for arm in ARMS:
        if not (out / arm / "metrics.json").exists():
            continue
        names = blocks(out, arm)
        parts = [pd.read_parquet(out / b / "candidates_verified.parquet") for b in names]
        v = pd.concat(parts, ignore_index=True)
        n, k = int(v["dft_ok"].eq(True).sum()), int(v["dft_confirmed"].eq(True).sum())
        first_n, first_k = int(parts[0]["dft_ok"].eq(True).sum()), int(parts[0]["dft_confirmed"].eq(True).sum())
        t = timing.get(arm, {})
        oracle_seconds = sum(timing.get(b, {}).get("oracle_wall_seconds", 0.0) for b in names)
        extra = campaign_cpu_seconds(Path(args.campaign_benchmarks), CAMPAIGN_RULES[arm])
        # proposals: CPU seconds (the campaign's Snakemake benchmark files, the arm's own process time); the
        # oracle: wall seconds of the check on the 2-core machine (the check recorded no CPU time)
        cost = (t.get("propose_cpu_seconds") or 0.0) + (extra or 0.0) + oracle_seconds
        res["arms"][arm] = {"n_dft": n, "n_confirmed": k, "confirmed_per_dft": k / n if n else None,
                            "ci95": wilson(k, n), "blocks": len(names),
                            "n_xtb": int(sum(len(xtb_checked(out, b)) for b in names)),
                            "first_block": {"n_dft": first_n, "n_confirmed": first_k, "ci95": wilson(first_k, first_n)},
                            **t, "oracle_wall_seconds": oracle_seconds, "campaign_cpu_seconds": extra,
                            "cost_seconds": cost,
                            "confirmed_per_hour": k / (cost / 3600) if cost else None,
                            "confirmed_per_hour_ci95": poisson_rate_ci(k, cost / 3600),
                            "dft_seconds": float(pd.to_numeric(v["dft_seconds"], errors="coerce").sum()),
                            "confirmed": v.loc[v["dft_confirmed"].eq(True), "smiles"].tolist()}
        hits = v[v["dft_confirmed"].eq(True)]
        for col in ("qed", "sa_score", "nearest_known_similarity"):  # what a chemist asks of the hits next
            if col in hits and len(hits):
                res["arms"][arm][f"hits_{col}_median"] = float(hits[col].median())
        res["arms"][arm]["hits_all_novel"] = bool(hits["novel"].all()) if len(hits) else None
    # the oracle's cost at one rate for every arm: the library arm ran with nothing else on the machine (the others
    # shared the 2 cores with the crystal study for part of their checks); its DFT seconds per single point and the
    # rest of its check (xTB, merging) per xTB-checked molecule price each arm's evaluations
    lib = res["arms"].get(args.reference_arm)
    if lib:
        dft_s = lib["dft_seconds"]
        per_dft, per_xtb = dft_s / lib["n_dft"], (lib["oracle_wall_seconds"] - dft_s) / lib["n_xtb"]
        res["oracle_rate"] = {"arm": args.reference_arm, "seconds_per_dft": per_dft, "seconds_per_xtb": per_xtb}
        for r in res["arms"].values():
            oracle = r["n_dft"] * per_dft + r["n_xtb"] * per_xtb
            r["cost_seconds_one_rate"] = (r.get("propose_cpu_seconds") or 0.0) + (r["campaign_cpu_seconds"] or 0.0) \
                + oracle
            r["confirmed_per_hour_one_rate"] = r["n_confirmed"] / (r["cost_seconds_one_rate"] / 3600)
            r["confirmed_per_hour_one_rate_ci95"] = poisson_rate_ci(r["n_confirmed"], r["cost_seconds_one_rate"] / 3600)
    base = res["arms"].get("generators")
    for arm, r in res["arms"].items():
        if base and arm != "generators":
            r["fisher_p_vs_generators"] = fisher_p(base["n_confirmed"], base["n_dft"], r["n_confirmed"], r["n_dft"])
    return write_analysis(out, res, PACKAGES)


def main(argv=None) -> None:
    p = baselines_parser(__doc__, "results/qm9_gap", ARMS)
    p.add_argument("--n-xtb", type=int, default=60)
    p.add_argument("--n-dft", type=int, default=30)
    p.add_argument("--reference-arm", default="library",
                   help="analyse: the arm whose check ran alone on the machine prices every arm's oracle evaluations")
    p.add_argument("--ga-population", type=int, default=200)
    p.add_argument("--ga-generations", type=int, default=20)
    p.add_argument("--library-parents", type=int, default=2000)
    p.add_argument("--library-edits", type=int, default=10)
    run_step(p, argv, {"propose": propose, "check": check, "analyse": analyse})


if __name__ == "__main__":
    main()
