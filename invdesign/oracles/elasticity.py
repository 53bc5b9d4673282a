"""Elastic moduli of relaxed crystal cells from any ASE calculator: matcalc's ``ElasticityCalc`` (stress-strain
fit of the full elastic tensor), its Voigt-Reuss-Hill shear and bulk moduli, and Chen's Vickers hardness from them.

The crystal oracle runs it with CHGNet on its relaxed cells and with SevenNet on the committee's re-relaxed ones;
``bench/committee_shear.py`` measures both against the Materials Project's PBE moduli (docs/benchmarks.md).
matcalc is imported lazily.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np

from ..properties import chen_vickers_hardness

log = logging.getLogger(__name__)

#: the value columns of one potential (``prefix`` + name; the CHGNet tier has no prefix, SevenNet's "sevennet_")
ELASTIC_COLUMNS = ("elastic_shear_modulus_gpa", "elastic_bulk_modulus_gpa", "vickers_hardness_gpa", "elastic_r2")


def _no_moduli(error: str, r2: float = math.nan) -> dict:
    return {"g": math.nan, "k": math.nan, "hardness": math.nan, "r2": r2, "error": error}


def elastic_moduli(structures: Sequence, calculator, *, fmax: float, relax_ions: bool,
                   max_gpa: float) -> list[dict]:
    """Per relaxed structure (None: no structure): ``{"g", "k": VRH shear and bulk moduli (GPa), "hardness": Chen's
    Vickers hardness from them (GPa), "r2": mean R^2 of the stress-strain fits, "error": "" or why there are no
    moduli}``. ``relax_ions``: relax the atoms of each strained cell (relaxed-ion constants, what MP reports) at
    force threshold ``fmax``; otherwise clamped-ion constants. A tensor with a non-positive G or K (mechanically
    unstable, or a failed fit), or one above ``max_gpa`` (a broken potential), gives no moduli."""
    from matcalc import ElasticityCalc

    calc = ElasticityCalc(calculator, fmax=fmax, relax_structure=False, relax_deformed_structures=relax_ions,
                          units_GPa=True)
    out, t0 = [], time.monotonic()
    for i, structure in enumerate(structures):
        out.append(_one(calc, structure, max_gpa))
        log.info("elastic tensor %d/%d: G=%.1f K=%.1f GPa %s(%.1fs)", i + 1, len(structures), out[-1]["g"],
                 out[-1]["k"], out[-1]["error"] and f"[{out[-1]['error']}] ", time.monotonic() - t0)
    return out


def _one(calc, structure, max_gpa: float) -> dict:
    if structure is None:
        return _no_moduli("no structure")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matcalc warns on a low fit R^2; it is reported in "r2"
            res = calc.calc(structure)
        g, k, r2 = float(res["shear_modulus_vrh"]), float(res["bulk_modulus_vrh"]), float(res["r2_score_mean"])
    except Exception as exc:  # noqa: BLE001  (one structure's failure is an error, not a crash)
        return _no_moduli(f"elastic tensor failed: {type(exc).__name__}: {exc}"[:200])
    if not (g > 0 and k > 0):  # also False for NaN
        return _no_moduli(f"elastic tensor gave no positive moduli (G {g:.3g}, K {k:.3g} GPa)", r2)
    if max(g, k) > max_gpa:
        return _no_moduli(f"elastic tensor gave implausible moduli (G {g:.3g}, K {k:.3g} GPa > {max_gpa:g})", r2)
    return {"g": g, "k": k, "hardness": chen_vickers_hardness(k, g), "r2": r2, "error": ""}


def elastic_columns(structures: Sequence, want: Sequence[bool], calculator, *, fmax: float, relax_ions: bool,
                    max_gpa: float, prefix: str = "") -> tuple[dict[str, np.ndarray], list[str]]:
    """:data:`ELASTIC_COLUMNS` (named ``prefix`` + column) for the structures where ``want`` is true (NaN
    elsewhere), and each structure's elastic error ('' where none ran or it worked)."""
    idx = [i for i, w in enumerate(want) if w and structures[i] is not None]
    fits = dict(zip(idx, elastic_moduli([structures[i] for i in idx], calculator, fmax=fmax,
                                        relax_ions=relax_ions, max_gpa=max_gpa)))
    none = _no_moduli("")
    cols = {prefix + name: np.array([fits.get(i, none)[key] for i in range(len(structures))], float)
            for name, key in zip(ELASTIC_COLUMNS, ("g", "k", "hardness", "r2"))}
    return cols, [fits.get(i, none)["error"] for i in range(len(structures))]
