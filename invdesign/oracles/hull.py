"""The hulls the crystal oracle places relaxed cells on, and the elemental references they need.

* :class:`ReferenceEnergies` holds a potential's energies of the reference (known) phases, relaxed lazily and cached
  per chemical system: per reduced composition the lowest energy per atom over polymorphs. A missing pure-element
  reference is built from a bundled set (:func:`elemental_prototypes`): matcalc's MatPES-PBE elemental ground-state
  structures plus fcc/bcc/hcp(/diamond) prototypes for metals and metalloids; the lowest energy wins.
* :func:`hull_energies` places relaxed candidates on a pymatgen ``PhaseDiagram`` of those energies.
* :func:`dft_hull_energies` places them on the hull of the known DFT entries instead (a user's MP or Alexandria
  export), the Matbench Discovery convention.

pymatgen and matcalc are imported lazily, so importing this module does not need them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .potentials import calculator_or_chgnet, potential_name
from .relax import relax

if TYPE_CHECKING:
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

#: Elements whose standard state is molecular (or a noble-gas solid): close-packed or diamond
#: prototypes with covalent radii are unphysical for them, so only matcalc's bundled
#: ground-state structure (e.g. solid O2, N2, H2, Cl2) is used as their elemental reference.
MOLECULAR_ELEMENTS = frozenset({"H", "N", "O", "F", "Cl", "Br", "I", "He", "Ne", "Ar", "Kr", "Xe", "Rn"})

#: matcalc bundles DFT ground-state structures of 89 elements; this set is used for elemental references.
MATCALC_ELEMENT_REFS = "MatPES-PBE"


# ---------------------------------------------------------------------------------------------
# elemental references
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _matcalc_element_structures() -> dict:
    """matcalc's bundled elemental ground-state structures: {symbol: [Structure, ...]}."""
    from pathlib import Path

    import matcalc
    from monty.serialization import loadfn

    path = Path(matcalc.__file__).parent / "elemental_refs" / f"{MATCALC_ELEMENT_REFS}-Element-Refs.json.gz"
    refs = loadfn(path)
    return {el: (v["structure"] if isinstance(v["structure"], list) else [v["structure"]]) for el, v in refs.items()}


def _nearest_neighbour_distance(symbol: str) -> float:
    """Typical nearest-neighbour distance (A) of the elemental solid: twice the metallic radius,
    else twice the calculated/empirical atomic radius."""
    from pymatgen.core import Element

    el = Element(symbol)
    for attr in ("metallic_radius", "atomic_radius_calculated", "atomic_radius"):
        with warnings.catch_warnings():  # pymatgen warns where its table has no value
            warnings.simplefilter("ignore")
            radius = getattr(el, attr)
        if radius is not None and float(radius) > 0:
            return 2.0 * float(radius)
    return 3.0


def elemental_prototypes(symbol: str) -> dict[str, Structure]:
    """Candidate structures of the pure element ``symbol`` for its reference energy.

    ``"matcalc"`` (``"matcalc_1"``, ...): matcalc's bundled MatPES-PBE ground-state structure(s),
    when the element has one. ``"fcc"``, ``"bcc"``, ``"hcp"`` (ideal c/a) and, for group 14,
    ``"diamond"``: primitive cells of these prototypes with lattice constants set by the typical
    nearest-neighbour distance; used for metals and metalloids, and for any element matcalc lacks.
    Molecular elements (:data:`MOLECULAR_ELEMENTS`) and other non-metals get the matcalc structure
    only, since dense prototypes at covalent distances collapse under CHGNet.
    """
    from pymatgen.core import Element, Lattice, Structure

    out: dict[str, Structure] = {}
    for k, s in enumerate(_matcalc_element_structures().get(symbol, [])):
        out["matcalc" if k == 0 else f"matcalc_{k}"] = s.copy()
    el = Element(symbol)
    if out and (symbol in MOLECULAR_ELEMENTS or not (el.is_metal or el.is_metalloid)):
        return out
    d = _nearest_neighbour_distance(symbol)
    # primitive cells; the conventional ones are what Structure.from_spacegroup gives for
    # Fm-3m, Im-3m, P6_3/mmc and Fd-3m with one Wyckoff site
    h = math.sqrt(2.0) * d / 2.0                       # fcc: a = sqrt(2) d
    fcc = Lattice([[0, h, h], [h, 0, h], [h, h, 0]])
    out["fcc"] = Structure(fcc, [symbol], [[0, 0, 0]])
    h = d / math.sqrt(3.0)                             # bcc: a = 2 d / sqrt(3)
    out["bcc"] = Structure(Lattice([[-h, h, h], [h, -h, h], [h, h, -h]]), [symbol], [[0, 0, 0]])
    out["hcp"] = Structure(Lattice.hexagonal(d, d * math.sqrt(8.0 / 3.0)), [symbol] * 2,
                           [[1 / 3, 2 / 3, 1 / 4], [2 / 3, 1 / 3, 3 / 4]])
    if el.group == 14:
        h = 2.0 * d / math.sqrt(3.0)                   # diamond: a = 4 d / sqrt(3)
        out["diamond"] = Structure(Lattice([[0, h, h], [h, 0, h], [h, h, 0]]), [symbol] * 2,
                                   [[0, 0, 0], [0.25, 0.25, 0.25]])
    return out


