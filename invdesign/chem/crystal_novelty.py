"""Novelty a materials scientist would accept: two verdicts on every crystal (issue #34).

A cell that matches no known cell can still be nothing new: an ordering of atoms on a simple metal lattice is a
point on a solid solution (at finite temperature usually a disordered alloy), and a known cell with two similar
metals swapped is the same compound to a metallurgist. Two rules catch these:

* **Disorder-aware novelty** (:func:`disorder_aware_known`; MatterGen's rule, written here from its description):
  the elements of a cell are grouped by a modified Hume-Rothery rule (:func:`substitutable`); every site of a
  group becomes one disordered site with the group's composition; the cell is known when it matches, so made,
  a known cell of the same reduced formula.
* **Alloy ordering** (:func:`alloy_ordering`): every element of the cell is substitutable for every other and
  the cell with one species on every site is the fcc, hcp or bcc lattice, or the lattice of a known phase of its
  chemical system (``known:<formula>``), at any stoichiometry.

Both use pymatgen's StructureMatcher with the tolerances of :data:`MATCHER` (fractional length 0.2, site 0.3,
angle 5 degrees, volumes scaled, supercells allowed): looser than a plain novelty check, because an ordering
relaxes away from its parent lattice.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from functools import lru_cache

import numpy as np
import pandas as pd

#: modified Hume-Rothery rule: |r1 - r2| / mean(r) at most this (pymatgen's atomic radii) ...
RADIUS_TOLERANCE = 0.3
#: ... and Pauling electronegativities at most this far apart
ELECTRONEGATIVITY_TOLERANCE = 1.0
#: StructureMatcher settings of both rules
MATCHER = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0, "primitive_cell": True, "scale": True,
           "attempt_supercell": True}
#: the parent lattices tried for every alloy ordering
PARENT_LATTICES = ("fcc", "hcp", "bcc")


@lru_cache(maxsize=None)
def substitutable(a: str, b: str) -> bool:
    """Whether elements ``a`` and ``b`` substitute for each other: atomic radii within 30% of their mean and
    Pauling electronegativities within 1.0. An element without a tabulated radius or electronegativity (noble
    gases) substitutes only for itself."""
    if a == b:
        return True
    from pymatgen.core.periodic_table import Element

    ea, eb = Element(a), Element(b)
    ra, rb, xa, xb = ea.atomic_radius, eb.atomic_radius, ea.X, eb.X
    if ra is None or rb is None or not np.isfinite(xa) or not np.isfinite(xb):
        return False
    ra, rb = float(ra), float(rb)
    return abs(ra - rb) / ((ra + rb) / 2) <= RADIUS_TOLERANCE and abs(xa - xb) <= ELECTRONEGATIVITY_TOLERANCE


def substitution_groups(elements) -> list[tuple[str, ...]]:
    """The elements (symbols) in groups that substitute for each other: the connected parts of the
    :func:`substitutable` relation, each sorted, in order of their first element."""
    els = sorted(set(elements))
    parent = {e: e for e in els}

    def root(e):
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for a, b in itertools.combinations(els, 2):
        if substitutable(a, b):
            parent[root(b)] = root(a)
    groups = defaultdict(list)
    for e in els:
        groups[root(e)].append(e)
    return sorted(tuple(g) for g in groups.values())


def all_substitutable(elements) -> bool:
    """Whether every element substitutes for every other (not only through a third)."""
    return all(substitutable(a, b) for a, b in itertools.combinations(sorted(set(elements)), 2))


def _symbols(structure) -> list[str]:
    return [site.specie.symbol for site in structure]


def disordered(structure):
    """``structure`` with the sites of every substitution group of two or more elements made one disordered
    site whose occupancies are the group's composition in the cell (an ordered cell stays as it is)."""
    from pymatgen.core import Composition

    symbols = _symbols(structure)
    counts = pd.Series(symbols).value_counts()
    species = {}
    for group in substitution_groups(symbols):
        total = counts[list(group)].sum()
        comp = Composition({e: counts[e] / total for e in group}) if len(group) > 1 else None
        for e in group:
            species[e] = comp if comp is not None else e
    out = structure.copy()
    for i, s in enumerate(symbols):
        out.replace(i, species[s])
    return out


def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER)


def disorder_aware_known(structures, reference: pd.DataFrame, id_column: str = "id") -> list[str | None]:
    """For each structure (None allowed), the ``id_column`` value of the first ``reference`` row of the same
    reduced formula that it matches once both have their substitutable elements made disordered sites
    (:func:`disordered`), else None. ``reference`` has ``formula`` (reduced) and ``structure`` (a record of
    :func:`~invdesign.chem.crystals.structure_to_record`)."""
    from .records import first_matches

    return first_matches(structures, reference, _matcher(), prepare=disordered, id_column=id_column)


