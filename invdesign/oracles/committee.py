"""The crystal oracle's second judge: SevenNet, a universal potential of another family than CHGNet.

A cell CHGNet calls a hit is re-relaxed with SevenNet (``sevenn``, weights in its wheel; an optional extra,
``pip install 'invdesign[committee]'``), placed on a hull of SevenNet energies of the same known phases and
elemental references, and given a SevenNet EOS bulk modulus. The committee confirms a cell only where both
potentials agree that it is stable, in the target and novel.

Energy conventions differ: SevenNet-0 was trained on uncorrected MPtrj energies (GGA and GGA+U mixed), CHGNet
reproduces MP2020-corrected ones. SevenNet energies are therefore put through pymatgen's
``MaterialsProject2020Compatibility`` (anion corrections, GGA/GGA+U mixing for the U metals of oxides and
fluorides) before any hull, for candidates and references alike.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import time
from collections.abc import Iterable

from .crystal import ReferenceEnergies, _error_row, relaxed_row, shortest_distance

log = logging.getLogger(__name__)


def sevennet_available() -> bool:
    return importlib.util.find_spec("sevenn") is not None


@functools.lru_cache(maxsize=2)
def load_sevennet(model: str = "7net-0", device: str = "cpu"):
    """SevenNet's ASE calculator for a pretrained model shipped in the ``sevenn`` wheel (cached)."""
    import warnings

    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator": the CPU path is the plain one
        calc = SevenNetCalculator(model, device=device)
    log.info("loaded SevenNet %s on %s", model, device)
    return calc


@functools.lru_cache(maxsize=1)
def _compatibility():
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_energy(structure, energy: float) -> float:
    """``energy`` (eV, total, uncorrected GGA/GGA+U scale) of ``structure`` with the MP2020 corrections; NaN when
    the compatibility scheme cannot place the composition. The run type follows MP's rules: GGA+U with MP's U
    values for the U metals of an oxide or fluoride, GGA otherwise."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    compat = _compatibility()
    symbols = {el.symbol for el in structure.composition.elements}
    hubbards = {}
    for anion in ("O", "F"):
        if anion in symbols:
            hubbards = {el: u for el, u in compat.u_settings[anion].items() if el in symbols}
            break
    params = {"run_type": "GGA+U", "hubbards": hubbards} if hubbards else {"run_type": "GGA"}
    out = compat.process_entry(ComputedStructureEntry(structure, energy, parameters=params), clean=True)
    return float(out.energy) if out is not None else math.nan


def relax_ase(structures: Iterable, calculator, *, fmax: float = 0.1, steps: int = 300, min_distance: float = 0.5,
              max_volume_ratio: float = 3.0, correct: bool = True) -> list[dict]:
    """Relax with any ASE calculator (matcalc's ``RelaxCalc``: FIRE, atoms and cell); rows as
    :func:`invdesign.oracles.crystal.relax` gives them, the energy MP2020-corrected when ``correct``."""
    from matcalc import RelaxCalc

    relaxer = RelaxCalc(calculator, optimizer="FIRE", fmax=fmax, max_steps=steps, relax_cell=True)
    rows, t0 = [], time.monotonic()
    for s in structures:
        try:
            if shortest_distance(s, cap=max(min_distance, 1e-3)) < min_distance:
                rows.append(_error_row(f"atoms closer than {min_distance} A before relaxation"))
                continue
            res = relaxer.calc(s)
        except Exception as exc:  # noqa: BLE001  (one structure's failure is an error row)
            rows.append(_error_row(f"relaxation failed: {type(exc).__name__}: {exc}"[:200]))
            continue
        final, energy = res["final_structure"], float(res["energy"])
        if correct:
            energy = mp2020_energy(final, energy)
        rows.append(relaxed_row(s, final, energy / len(final), converged=bool(res["is_converged"]), steps=-1,
                                min_distance=min_distance, max_volume_ratio=max_volume_ratio,
                                energy_error="no MP2020-compatible energy" if correct else "non-finite energy"))
    log.info("relaxed %d structures in %.1fs (%d failed)", len(rows), time.monotonic() - t0,
             sum(r["error"] is not None for r in rows))
    return rows


class CorrectedReferences(ReferenceEnergies):
    """:class:`ReferenceEnergies` relaxed with another ASE calculator and MP2020-corrected (SevenNet's hull)."""

    def _relax(self, structures: list, what: str) -> list[dict]:
        log.info("relaxing %d %s with %s", len(structures), what, type(self.calculator).__name__)
        return relax_ase(structures, self.calculator, fmax=self.fmax, steps=self.steps)
