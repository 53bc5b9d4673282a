"""Check the crystal oracle's EOS bulk modulus (CHGNet + matcalc EOSCalc) against Materials Project DFT.

    python -m bench.chgnet_eos_check [--n 20] [--seed 0] [--max-sites 8] [--out bench/out/chgnet_eos/result.json]

Picks ``--n`` binary compounds from the mirrored MP elasticity file (seeded; one per bulk-modulus
quantile bin, so the picks span the whole K range) and judges them with the workflow's own crystal oracle
(``invdesign.pipeline.verify.make_oracle`` -> ``ChgnetOracle.evaluate``, exactly what an ``oracle_batch`` job
runs), with the settings a campaign would give in its ``oracle:`` block:
``{type: chgnet, fmax: --fmax, max_steps: --steps, eos_for: all, rescale_volume: false, batch_size: --batch-size}``
(the MP cells are relaxed as they are, not rescaled). The oracle relaxes each cell with CHGNet, places it on the
CHGNet hull of the picked cells plus elemental references, fits a Birch-Murnaghan EOS with matcalc's ``EOSCalc``
and matches the relaxed cell against the picks. The bench compares the EOS modulus with the DFT K_VRH from elastic
constants: MAE (GPa), Spearman rho, and seconds per structure (each batch's whole oracle time, reference phases
included, over its cells). ``--max-sites`` bounds the cell size to keep a CPU run short.

The data file is mp-binary-pbe-elasticity-2025.1.json.gz (see ../shared/data/README.md): a JSON
list of {mp_id, formula, structure (Structure.as_dict()), bulk_modulus_vrh, shear_modulus_vrh}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from bench.lib.common import ROOT, provenance

#: the packages whose versions the result records
PACKAGES = ("chgnet", "matcalc", "pymatgen", "torch")
DATA_NAME = "mp-binary-pbe-elasticity-2025.1.json.gz"


def default_data() -> str:
    mirror = os.environ.get("INVDESIGN_DATA_MIRROR") or str(ROOT.parent / "shared" / "data")
    return str(Path(mirror) / DATA_NAME)


def pick(records: list[dict], n: int, seed: int, max_sites: int) -> list[dict]:
    """One record per bulk-modulus quantile bin (``n`` bins over the records with <= ``max_sites``)."""
    pool = [r for r in records if len(r["structure"]["sites"]) <= max_sites and r["bulk_modulus_vrh"] is not None
            and math.isfinite(r["bulk_modulus_vrh"])]
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} records with <= {max_sites} sites; need {n}")
    order = np.argsort([r["bulk_modulus_vrh"] for r in pool], kind="stable")
    rng = np.random.default_rng(seed)
    return [pool[int(rng.choice(bin_))] for bin_ in np.array_split(order, n)]


def device_env(device: str) -> None:
    """The oracle loads CHGNet on its default device (CUDA when visible): steer it by what torch may see."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]


