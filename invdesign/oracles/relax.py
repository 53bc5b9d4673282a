"""Relaxation of crystal cells with any universal potential's ASE calculator, the one path of every tier.

Atoms and cell relax together: ASE's FIRE on a ``FrechetCellFilter`` (what chgnet's ``StructOptimizer`` and
matcalc's ``RelaxCalc`` both run). A structure that cannot be relaxed becomes an error row, never an exception:
the relaxation raises, the energy is not finite, the cell volume explodes, or atoms are (or end up) on top of
each other.

ase and pymatgen are imported lazily, so importing this module does not need them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .potentials import calculator_or_chgnet, mp2020_energy, potential_name

if TYPE_CHECKING:
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

#: two atoms closer than this (A) before or after relaxing make an error row: learned potentials have no hard-core
#: repulsion, so overlapping atoms fall into a spurious low-energy hole instead of separating
MIN_DISTANCE = 0.5
#: a relaxation that grows the cell volume more than this many times is an error row
MAX_VOLUME_RATIO = 3.0


def shortest_distance(structure: Structure, cap: float = 4.0) -> float:
    """Smallest distance (A) between two atoms, periodic images included; ``cap`` if none is closer.

    Unlike a filter on positive distances, two distinct sites on the same point count as 0.
    """
    centers, neighbors, images, dists = structure.get_neighbor_list(r=cap)
    self_pair = (centers == neighbors) & ~np.any(images, axis=1)
    dists = dists[~self_pair]
    return float(dists.min()) if dists.size else cap


def _error_row(message: str, steps: int = 0) -> dict:
    return {"structure": None, "energy_per_atom": math.nan, "converged": False, "steps": steps, "error": message}


def _collapsed(structure: Structure) -> bool:
    return shortest_distance(structure, cap=max(MIN_DISTANCE, 1e-3)) < MIN_DISTANCE


def relax(structures: Iterable[Structure], calculator=None, *, fmax: float, steps: int, mp2020: bool = False,
          log_every: int = 10) -> list[dict]:
    """Relax ``structures`` (atoms and cell) with an ASE ``calculator`` (None: CHGNet's), one result dict per input.

    Each dict has ``structure`` (relaxed pymatgen Structure or None), ``energy_per_atom`` (eV/atom, NaN on
    failure; MP2020-corrected by :func:`~invdesign.oracles.potentials.mp2020_energy` when ``mp2020``, for a
    potential trained on uncorrected energies), ``converged`` (the optimizer stopped on ``fmax`` before the
    ``steps`` limit), ``steps`` (optimizer steps taken) and ``error`` (None or a message).

    A structure fails, without stopping the batch, when the relaxation raises, the energy is not finite, the cell
    volume grows more than :data:`MAX_VOLUME_RATIO` times, or two atoms are closer than :data:`MIN_DISTANCE` A
    before or after relaxing. Progress is logged every ``log_every`` structures (0: never).
    """
    calculator = calculator_or_chgnet(calculator)
    name = potential_name(calculator)
    structures = list(structures)
    results: list[dict] = []
    n_fail = 0
    t0 = time.monotonic()
    for i, structure in enumerate(structures):
        row = _relax_one(structure, calculator, fmax=fmax, steps=steps, mp2020=mp2020, name=name)
        if row["error"] is not None:
            n_fail += 1
            log.debug("relaxation %d failed: %s", i, row["error"])
        results.append(row)
        if log_every and ((i + 1) % log_every == 0 or i + 1 == len(structures)):
            log.info("%s relaxed %d/%d structures (%d failed, %.1fs)", name, i + 1, len(structures), n_fail,
                     time.monotonic() - t0)
    return results


def _relax_one(structure: Structure, calculator, *, fmax: float, steps: int, mp2020: bool, name: str) -> dict:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        if len(structure) == 0 or not float(structure.volume) > 0:
            return _error_row("empty structure or degenerate cell")
        if _collapsed(structure):
            return _error_row(f"atoms closer than {MIN_DISTANCE} A before relaxation")
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        optimizer.run(fmax=fmax, steps=steps)
        final = AseAtomsAdaptor.get_structure(atoms)
        energy = float(atoms.get_potential_energy())
        if mp2020:
            energy = mp2020_energy(final, energy)
    except Exception as exc:  # noqa: BLE001  (any failure of one structure becomes an error row)
        return _error_row(f"relaxation failed: {type(exc).__name__}: {exc}"[:200])
    n_steps = optimizer.nsteps
    if not math.isfinite(energy):
        return _error_row("no MP2020-compatible energy" if mp2020 else f"non-finite {name} energy", n_steps)
    if not final.volume <= MAX_VOLUME_RATIO * structure.volume:  # also catches a NaN volume
        return _error_row(f"volume exploded ({final.volume / structure.volume:.1f}x the input)", n_steps)
    if _collapsed(final):
        return _error_row(f"atoms collapsed closer than {MIN_DISTANCE} A during relaxation", n_steps)
    return {"structure": final, "energy_per_atom": energy / len(final), "converged": n_steps < steps,
            "steps": n_steps, "error": None}