# ---------------------------------------------------------------------------------------------
# reference phases and the convex hull
# ---------------------------------------------------------------------------------------------

class ReferenceEnergies:
    """A potential's energies of reference phases, relaxed lazily and cached for reuse across a batch.

    ``structures`` are the known (training) phases. For a chemical system, every reference whose
    elements are a subset of it is relaxed once (:func:`~invdesign.oracles.relax.relax` with ``calculator``,
    None: CHGNet's, and ``fmax``/``steps``); per reduced composition the lowest energy per atom over polymorphs
    is kept. A pure element without a successfully relaxed reference is taken from :func:`elemental_prototypes`
    (lowest energy per atom). Pass the same object to several :func:`hull_energies` calls to reuse the relaxations.
    """

    #: MP2020-correct the energies (:func:`~invdesign.oracles.potentials.mp2020_energy`): for a potential trained on
    #: uncorrected energies, so that its hull is on the scale of CHGNet's and of the DFT entries
    mp2020: bool = False

    def __init__(self, structures: Iterable[Structure], *, calculator=None, fmax: float, steps: int) -> None:
        self.structures: list = []
        self.calculator = calculator_or_chgnet(calculator)
        self.fmax = fmax
        self.steps = steps
        self._by_elements: dict[frozenset[str], list[int]] = {}
        self.add(structures)
        self._relaxed: set[int] = set()
        #: reduced formula -> (reduced Composition, lowest energy per atom)
        self.by_composition: dict[str, tuple[Any, float]] = {}
        #: element -> (lowest energy per atom, source name) for elements built from prototypes
        self.elemental: dict[str, tuple[float, str]] = {}
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def add(self, structures: Iterable[Structure]) -> None:
        """More reference phases (relaxed when a chemical system that holds them is asked for). Add a phase before
        asking for a system that contains it: a phase diagram already built is not rebuilt."""
        for s in structures:
            self._by_elements.setdefault(frozenset(el.symbol for el in s.composition.elements), []).append(
                len(self.structures))
            self.structures.append(s)

    def relax(self, structures: list, what: str = "structures") -> list[dict]:
        """``structures`` relaxed the way the references are (same potential, settings and energy scale)."""
        log.info("relaxing %d %s with %s", len(structures), what, potential_name(self.calculator))
        return relax(structures, self.calculator, fmax=self.fmax, steps=self.steps, mp2020=self.mp2020)

    def _update(self, composition, energy_per_atom: float) -> None:
        if not math.isfinite(energy_per_atom):
            return
        key = composition.reduced_formula
        best = self.by_composition.get(key)
        if best is None or energy_per_atom < best[1]:
            self.by_composition[key] = (composition.reduced_composition, energy_per_atom)

    def _relax_references(self, chemsys: frozenset[str]) -> None:
        pending = [i for key, idx in self._by_elements.items() if key <= chemsys for i in idx
                   if i not in self._relaxed]
        if not pending:
            return
        rows = self.relax([self.structures[i] for i in pending], f"reference phases of {'-'.join(sorted(chemsys))}")
        for i, row in zip(pending, rows):
            self._relaxed.add(i)
            if row["error"] is not None:
                log.warning("reference %d (%s) failed: %s", i, self.structures[i].composition.reduced_formula,
                            row["error"])
            self._update(self.structures[i].composition, row["energy_per_atom"])

    def _ensure_element(self, symbol: str) -> None:
        from pymatgen.core import Composition

        if Composition(symbol).reduced_formula in self.by_composition:
            return
        protos = elemental_prototypes(symbol)
        rows = self.relax(list(protos.values()), f"elemental prototypes of {symbol}")
        energies = {name: row["energy_per_atom"] for name, row in zip(protos, rows)
                    if row["error"] is None and math.isfinite(row["energy_per_atom"])}
        if not energies:
            log.warning("no elemental reference for %s could be relaxed", symbol)
            return
        name = min(energies, key=energies.get)
        self.elemental[symbol] = (energies[name], name)
        self._update(Composition(symbol), energies[name])
        log.info("elemental reference %s: %s, %.4f eV/atom", symbol, name, energies[name])

    def entries(self, elements: Iterable[str]) -> list[PDEntry]:
        """One ``PDEntry`` per reduced composition of the chemical system (lowest energy)."""
        from pymatgen.analysis.phase_diagram import PDEntry

        chemsys = frozenset(elements)
        self._relax_references(chemsys)
        for symbol in sorted(chemsys):
            self._ensure_element(symbol)
        out = []
        for formula, (comp, e_atom) in sorted(self.by_composition.items()):
            if {el.symbol for el in comp.elements} <= chemsys:
                out.append(PDEntry(comp, e_atom * comp.num_atoms, name=formula))
        return out

    def phase_diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """pymatgen ``PhaseDiagram`` of the chemical system from the potential's energies (cached)."""
        from pymatgen.analysis.phase_diagram import PhaseDiagram

        chemsys = frozenset(elements)
        if chemsys not in self._diagrams:
            entries = self.entries(chemsys)
            missing = chemsys - {e.composition.elements[0].symbol for e in entries if e.composition.is_element}
            if missing:
                raise ValueError(f"no elemental reference energy for {sorted(missing)}")
            self._diagrams[chemsys] = PhaseDiagram(entries)
        return self._diagrams[chemsys]