def main(argv=None) -> None:
    from invdesign.config.oracles import ChgnetOracleSettings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=default_data(), help=f"path of {DATA_NAME}")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-sites", type=int, default=8)
    ap.add_argument("--fmax", type=float, default=0.05, help="oracle.fmax: force tolerance (eV/A) of the relaxation")
    ap.add_argument("--steps", type=int, default=500, help="oracle.max_steps: max optimizer steps of each relaxation")
    ap.add_argument("--batch-size", type=int, default=ChgnetOracleSettings().batch_size,
                    help="oracle.batch_size: cells per oracle evaluate call (one oracle_batch job of the workflow)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (small cells run fastest on 1, especially on a busy CPU); 0: torch default")
    ap.add_argument("--device", default="cpu", help="CHGNet device (cpu, cuda, cuda:N)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "chgnet_eos" / "chgnet_eos_check.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device_env(args.device)

    import pandas as pd
    import torch
    from pymatgen.core import Structure
    from scipy.stats import spearmanr

    import chgnet
    import matcalc
    from invdesign.chem.crystals import structure_to_record
    from invdesign.oracles.potentials import load_chgnet
    from invdesign.pipeline.verify import make_oracle

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with gzip.open(args.data, "rt") as fh:
        records = json.load(fh)
    picks = pick(records, args.n, args.seed, args.max_sites)
    structures = [Structure.from_dict(rec["structure"]) for rec in picks]
    # the campaign's oracle: block (validated by the oracle's settings class), for the campaign property the
    # oracle measures by EOS
    oracle_cfg = {"type": "chgnet", "fmax": args.fmax, "max_steps": args.steps, "eos_for": "all",
                  "rescale_volume": False, "top_k": None, "batch_size": args.batch_size}
    oracle = make_oracle("crystals", oracle_cfg, {"min": 0.0}, "bulk_modulus_gpa")
    # the picked cells are the oracle's data set table (the hull's reference phases, the known set for matches_known)
    dataset = pd.DataFrame({"id": [rec["mp_id"] for rec in picks],
                            "formula": [s.composition.reduced_formula for s in structures],
                            "structure": [structure_to_record(s) for s in structures],
                            "property": [rec["bulk_modulus_vrh"] for rec in picks]})
    prepared = oracle.prepare(dataset)
    candidates = dataset[["formula", "structure"]].assign(rank=range(1, len(dataset) + 1),
                                                          predicted_property=float("nan"))

    rows, batch_seconds = [], []
    size = oracle.settings.batch_size
    for b in range(0, len(candidates), size):
        batch = candidates.iloc[b:b + size].reset_index(drop=True)
        t0 = time.monotonic()
        checked = oracle.evaluate(batch, dataset, prepared)
        seconds = time.monotonic() - t0
        batch_seconds.append(seconds)
        for j, res in checked.iterrows():
            rec, structure = picks[b + j], structures[b + j]
            k = float(res["eos_bulk_modulus_gpa"])
            rows.append({"mp_id": rec["mp_id"], "formula": rec["formula"], "n_sites": len(structure),
                         "k_vrh_dft_gpa": rec["bulk_modulus_vrh"], "k_eos_chgnet_gpa": k,
                         "relax_converged": bool(res["relax_converged"]), "oracle_error": res["oracle_error"],
                         "e_hull": float(res["e_hull"]), "stable": bool(res["stable"]),
                         "matches_known": res["matches_known"], "batch": b // size})
            logging.info("%2d/%d %-10s %2d sites  K_DFT %6.1f  K_CHGNet %6.1f GPa", b + j + 1, len(picks),
                         rec["formula"], len(structure), rec["bulk_modulus_vrh"], k)
        logging.info("oracle batch %d: %d cells in %.1fs", b // size, len(batch), seconds)
    calc = load_chgnet().calculator  # the oracle's (cached) CHGNet

    dft = np.array([r["k_vrh_dft_gpa"] for r in rows])
    pred = np.array([r["k_eos_chgnet_gpa"] for r in rows])
    ok = np.isfinite(pred)
    total = float(sum(batch_seconds))
    result = {
        "n": len(rows),
        "n_failed": int((~ok).sum()),
        "mae_gpa": float(np.abs(pred[ok] - dft[ok]).mean()) if ok.any() else math.nan,
        "spearman_rho": float(spearmanr(dft[ok], pred[ok]).statistic) if ok.sum() > 2 else math.nan,
        "mean_signed_error_gpa": float((pred[ok] - dft[ok]).mean()) if ok.any() else math.nan,
        "seconds_per_structure": total / max(len(rows), 1),
        "seconds_total": total,
        "seconds_per_batch": batch_seconds,
        "settings": {"seed": args.seed, "max_sites": args.max_sites, "fmax": args.fmax, "steps": args.steps,
                     "threads": torch.get_num_threads(), "device": str(calc.device),
                     "oracle": oracle.settings.to_dict(),
                     "eos": "the chgnet oracle's: matcalc EOSCalc defaults (11 points, linear strain +-10%, "
                            "fixed-volume shape relaxation), EOS pre-relaxation skipped for converged cells",
                     "seconds": "oracle evaluate time per batch (relaxation, hull references, EOS, matching) over "
                                "its cells"},
        "versions": {"chgnet": chgnet.__version__, "matcalc": matcalc.__version__, "torch": torch.__version__,
                     "chgnet_model": calc.model.version},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "provenance": provenance(PACKAGES),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
