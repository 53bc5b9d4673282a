"""Check the crystal oracle's EOS bulk modulus (CHGNet + matcalc EOSCalc) against Materials Project DFT.

    python bench/chgnet_eos_check.py [--n 20] [--seed 0] [--max-sites 8] [--out bench/out/chgnet_eos/result.json]

Picks ``--n`` binary compounds from the mirrored MP elasticity file (seeded; one per bulk-modulus
quantile bin, so the picks span the whole K range), relaxes each with CHGNet
(``invdesign.oracles.crystal.relax``), fits a Birch-Murnaghan EOS with matcalc's ``EOSCalc`` driven
by the ``CHGNetCalculator`` object (``eos_bulk_modulus``), and compares with the DFT K_VRH from
elastic constants: MAE (GPa), Spearman rho, and seconds per structure (relaxation + EOS).
``--max-sites`` bounds the cell size to keep a CPU run short.

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

ROOT = Path(__file__).resolve().parent.parent
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=default_data(), help=f"path of {DATA_NAME}")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-sites", type=int, default=8)
    ap.add_argument("--fmax", type=float, default=0.05, help="force tolerance (eV/A) of relaxation and EOS points")
    ap.add_argument("--steps", type=int, default=500, help="max optimizer steps of each relaxation")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (small cells run fastest on 1, especially on a busy CPU); 0: torch default")
    ap.add_argument("--device", default="cpu", help="CHGNet device (cpu, cuda)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "chgnet_eos" / "chgnet_eos_check.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch
    from pymatgen.core import Structure
    from scipy.stats import spearmanr

    import chgnet
    import matcalc
    from invdesign.oracles.crystal import eos_bulk_modulus, load_chgnet, relax

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with gzip.open(args.data, "rt") as fh:
        records = json.load(fh)
    picks = pick(records, args.n, args.seed, args.max_sites)
    calc = load_chgnet(use_device=args.device).calculator

    rows = []
    for i, rec in enumerate(picks):
        structure = Structure.from_dict(rec["structure"])
        t0 = time.monotonic()
        r = relax([structure], fmax=args.fmax, steps=args.steps, calculator=calc, log_every=0)[0]
        k = math.nan
        if r["structure"] is not None:
            k, = eos_bulk_modulus([r["structure"]], calculator=calc, relaxed=r["converged"], fmax=args.fmax,
                                  max_steps=args.steps)
        seconds = time.monotonic() - t0
        rows.append({"mp_id": rec["mp_id"], "formula": rec["formula"], "n_sites": len(structure),
                     "k_vrh_dft_gpa": rec["bulk_modulus_vrh"], "k_eos_chgnet_gpa": k,
                     "relax_converged": r["converged"], "relax_steps": r["steps"], "relax_error": r["error"],
                     "seconds": round(seconds, 2)})
        logging.info("%2d/%d %-10s %2d sites  K_DFT %6.1f  K_CHGNet %6.1f GPa  %.1fs", i + 1, len(picks),
                     rec["formula"], len(structure), rec["bulk_modulus_vrh"], k, seconds)

    dft = np.array([r["k_vrh_dft_gpa"] for r in rows])
    pred = np.array([r["k_eos_chgnet_gpa"] for r in rows])
    ok = np.isfinite(pred)
    secs = np.array([r["seconds"] for r in rows])
    result = {
        "n": len(rows),
        "n_failed": int((~ok).sum()),
        "mae_gpa": float(np.abs(pred[ok] - dft[ok]).mean()) if ok.any() else math.nan,
        "spearman_rho": float(spearmanr(dft[ok], pred[ok]).statistic) if ok.sum() > 2 else math.nan,
        "mean_signed_error_gpa": float((pred[ok] - dft[ok]).mean()) if ok.any() else math.nan,
        "seconds_per_structure": float(secs.mean()),
        "seconds_total": float(secs.sum()),
        "settings": {"seed": args.seed, "max_sites": args.max_sites, "fmax": args.fmax, "steps": args.steps,
                     "threads": torch.get_num_threads(), "device": str(calc.device),
                     "eos": "matcalc EOSCalc defaults: 11 points, linear strain +-10%, fixed-volume shape relaxation"},
        "versions": {"chgnet": chgnet.__version__, "matcalc": matcalc.__version__, "torch": torch.__version__,
                     "chgnet_model": calc.model.version},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
