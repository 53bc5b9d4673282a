"""Birch-Murnaghan equation-of-state fits of crystal cells with any ASE calculator (matcalc's ``EOSCalc``): the bulk
modulus the crystal oracle measures with CHGNet, and the committee with SevenNet.

matcalc is imported lazily, so importing this module does not need it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .potentials import calculator_or_chgnet

if TYPE_CHECKING:
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

#: an EOS fit with a lower R^2 is not a modulus (an error row): the energies do not follow Birch-Murnaghan
MIN_EOS_R2 = 0.95


def eos_fits(
    structures: Sequence[Structure],
    *,
    calculator=None,
    relaxed: bool | Sequence[bool] = False,
    fmax: float,
    max_steps: int,
    max_abs_strain: float = 0.1,
    n_points: int = 11,
    min_r2: float = MIN_EOS_R2,
) -> list[dict]:
    """Birch-Murnaghan fit per structure from matcalc's ``EOSCalc``: ``{"k": GPa or NaN, "r2": fit R^2, "error":
    "" or why there is no modulus, "points": {"volumes": A^3, "energies": eV} of the scan (when it ran)}``. A fit
    with R^2 below ``min_r2`` gives no modulus.

    ``calculator`` is an ASE calculator (None: :func:`~invdesign.oracles.potentials.load_chgnet`'s). ``relaxed``
    (one flag, or one per structure) marks structures already relaxed with that potential: for those the
    EOSCalc pre-relaxation is skipped; the others are relaxed first (EOSCalc raises, hence NaN, if that does
    not converge). The scan applies linear strains in +-``max_abs_strain`` at ``n_points`` points, relaxing
    atoms and cell shape at fixed volume at each point (matcalc's defaults); ``fmax`` and ``max_steps`` bound
    every relaxation. Non-finite or non-positive moduli become NaN.
    """
    from matcalc import EOSCalc

    calc = calculator_or_chgnet(calculator)
    flags = [bool(relaxed)] * len(structures) if isinstance(relaxed, bool) else [bool(r) for r in relaxed]
    if len(flags) != len(structures):
        raise ValueError(f"{len(flags)} relaxed flags for {len(structures)} structures")
    eos = {flag: EOSCalc(calc, relax_structure=not flag, fmax=fmax, max_steps=max_steps,
                         max_abs_strain=max_abs_strain, n_points=n_points) for flag in (False, True)}
    out: list[dict] = []
    t0 = time.monotonic()
    for i, (structure, flag) in enumerate(zip(structures, flags)):
        fit = {"k": math.nan, "r2": math.nan, "error": "no structure"}
        if structure is not None:
            try:
                result = eos[flag].calc(structure)
                k, r2 = float(result["bulk_modulus_bm"]), float(result.get("r2_score_bm", math.nan))
                scan = result.get("eos") or {}
                points = {"volumes": [round(float(v), 4) for v in scan.get("volumes", [])],
                          "energies": [round(float(e), 6) for e in scan.get("energies", [])]}
                if not (math.isfinite(k) and k > 0):
                    fit = {"k": math.nan, "r2": r2, "error": f"EOS fit gave no positive modulus ({k:.3g} GPa)"}
                elif not r2 >= min_r2:
                    fit = {"k": math.nan, "r2": r2, "error": f"EOS fit R2 {r2:.3f} < {min_r2} (the energies do not "
                                                             f"follow Birch-Murnaghan; {k:.1f} GPa not reported)"}
                else:
                    fit = {"k": k, "r2": r2, "error": ""}
                fit["points"] = points
            except Exception as exc:  # noqa: BLE001  (failure of one structure is an error, not a crash)
                fit = {"k": math.nan, "r2": math.nan, "error": f"EOS failed: {type(exc).__name__}: {exc}"[:200]}
        if fit["error"]:
            log.warning("EOS of structure %d: %s", i, fit["error"])
        out.append(fit)
        # one line per structure: each EOS scan is 11 relaxations (tens of seconds on a CPU core)
        log.info("EOS %d/%d: K=%.1f GPa, R2 %.3f (%.1fs)", i + 1, len(structures), fit["k"], fit["r2"],
                 time.monotonic() - t0)
    log.info("EOS fits of %d structures in %.1fs (%d without a modulus)", len(structures), time.monotonic() - t0,
             sum(bool(f["error"]) for f in out))
    return out


def eos_bulk_modulus(structures: Sequence[Structure], **kw) -> list[float]:
    """The Birch-Murnaghan bulk modulus (GPa) of each structure, NaN where :func:`eos_fits` gives none."""
    return [f["k"] for f in eos_fits(structures, **kw)]
