"""The EDM bench's conditional answers judged by DFT instead of the GNN judge (issue #23, item 7).

The answers come from ``bench/molecules_conditional_edm.py --stages dft_requests`` (``requests.parquet``: per
generator and k, one answer per request with the guide's and the judge's predictions). Per arm
(generator, k) the first ``--per-arm`` requests with a valid answer are judged; every distinct SMILES gets the
molecule oracle's own chain once: GFN2-xTB geometry (lowest energy of ``--conformers`` embeddings), then the DFT
tier's single point (B3LYP/6-31G(2df,p), density fitting, QM9's level of theory). Molecules are taken round-robin
over the arms, so a partial record is balanced, and appended as they come (resumable across sessions).

    python -m bench.edm_dft run [--max-minutes 120]
    python -m bench.edm_dft analyse

``analyse`` reports per arm the DFT-judged MAE against the request with its standard error, and on the same
molecules the GNN judge's MAE, the judge's own error against DFT and the guide's error on its picks. Plan:
bench/records/edm_dft/PLAN.md.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.lib.common import ROOT, run_or_analyse, run_or_analyse_parser, write_analysis

log = logging.getLogger("bench")

RECORDS = ROOT / "bench" / "records" / "edm_dft"
#: the packages whose versions the analysis records
PACKAGES = ("rdkit", "tblite", "pyscf", "gpu4pyscf", "numpy")


def arms(requests: pd.DataFrame, per_arm: int) -> pd.DataFrame:
    """Per (generator, k): the first ``per_arm`` requests (request order) whose answer is a valid molecule."""
    valid = requests[requests["valid"].astype(bool)].sort_values(["generator", "k", "request"])
    return valid.groupby(["generator", "k"], sort=True).head(per_arm).reset_index(drop=True)


def round_robin(chosen: pd.DataFrame) -> list[str]:
    """Distinct SMILES in the order: first answer of every arm, then the second of every arm, ..."""
    chosen = chosen.assign(pos=chosen.groupby(["generator", "k"]).cumcount())
    order, seen = [], set()
    for s in chosen.sort_values(["pos", "generator", "k"])["smiles"]:
        if s not in seen:
            seen.add(s)
            order.append(s)
    return order


def _recorded(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {r["smiles"]: r for r in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}


def run(args) -> None:
    from invdesign.oracles.dft import frontier_from_molblock
    from invdesign.oracles.xtb import xtb_verify

    out = Path(args.out)
    path = out / "records.jsonl"
    done = _recorded(path)
    order = round_robin(arms(pd.read_parquet(out / "requests.parquet"), args.per_arm))
    i, n = (int(x) for x in args.shard.split("/"))
    todo = [s for k, s in enumerate(order) if s not in done and k % n == i]  # a shard: side-by-side processes
    log.info("%d molecules to judge (%d recorded)", len(todo), len(done))
    t0 = time.monotonic()
    for i, smi in enumerate(todo, start=1):
        if args.max_minutes and time.monotonic() - t0 > 60 * args.max_minutes:
            log.info("time budget of %.0f min spent; %d left for the next run", args.max_minutes, len(todo) - i + 1)
            break
        x = xtb_verify(smi, conformers=args.conformers)
        rec = {"smiles": smi, "xtb_ok": bool(x.get("xtb_ok")), "xtb_connectivity_ok": x.get("xtb_connectivity_ok"),
               "xtb_gap_ev": x.get("xtb_gap_ev"), "xtb_error": x.get("oracle_error")}
        mb = x.get("molblock")
        if isinstance(mb, str) and x.get("xtb_connectivity_ok"):
            rec.update(frontier_from_molblock(mb, threads=args.threads))
        else:
            rec.update(dft_ok=False, dft_error="no xTB geometry that keeps the connectivity")
        rec["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with path.open("a") as fh:
            fh.write(json.dumps({k: v for k, v in rec.items() if k not in ("dft_homo_density", "dft_lumo_density")})
                     + "\n")
        log.info("%d/%d %s: DFT %s eV [%.0fs]", i, len(todo), smi, rec.get("dft_gap_ev"), time.monotonic() - t0)


def _mae(err: pd.Series) -> dict:
    err = err.dropna().abs()
    n = len(err)
    return {"mae_ev": float(err.mean()) if n else None,
            "se_ev": float(err.std(ddof=1) / np.sqrt(n)) if n > 1 else None, "n": int(n)}


def analyse(args) -> dict:
    out = Path(args.out)
    requests = pd.read_parquet(out / "requests.parquet")
    rec = pd.DataFrame(list(_recorded(out / "records.jsonl").values()))
    if rec.empty:  # nothing judged yet
        rec = pd.DataFrame(columns=["smiles", "dft_ok", "dft_gap_ev", "dft_error"])
    chosen = arms(requests, args.per_arm).merge(rec, on="smiles", how="left")
    res = {"per_arm": args.per_arm, "floor": "the DFT protocol's own error against QM9: MAE 0.160 eV "
           "(bench/records/dft_protocol, five conformers)", "arms": {}}
    for (gen, k), part in chosen.groupby(["generator", "k"]):
        n_req = int(((requests["generator"] == gen) & (requests["k"] == k)).sum())
        n_valid = int(((requests["generator"] == gen) & (requests["k"] == k) & requests["valid"]).sum())
        ok = part[part["dft_ok"].eq(True)]
        arm = {"requests": n_req, "share_valid": n_valid / n_req if n_req else None,
               "chosen": int(len(part)), "judged": int(part["dft_ok"].notna().sum()), "dft_ok": int(len(ok)),
               "failed": {str(e): int(c) for e, c in part.loc[part["dft_ok"].eq(False), "dft_error"]
                          .value_counts().items()},
               "dft_vs_request": _mae(ok["dft_gap_ev"] - ok["target_ev"]),
               "gnn_judge_vs_request": _mae(ok["judge_ev"] - ok["target_ev"]),
               "gnn_judge_vs_dft": _mae(ok["judge_ev"] - ok["dft_gap_ev"]),
               "guide_vs_request": _mae(ok["guide_ev"] - ok["target_ev"]),
               "guide_vs_dft": _mae(ok["guide_ev"] - ok["dft_gap_ev"]),
               "mean_dft_minus_request_ev": float((ok["dft_gap_ev"] - ok["target_ev"]).mean()) if len(ok) else None}
        res["arms"][f"{gen} k={k}"] = arm
    return write_analysis(out, res, PACKAGES)


def main(argv=None) -> None:
    p = run_or_analyse_parser(__doc__)
    p.add_argument("--out", default=str(RECORDS))
    p.add_argument("--per-arm", type=int, default=50)
    p.add_argument("--conformers", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this long (resume later)")
    p.add_argument("--shard", default="0/1", help="i/n: judge only every n-th molecule from the i-th (n processes side "
                   "by side append to the same records)")
    run_or_analyse(p, argv, run, analyse)


if __name__ == "__main__":
    main()
