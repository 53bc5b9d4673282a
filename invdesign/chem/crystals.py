"""Crystal records, decoding to pymatgen structures, and validity / uniqueness / novelty checks."""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict

import numpy as np
import pandas as pd

from invdesign.errors import InvdesignError

from .records import first_matches, structure_from_record, structure_to_record  # noqa: F401  (the table format, used here and by callers)

log = logging.getLogger(__name__)


def build_structure(types, frac, lattice, elements):
    """pymatgen Structure from decoder output; None when the lattice is degenerate or no atom is left."""
    from pymatgen.core import Lattice, Structure

    species = [elements[int(t)] for t in types if int(t) >= 0]
    coords = [list(map(float, f)) for t, f in zip(types, frac) if int(t) >= 0]
    a, b, c, al, be, ga = (float(v) for v in lattice)
    if not species or not all(math.isfinite(v) for v in (a, b, c, al, be, ga)):
        return None
    try:
        lat = Lattice.from_parameters(a, b, c, al, be, ga)
        if not lat.volume > 1e-3:
            return None
        return Structure(lat, species, coords)
    except Exception:  # noqa: BLE001  (invalid angle combinations raise ValueError and others)
        return None


def fit_atomic_volumes(structures) -> dict[str, float]:
    """Per-element atomic volumes (A^3) whose sums best reproduce the cells' volumes (non-negative least squares).

    Volume additivity (Biltz, Vegard): a cell's volume is close to the sum of its atoms' volumes; fitted on the
    training cells it predicts a relaxed cell's volume to ~5% (median) from its composition alone.
    """
    from scipy.optimize import nnls

    elements = sorted({el.symbol for s in structures for el in s.composition.elements})
    col = {e: j for j, e in enumerate(elements)}
    counts = np.zeros((len(structures), len(elements)))
    for i, s in enumerate(structures):
        for el, n in s.composition.items():
            counts[i, col[el.symbol]] += n
    volumes = np.array([s.volume for s in structures])
    weights, _ = nnls(counts, volumes)
    return {e: float(w) for e, w in zip(elements, weights) if w > 0}


def additive_volume(structure, atomic_volumes: dict[str, float]) -> float | None:
    """The sum of the cell's atoms' fitted volumes (A^3); None when an element has no fitted volume."""
    try:
        return sum(n * atomic_volumes[el.symbol] for el, n in structure.composition.items())
    except KeyError:
        return None


def rescale_to_volume(structure, atomic_volumes: dict[str, float]):
    """A copy of ``structure`` with its lattice scaled (shape and fractional coordinates kept) to its
    ``additive_volume``; the structure itself when an element has no fitted volume."""
    target = additive_volume(structure, atomic_volumes)
    if target is None:
        return structure
    out = structure.copy()
    out.scale_lattice(target)
    return out


def element_fractions(formula: str) -> dict[str, float]:
    """``{element: atomic fraction}`` of a formula (what :mod:`invdesign.search.feedback` takes)."""
    from pymatgen.core import Composition

    return {str(el): float(x) for el, x in Composition(formula).fractional_composition.items()}


def formula_counts(formula: str) -> dict[str, int]:
    """``{element: count}`` of a formula's reduced integer composition (``"Ir6Re2"`` -> ``{"Ir": 3, "Re": 1}``).
    ValueError for a formula pymatgen cannot read or with fractional amounts."""
    from pymatgen.core import Composition, Element

    try:
        comp = Composition(formula)
    except Exception as err:  # noqa: BLE001 (pymatgen raises several kinds)
        raise ValueError(f"{formula!r} is not a chemical formula ({err})") from None
    if not len(comp):
        raise ValueError(f"{formula!r} is not a chemical formula (no elements)")
    fake = [str(el) for el in comp if not isinstance(el, Element)]
    if fake:
        raise ValueError(f"{formula!r} is not a chemical formula ({', '.join(fake)} is not an element)")
    reduced, _ = comp.get_reduced_composition_and_factor()
    counts = {str(el): float(n) for el, n in reduced.items()}
    if any(abs(n - round(n)) > 1e-6 for n in counts.values()):
        raise ValueError(f"{formula!r} has fractional amounts; give whole numbers of atoms (e.g. Ir3Re)")
    return {el: int(round(n)) for el, n in counts.items()}


