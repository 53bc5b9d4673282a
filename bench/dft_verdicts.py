"""How often DFT confirms the earlier verdicts of a molecule campaign (issue #23).

Two arms from one finished campaign (``results/<campaign>``):

* ``predicted``: a seeded random sample of the passing candidates the independent predictor puts in the target;
* ``xtb``: every candidate whose calibrated xTB value lies in the target (``oracle/checked.parquet``).

Each molecule gets the oracle's own DFT tier (B3LYP/6-31G(2df,p) at its GFN2-xTB geometry; xTB is run first
where the campaign did not check it). Records are appended as they come (resumable); ``analyse`` gives, per arm,
the share in the target and the share confirmed (the oracle's rule: at least 80% of the protocol's measured errors
keep the value in the target), with Wilson 95% intervals.

    python -m bench.dft_verdicts run --campaign results/qm9_gap --n 20
    python -m bench.dft_verdicts analyse
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from bench.lib.common import run_or_analyse, run_or_analyse_parser, write_analysis
from bench.lib.stats import confirmed_share, wilson

log = logging.getLogger("bench")
#: the packages whose versions the analysis records
PACKAGES = ("rdkit", "tblite", "pyscf", "numpy")


def arms(campaign: Path, n: int, seed: int) -> pd.DataFrame:
    cands = pd.read_parquet(campaign / "candidates.parquet")
    pred = cands[cands["passes"].astype(bool) & cands["in_target"].astype(bool)]
    pred = pred.sample(n=min(n, len(pred)), random_state=seed)
    checked = pd.read_parquet(campaign / "oracle" / "checked.parquet")
    xtb = checked[checked["xtb_in_target"].eq(True)]
    return pd.concat([pred[["rank", "smiles", "predicted_property"]].assign(arm="predicted", molblock=None),
                      xtb[["rank", "smiles", "predicted_property", "molblock", "xtb_calibrated"]].assign(arm="xtb")],
                     ignore_index=True)


def run(args) -> None:
    from invdesign.oracles.dft import frontier_from_molblock
    from invdesign.oracles.xtb import xtb_verify

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    done = {(r["arm"], r["smiles"]) for r in map(json.loads, path.read_text().splitlines())} if path.exists() else set()
    todo = [r for r in arms(Path(args.campaign), args.n, args.seed).itertuples(index=False)
            if (r.arm, r.smiles) not in done]
    log.info("%d molecules to check (%d recorded)", len(todo), len(done))
    t0 = time.monotonic()
    for i, r in enumerate(todo, start=1):
        rec = {"arm": r.arm, "rank": int(r.rank), "smiles": r.smiles, "predicted": float(r.predicted_property),
               "xtb_calibrated": getattr(r, "xtb_calibrated", None)}
        mb = r.molblock
        if not isinstance(mb, str):
            x = xtb_verify(r.smiles)
            rec["xtb_gap_ev"], rec["xtb_connectivity_ok"] = x.get("xtb_gap_ev"), x.get("xtb_connectivity_ok")
            mb = x.get("molblock")
        if isinstance(mb, str):
            rec.update(frontier_from_molblock(mb, threads=1))
        else:
            rec["dft_error"] = "no xTB geometry"
        rec["campaign"] = str(args.campaign)
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        el = time.monotonic() - t0
        log.info("%d/%d %s %s: predicted %.2f, DFT %s eV [%.0fs]", i, len(todo), r.arm, r.smiles,
                 r.predicted_property, rec.get("dft_gap_ev"), el)


def analyse(args) -> dict:
    d = pd.read_json(Path(args.out) / "records.jsonl", lines=True)
    lo, hi = args.window
    res = {"window_ev": [lo, hi], "confirm_probability": args.confirm_probability}
    for arm, part in d.groupby("arm"):
        ok = part[part.get("dft_ok", pd.Series(False, index=part.index)).eq(True)]
        gap = ok["dft_gap_ev"]
        n, k_in = len(ok), int(((gap >= lo) & (gap <= hi)).sum())
        k_conf = int(confirmed_share(gap, (lo, hi), args.confirm_probability).sum())
        res[arm] = {"n_molecules": int(len(part)), "n_dft_ok": n, "n_in_target": k_in,
                    "share_in_target": k_in / n if n else None, "share_in_target_ci95": wilson(k_in, n),
                    "n_confirmed": k_conf, "share_confirmed": k_conf / n if n else None,
                    "share_confirmed_ci95": wilson(k_conf, n),
                    "mean_abs_predicted_minus_dft_ev": float((ok["predicted"] - gap).abs().mean()) if n else None,
                    "mean_abs_xtb_calibrated_minus_dft_ev": float((pd.to_numeric(ok["xtb_calibrated"]) - gap).abs()
                                                                  .mean()) if n and ok["xtb_calibrated"].notna().any()
                    else None}
    return write_analysis(args.out, res, PACKAGES)


def main(argv=None) -> None:
    p = run_or_analyse_parser(__doc__)
    p.add_argument("--campaign", default="results/qm9_gap")
    p.add_argument("--out", default="bench/records/dft_verdicts")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=float, nargs=2, default=[4.0, 5.0])
    p.add_argument("--confirm-probability", type=float, default=0.8)
    run_or_analyse(p, argv, run, analyse)


if __name__ == "__main__":
    main()
