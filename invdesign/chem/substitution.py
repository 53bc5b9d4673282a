"""Element substitution into known cells: the classical crystal arm (issue #24's baseline, issue #35's generator type).

A binary cell of the data set (the prototype) gets its two elements replaced by two distinct elements of a given
set, and its lattice is scaled (shape and fractional coordinates kept) to the sum of its new atoms' fitted volumes
(:func:`invdesign.chem.crystals.rescale_to_volume`): the substitutions a chemist tries first. Each draw is a random
(prototype, ordered element pair); nothing here judges validity, novelty or the property: the campaign's filters
and predictor do. pymatgen only.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def binary_prototypes(ids: Sequence[str], structures: Sequence) -> list[tuple[str, object]]:
    """(id, Structure) of every cell made of exactly two elements."""
    return [(sid, s) for sid, s in zip(ids, structures) if len(s.composition.elements) == 2]


def substitutions(prototypes: Sequence[tuple[str, object]], elements: Sequence[str], volumes: dict[str, float],
                  n: int, rng) -> pd.DataFrame:
    """``n`` random (prototype, ordered element pair) draws (``rng``: a numpy Generator): binary cells
    (``prototypes``: :func:`binary_prototypes`) with their two elements (in alphabetical order) replaced by two
    distinct ``elements``, rescaled to the additive volume of ``volumes`` (per-element volumes,
    :func:`invdesign.chem.crystals.fit_atomic_volumes`).
    Columns ``formula``, ``structure``, ``num_sites``, ``prototype`` (the source cell's id) and ``sample_id``."""
    from .crystals import rescale_to_volume, structure_to_record

    protos = list(prototypes)
    if not protos or len(elements) < 2:
        raise ValueError(f"substitution needs a binary cell and two elements; given {len(protos)} binary cells and "
                         f"the elements {list(elements)}")
    rows = []
    for _ in range(n):
        sid, s = protos[rng.integers(len(protos))]
        a, b = rng.choice(elements, size=2, replace=False)
        x, y = sorted(el.symbol for el in s.composition.elements)
        new = rescale_to_volume(s.copy().replace_species({x: str(a), y: str(b)}), volumes)
        rows.append({"formula": new.composition.reduced_formula, "structure": structure_to_record(new),
                     "num_sites": len(new), "prototype": sid, "sample_id": f"sub_{len(rows):05d}"})
    return pd.DataFrame(rows, columns=["formula", "structure", "num_sites", "prototype", "sample_id"])