def binary_formulas(elements, max_reduced_atoms: int = 8) -> dict[str, dict[str, int]]:
    """Every binary A_a B_b of ``elements`` with a, b >= 1 coprime and a + b <= ``max_reduced_atoms``, as
    ``{reduced formula: {element: count}}`` (the composition space a structure-prediction round covers)."""
    from math import gcd

    from pymatgen.core import Composition

    elements = sorted(set(elements))
    out: dict[str, dict[str, int]] = {}
    for i, x in enumerate(elements):
        for y in elements[i + 1:]:
            for a in range(1, max_reduced_atoms):
                for b in range(1, max_reduced_atoms - a + 1):
                    if gcd(a, b) == 1:
                        out.setdefault(Composition({x: a, y: b}).reduced_formula, {x: a, y: b})
    return out


def merge_duplicate_sites(structure, tol: float = 0.5):
    """Merge atoms of the same element closer than ``tol`` (A) into one at their periodic mean.

    A set decoder sometimes places two slots on one atom; such a pair is one atom, not a clash.
    Atoms of different elements are never merged (those clashes stay and fail the distance check).
    Returns (structure, number of sites removed).
    """
    if tol <= 0 or len(structure) < 2:
        return structure, 0
    centers, neighbors, _, dists = structure.get_neighbor_list(r=tol)
    parent = list(range(len(structure)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(centers, neighbors):
        if i != j and structure[int(i)].specie == structure[int(j)].specie:
            a, b = root(int(i)), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(structure)):
        groups[root(i)].append(i)
    if len(groups) == len(structure):
        return structure, 0
    from pymatgen.core import Structure

    frac = structure.frac_coords
    species, coords = [], []
    for first, members in sorted(groups.items()):
        offsets = frac[members] - frac[first]
        offsets -= np.round(offsets)                       # nearest periodic image of each member
        species.append(structure[first].specie)
        coords.append((frac[first] + offsets.mean(0)) % 1.0)
    return Structure(structure.lattice, species, coords), len(structure) - len(groups)


def min_distance(structure, cap: float = 4.0) -> float:
    """Smallest interatomic distance including periodic images (``cap`` if none closer)."""
    _, _, _, d = structure.get_neighbor_list(r=cap)
    d = d[d > 1e-8]
    return float(d.min()) if d.size else cap


def contact_ratio(structure, cap: float = 4.0) -> tuple[float, str]:
    """The closest contact relative to its bond length: min over atom pairs (periodic images included) of
    distance / (sum of the two covalent radii, Cordero et al. 2008), and the pair as text ('' if none within
    ``cap``). Known crystals sit near 1 or above; far below it atoms overlap."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    centers, neighbors, images, dists = structure.get_neighbor_list(r=cap)
    pair = (centers != neighbors) | np.any(images, axis=1)
    best, what = math.inf, ""
    for i, j, d in zip(centers[pair], neighbors[pair], dists[pair]):
        a, b = structure[int(i)].specie.symbol, structure[int(j)].specie.symbol
        bond = CovalentRadius.radius.get(a, 1.5) + CovalentRadius.radius.get(b, 1.5)
        if d / bond < best:
            best, what = d / bond, f"{a}-{b} {d:.2f} A (covalent {bond:.2f} A)"
    return best, what


@functools.lru_cache(maxsize=65536)
def _smact_valid(formula: str, allow_alloys: bool) -> bool:
    from smact.screening import smact_validity

    try:
        return bool(smact_validity(formula, use_pauling_test=True, include_alloys=allow_alloys))
    except Exception:  # noqa: BLE001  (elements without SMACT data)
        return False


def charge_neutral(composition, allow_alloys: bool = True) -> bool:
    """SMACT oxidation-state neutrality + Pauling test (cached per reduced formula)."""
    return _smact_valid(composition.reduced_formula, allow_alloys)


def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(stol=0.5, ltol=0.3, angle_tol=10)


def known_matches(structures, reference: pd.DataFrame, id_column: str = "id") -> list[str | None]:
    """For each structure (None allowed), the ``id_column`` value of the first ``reference`` row whose structure
    has the same reduced formula (the ``formula`` column, reduced as every loader writes it) and matches it under
    the campaign's StructureMatcher, else None.

    The novelty check of generated cells, and again after relaxation: a novel generated cell can relax onto a
    known phase."""
    return first_matches(structures, reference, _matcher(), id_column=id_column)


def _excluded_elements(names) -> set[str]:
    from pymatgen.core.periodic_table import Element

    names = set(names)
    unknown = sorted(e for e in names if not Element.is_valid_symbol(e))
    if unknown:
        raise InvdesignError(f"filters.exclude_elements: {', '.join(unknown)} is not an element symbol "
                             "(write symbols as in the periodic table, e.g. Tc, Pu)")
    return names


def check_crystals(samples: pd.DataFrame, reference: pd.DataFrame, filters=None) -> pd.DataFrame:
    """Validity of each sampled cell under the campaign's ``filters``: its
    :class:`~invdesign.config.filters.CrystalFilters` (a mapping is read into one, a key left out taking the
    default; None: the defaults)."""
    from ..config import block_settings

    f = block_settings("filters", "crystals", filters)
    out = samples.copy()
    n = len(out)
    excluded = _excluded_elements(f.exclude_elements)
    valid = np.zeros(n, bool)
    dist_ok = np.zeros(n, bool)
    neutral = np.zeros(n, bool)
    mind = np.full(n, np.nan)
    ratio = np.full(n, np.nan)
    reasons = [""] * n
    structures = [None] * n
    for i, rec in enumerate(out["structure"]):
        if not isinstance(rec, str):
            reasons[i] = "invalid: degenerate lattice"
            continue
        s = structure_from_record(rec)
        structures[i] = s
        vpa = s.volume / len(s)
        mind[i] = min_distance(s)
        ratio[i], contact = contact_ratio(s)
        dist_ok[i] = mind[i] >= f.min_distance and ratio[i] >= f.min_contact_ratio
        n_el = len(s.composition.elements)
        few_elements = f.min_elements <= n_el <= f.max_elements
        # SMACT's search grows combinatorially with the number of elements: only run it where it matters
        neutral[i] = few_elements and charge_neutral(s.composition, f.allow_alloys)
        vol_ok = f.min_volume_per_atom <= vpa <= f.max_volume_per_atom
        valid[i] = dist_ok[i] and neutral[i] and vol_ok
        if not few_elements:
            reasons[i] = f"invalid: {n_el} elements (filters.min_elements / max_elements)"
        elif not dist_ok[i]:
            reasons[i] = (f"invalid: atoms {mind[i]:.2f} A apart" if mind[i] < f.min_distance else
                          f"invalid: closest contact {contact} is {ratio[i]:.2f} of the covalent bond length "
                          "(filters.min_contact_ratio)")
        elif not neutral[i]:
            reasons[i] = "invalid: not charge neutral (SMACT)"
        elif not vol_ok:
            reasons[i] = f"invalid: {vpa:.1f} A^3 per atom"
    out["min_distance"] = mind
    out["contact_ratio"] = ratio
    out["min_distance_ok"] = dist_ok
    out["charge_neutral"] = neutral
    out["valid"] = valid

    matcher = _matcher()
    unique = np.zeros(n, bool)
    kept_by_formula: dict[str, list] = defaultdict(list)
    for i in np.flatnonzero(valid):
        f = out["formula"].iat[i]
        if any(matcher.fit(structures[i], other) for other in kept_by_formula[f]):
            reasons[i] = "duplicate of a higher sample"
            continue
        unique[i] = True
        kept_by_formula[f].append(structures[i])
    novel = np.zeros(n, bool)
    idx = np.flatnonzero(unique)
    for i, known in zip(idx, known_matches([structures[i] for i in idx], reference)):
        if known is None:
            novel[i] = True
        else:
            reasons[i] = "not novel: matches a known structure"
    # the two verdicts of a new material (chem.crystal_novelty), on the cells novel so far: a match under
    # substitutional disorder is not novel; alloy_ordering is the oracle's business (oracle.alloy_orderings)
    from .crystal_novelty import novelty_verdicts

    idx = np.flatnonzero(novel)
    verdicts = novelty_verdicts([structures[i] for i in idx], reference).set_index(idx).reindex(range(n))
    for i in idx:
        if not verdicts.at[i, "novel_disorder_aware"]:
            novel[i] = False
            reasons[i] = (f"not novel: matches known {verdicts.at[i, 'disorder_match']} once its substitutable "
                          "elements are one disordered site")
    out["unique"] = unique
    out["novel"] = novel
    out["novel_disorder_aware"] = pd.array(verdicts["novel_disorder_aware"], dtype="boolean")
    out["alloy_ordering"] = pd.array(verdicts["alloy_ordering"], dtype="boolean")
    out["disorder_match"] = verdicts["disorder_match"].fillna("").to_numpy(object)
    out["parent_lattice"] = verdicts["parent_lattice"].fillna("").to_numpy(object)
    # a campaign's choice (e.g. no radioactive elements for the bench), not a generator's failure: validity,
    # uniqueness and novelty stay as they are; only `passes` drops these
    allowed = np.ones(n, bool)
    for i in np.flatnonzero(valid & unique & novel):
        found = sorted(excluded & {el.symbol for el in structures[i].composition.elements})
        if found:
            allowed[i] = False
            reasons[i] = f"contains {', '.join(found)} (filters.exclude_elements)"
    out["passes"] = valid & unique & novel & allowed
    out["reject_reason"] = reasons
    return out