def hull_energies(candidates: Sequence[dict | Structure], references: ReferenceEnergies) -> list[float]:
    """Energy above the convex hull of ``references`` (eV/atom) of each candidate; NaN where it cannot be had.

    ``candidates`` are rows returned by :func:`~invdesign.oracles.relax.relax` (``structure`` +
    ``energy_per_atom``) or bare Structures, which are relaxed first the way the references are.

    The value is the signed distance to the hull of the reference phases
    (``PhaseDiagram.get_decomp_and_e_above_hull(..., allow_negative=True)``): 0 on the hull,
    negative for a candidate below it (it would be a new ground state).
    """
    from pymatgen.analysis.phase_diagram import PDEntry

    rows = list(candidates)
    bare = [i for i, c in enumerate(rows) if not isinstance(c, dict)]
    if bare:
        for i, row in zip(bare, references.relax([rows[i] for i in bare], "candidates")):
            rows[i] = row

    out: list[float] = []
    for i, row in enumerate(rows):
        structure, e_atom = row.get("structure"), row.get("energy_per_atom", math.nan)
        if structure is None or e_atom is None or not math.isfinite(e_atom):
            out.append(math.nan)
            continue
        try:
            comp = structure.composition
            pd_ = references.phase_diagram(el.symbol for el in comp.elements)
            _, e_hull = pd_.get_decomp_and_e_above_hull(PDEntry(comp, e_atom * comp.num_atoms),
                                                        allow_negative=True)
            out.append(float(e_hull))
        except Exception as exc:  # noqa: BLE001  (one candidate's failure is a NaN, not a crash)
            log.warning("hull energy of candidate %d failed: %s: %s", i, type(exc).__name__, exc)
            out.append(math.nan)
    return out


def hull_entries_json(references: ReferenceEnergies, structure) -> str:
    """The entries of the hull ``structure`` is placed on (``[[reduced formula, energy per atom], ...]`` as JSON;
    '' when that hull cannot be built): what a report draws the phase diagram from."""
    try:
        diagram = references.phase_diagram(el.symbol for el in structure.composition.elements)
    except Exception:  # noqa: BLE001  (no hull: nothing to draw)
        return ""
    return json.dumps([[e.composition.reduced_formula, round(float(e.energy_per_atom), 6)]
                       for e in diagram.all_entries])


def dft_hull_energies(compositions: Sequence, energies_per_atom: Sequence[float], known: pd.DataFrame) -> np.ndarray:
    """Energy above the hull of the known DFT entries (eV/atom, signed) of each (composition, potential energy per
    atom); NaN where the entries do not hold every element of the candidate's chemical system or the energy is
    missing.

    The hull is built from the rows of ``known`` that carry ``dft_energy_per_atom`` (a user's MP or Alexandria
    entries, MP2020-corrected: :mod:`invdesign.data.known`): the Matbench Discovery convention of a model energy
    on the DFT hull. The potential's energy must be on the same scale: CHGNet's is (trained on MP2020-corrected
    energies), SevenNet's after :func:`invdesign.oracles.potentials.mp2020_energy`."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    out = np.full(len(compositions), np.nan)
    if "dft_energy_per_atom" not in known or not len(known):
        return out
    e_ref = pd.to_numeric(known["dft_energy_per_atom"], errors="coerce")
    refs = [(Composition(f), float(e)) for f, e in zip(known["formula"][e_ref.notna()], e_ref[e_ref.notna()])]
    diagrams: dict[frozenset, PhaseDiagram | None] = {}
    for i, (comp, e_atom) in enumerate(zip(compositions, energies_per_atom)):
        if comp is None or e_atom is None or not np.isfinite(e_atom):
            continue
        chemsys = frozenset(el.symbol for el in comp.elements)
        if chemsys not in diagrams:
            entries = [PDEntry(c, e * c.num_atoms) for c, e in refs if {el.symbol for el in c.elements} <= chemsys]
            covered = {c.elements[0].symbol for c, _ in refs if c.is_element} >= chemsys
            diagrams[chemsys] = PhaseDiagram(entries) if covered else None
        pd_ = diagrams[chemsys]
        if pd_ is not None:
            _, e = pd_.get_decomp_and_e_above_hull(PDEntry(comp, e_atom * comp.num_atoms), allow_negative=True)
            out[i] = float(e)
    return out