@lru_cache(maxsize=None)
def _prototype(lattice: str):
    from pymatgen.core import Lattice, Structure

    if lattice == "fcc":
        return Structure(Lattice.cubic(3.6), ["Cu"] * 4,
                         [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    if lattice == "bcc":
        return Structure(Lattice.cubic(2.9), ["Cu"] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])
    if lattice == "hcp":
        a = 2.6
        return Structure(Lattice.hexagonal(a, a * np.sqrt(8 / 3)), ["Cu"] * 2,
                         [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    raise ValueError(f"no prototype {lattice!r}")


def one_species(structure, element: str = "Cu"):
    """``structure`` with every site ``element``."""
    out = structure.copy()
    out.replace_species({sp: element for sp in structure.composition.elements})
    return out


def _chemical_subsystems(elements) -> list[str]:
    els = sorted(set(elements))
    return ["-".join(c) for k in range(1, len(els) + 1) for c in itertools.combinations(els, k)]


class AlloyOrderingRule:
    """:meth:`parent` of a cell: the lattice it is an ordering of (``fcc``/``hcp``/``bcc``/``known:<formula>``)
    or "" (a compound, or a cell of one element). ``reference``: known cells (``formula`` and ``structure``
    columns), whose lattices count as parents for cells of their chemical system of another reduced formula (a
    known cell of the same formula is a match or a polymorph: the novelty rules judge it)."""

    def __init__(self, reference: pd.DataFrame | None = None) -> None:
        self.matcher = _matcher()
        self._by_system: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._collapsed: dict[int, object] = {}
        if reference is not None and len(reference):
            from pymatgen.core import Composition

            for i, (f, rec) in enumerate(zip(reference["formula"], reference["structure"])):
                els = Composition(f).elements
                if all_substitutable(e.symbol for e in els):
                    self._by_system["-".join(sorted(e.symbol for e in els))].append((i, f, rec))

    def parent(self, structure, exclude: int | None = None) -> str:
        """``exclude``: a row (position) of the reference that is not a parent (the cell itself, when the
        reference's own cells are judged)."""
        elements = {e.symbol for e in structure.composition.elements}
        if len(elements) < 2 or not all_substitutable(elements):
            return ""
        formula = structure.composition.reduced_formula
        collapsed = one_species(structure)
        for lattice in PARENT_LATTICES:
            if self.matcher.fit(collapsed, _prototype(lattice)):
                return lattice
        from .records import structure_from_record

        for system in _chemical_subsystems(elements):
            for i, f, rec in self._by_system.get(system, []):
                if i == exclude or f == formula:  # a cell of the same formula is the novelty rules' business
                    continue
                if i not in self._collapsed:
                    self._collapsed[i] = one_species(structure_from_record(rec))
                if self.matcher.fit(collapsed, self._collapsed[i]):
                    return f"known:{f}"
        return ""


def alloy_ordering(structure, reference: pd.DataFrame | None = None) -> tuple[bool, str]:
    """(is an alloy ordering, parent lattice) of one cell; see :class:`AlloyOrderingRule`."""
    parent = AlloyOrderingRule(reference).parent(structure)
    return bool(parent), parent


def novelty_verdicts(structures, reference: pd.DataFrame) -> pd.DataFrame:
    """Both verdicts for each structure (None: unknown): ``novel_disorder_aware`` (boolean),
    ``disorder_match`` (the known id it matches under the disorder-aware rule, "" if none), ``alloy_ordering``
    (boolean) and ``parent_lattice``."""
    known = disorder_aware_known(structures, reference)
    rule = AlloyOrderingRule(reference)
    parents = [rule.parent(s) if s is not None else None for s in structures]
    return pd.DataFrame({
        "novel_disorder_aware": pd.array([None if s is None else k is None for s, k in zip(structures, known)],
                                         dtype="boolean"),
        "disorder_match": [k or "" for k in known],
        "alloy_ordering": pd.array([None if p is None else bool(p) for p in parents], dtype="boolean"),
        "parent_lattice": [p or "" for p in parents],
    })


def rule_of_mixtures(formula: str, elemental: dict[str, float]) -> float:
    """The atom-fraction-weighted mean of ``elemental`` values over the elements of ``formula`` (NaN where an
    element has none): what an alloy ordering's property would be if its elements only mixed."""
    from pymatgen.core import Composition

    comp = Composition(formula).fractional_composition
    vals = [(float(x), elemental.get(e.symbol, np.nan)) for e, x in comp.items()]
    return float(sum(x * v for x, v in vals))


def elemental_values(data: pd.DataFrame, column: str) -> dict[str, float]:
    """Element -> the median ``column`` of the data's cells of that element alone (``formula`` column)."""
    from pymatgen.core import Composition

    out: dict[str, list[float]] = defaultdict(list)
    for f, v in zip(data["formula"], data[column]):
        comp = Composition(f)
        if len(comp.elements) == 1 and np.isfinite(v):
            out[comp.elements[0].symbol].append(float(v))
    return {e: float(np.median(v)) for e, v in out.items()}
