"""CHGNet/matcalc physics oracle for generated crystals: relaxation, energy above hull, EOS bulk modulus.

All energies come from the pretrained universal potential CHGNet (v0.3.0, shipped in the
``chgnet`` wheel, so it works offline). Its energies are MP2020-compatible (it was trained on
MPtrj), so candidates and reference phases relaxed with it can share one phase diagram.

* :func:`relax` relaxes structures with chgnet's ``StructOptimizer`` (FIRE + FrechetCellFilter);
  failures (exceptions, non-finite energies, exploding volume, collapsed atoms) become error rows.
* :func:`hull_energies` places each relaxed candidate on a pymatgen ``PhaseDiagram`` built from
  CHGNet energies of the reference (training) phases of its chemical system. A missing pure-element
  reference is built from a bundled set: matcalc's MatPES-PBE elemental ground-state structures
  plus fcc/bcc/hcp(/diamond) prototypes for metals and metalloids; the lowest CHGNet energy wins.
  Relaxed reference energies are cached in a :class:`ReferenceEnergies` object (per composition,
  minimum over polymorphs), so a batch relaxes each reference once.
* :func:`eos_bulk_modulus` fits a Birch-Murnaghan EOS with matcalc's ``EOSCalc`` driven by the
  ``CHGNetCalculator`` object.
* :func:`verify_crystals` chains the three into one table.
* :class:`ChgnetOracle` is the workflow's oracle; for a shear-modulus or hardness campaign it adds the elastic
  tensor of each relaxed cell (:mod:`invdesign.oracles.elasticity`: VRH G and K, Chen hardness) and judges the
  cell by the column :data:`MEASURES` names, for CHGNet and for the SevenNet committee alike.

chgnet and matcalc are imported lazily, so importing this module does not need them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from ..config.oracles import ChgnetOracleSettings
from . import ERROR_COLUMN, MEASURED, CardField, CardFigure, Oracle, Tier
from . import Measure as TierMeasure  # this module's Measure: how the CHGNet tier computes one

if TYPE_CHECKING:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

#: Elements whose standard state is molecular (or a noble-gas solid): close-packed or diamond
#: prototypes with covalent radii are unphysical for them, so only matcalc's bundled
#: ground-state structure (e.g. solid O2, N2, H2, Cl2) is used as their elemental reference.
MOLECULAR_ELEMENTS = frozenset({"H", "N", "O", "F", "Cl", "Br", "I", "He", "Ne", "Ar", "Kr", "Xe", "Rn"})

#: matcalc bundles DFT ground-state structures of 89 elements; this set is used for elemental references.
MATCALC_ELEMENT_REFS = "MatPES-PBE"


class ChgnetBundle(NamedTuple):
    """The pretrained CHGNet model and an ASE calculator wrapping it."""

    model: CHGNet
    calculator: CHGNetCalculator


@functools.lru_cache(maxsize=4)
def load_chgnet(model_name: str = "0.3.0", use_device: str | None = None) -> ChgnetBundle:
    """Load chgnet's pretrained model (weights ship in its wheel) and a ``CHGNetCalculator``; cached.

    ``use_device`` is passed to chgnet (None: CUDA when available, else CPU).
    """
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its banner and device
        model = CHGNet.load(model_name=model_name, use_device=use_device, verbose=False)
        calculator = CHGNetCalculator(model=model, use_device=use_device)
    log.info("loaded CHGNet %s (%d parameters) on %s", model.version, model.n_params, calculator.device)
    return ChgnetBundle(model, calculator)


def _calculator(calculator: CHGNetCalculator | None) -> CHGNetCalculator:
    return calculator if calculator is not None else load_chgnet().calculator


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


def relax(
    structures: Iterable[Structure],
    *,
    fmax: float = 0.1,
    steps: int = 300,
    relax_cell: bool = True,
    calculator: CHGNetCalculator | None = None,
    optimizer: str = "FIRE",
    min_distance: float = 0.5,
    max_volume_ratio: float = 3.0,
    log_every: int = 10,
) -> list[dict]:
    """Relax ``structures`` with CHGNet (chgnet's ``StructOptimizer``), one result dict per input.

    Each dict has ``structure`` (relaxed pymatgen Structure or None), ``energy_per_atom``
    (eV/atom, CHGNet, NaN on failure), ``converged`` (the optimizer stopped on ``fmax`` before the
    ``steps`` limit), ``steps`` (optimizer steps taken) and ``error`` (None or a message).

    A structure fails, without stopping the batch, when the relaxation raises, the energy is not
    finite, the cell volume grows more than ``max_volume_ratio`` times, or two atoms are closer
    than ``min_distance`` A before or after relaxing (CHGNet, like other learned potentials, has
    no hard-core repulsion, so overlapping atoms fall into a spurious low-energy hole instead of
    separating). Progress is logged every ``log_every`` structures.
    """
    from chgnet.model.dynamics import StructOptimizer

    relaxer = StructOptimizer(model=_calculator(calculator), optimizer_class=optimizer)
    structures = list(structures)
    results: list[dict] = []
    n_fail = 0
    t0 = time.monotonic()
    for i, structure in enumerate(structures):
        row = _relax_one(relaxer, structure, fmax=fmax, steps=steps, relax_cell=relax_cell,
                         min_distance=min_distance, max_volume_ratio=max_volume_ratio)
        if row["error"] is not None:
            n_fail += 1
            log.debug("relaxation %d failed: %s", i, row["error"])
        results.append(row)
        if log_every and ((i + 1) % log_every == 0 or i + 1 == len(structures)):
            log.info("CHGNet relaxed %d/%d structures (%d failed, %.1fs)",
                     i + 1, len(structures), n_fail, time.monotonic() - t0)
    return results


def _relax_one(relaxer, structure, *, fmax, steps, relax_cell, min_distance, max_volume_ratio) -> dict:
    try:
        n_atoms = len(structure)
        if n_atoms == 0 or not float(structure.volume) > 0:
            return _error_row("empty structure or degenerate cell")
        if shortest_distance(structure, cap=max(min_distance, 1e-3)) < min_distance:
            return _error_row(f"atoms closer than {min_distance} A before relaxation")
        out = relaxer.relax(structure, fmax=fmax, steps=steps, relax_cell=relax_cell, verbose=False)
    except Exception as exc:  # noqa: BLE001  (any failure of one structure becomes an error row)
        return _error_row(f"relaxation failed: {type(exc).__name__}: {exc}")
    trajectory = out["trajectory"]
    # The observer records the start, every step, and once more after the run: steps = len - 2.
    n_steps = max(len(trajectory) - 2, 0)
    return relaxed_row(structure, out["final_structure"], float(trajectory.energies[-1]) / n_atoms,
                       converged=n_steps < steps, steps=n_steps, min_distance=min_distance,
                       max_volume_ratio=max_volume_ratio, energy_error="non-finite CHGNet energy")


def relaxed_row(initial, final, energy_per_atom: float, *, converged: bool, steps: int, min_distance: float,
                max_volume_ratio: float, energy_error: str) -> dict:
    """The result row of one relaxation (any potential), or an error row when its energy is not finite
    (``energy_error``), the volume grew more than ``max_volume_ratio`` times or atoms collapsed closer than
    ``min_distance`` A."""
    if not math.isfinite(energy_per_atom):
        return _error_row(energy_error, steps)
    if not final.volume <= max_volume_ratio * initial.volume:  # also catches a NaN volume
        return _error_row(f"volume exploded ({final.volume / initial.volume:.1f}x the input)", steps)
    if shortest_distance(final, cap=max(min_distance, 1e-3)) < min_distance:
        return _error_row(f"atoms collapsed closer than {min_distance} A during relaxation", steps)
    return {"structure": final, "energy_per_atom": energy_per_atom, "converged": converged, "steps": steps,
            "error": None}


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
    """CHGNet energies of reference phases, relaxed lazily and cached for reuse across a batch.

    ``structures`` are the known (training) phases. For a chemical system, every reference whose
    elements are a subset of it is relaxed once (with ``fmax``/``steps``); per reduced composition
    the lowest energy per atom over polymorphs is kept. A pure element without a successfully
    relaxed reference is taken from :func:`elemental_prototypes` (lowest CHGNet energy per atom).
    Pass the same object to several :func:`hull_energies` calls to reuse the relaxations.
    """

    def __init__(
        self,
        structures: Iterable[Structure],
        *,
        calculator: CHGNetCalculator | None = None,
        fmax: float = 0.1,
        steps: int = 300,
    ) -> None:
        self.structures: list = []
        self.calculator = calculator
        self.fmax = fmax
        self.steps = steps
        self._by_elements: dict[frozenset[str], list[int]] = {}
        self.add(structures)
        self._relaxed: set[int] = set()
        #: reduced formula -> (reduced Composition, lowest CHGNet energy per atom)
        self.by_composition: dict[str, tuple[Any, float]] = {}
        #: element -> (lowest CHGNet energy per atom, source name) for elements built from prototypes
        self.elemental: dict[str, tuple[float, str]] = {}
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def add(self, structures: Iterable[Structure]) -> None:
        """More reference phases (relaxed when a chemical system that holds them is asked for). Add a phase before
        asking for a system that contains it: a phase diagram already built is not rebuilt."""
        for s in structures:
            self._by_elements.setdefault(frozenset(el.symbol for el in s.composition.elements), []).append(
                len(self.structures))
            self.structures.append(s)

    def _relax(self, structures: list, what: str) -> list[dict]:
        log.info("relaxing %d %s with CHGNet", len(structures), what)
        return relax(structures, fmax=self.fmax, steps=self.steps, calculator=self.calculator)

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
        rows = self._relax([self.structures[i] for i in pending], f"reference phases of {'-'.join(sorted(chemsys))}")
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
        rows = self._relax(list(protos.values()), f"elemental prototypes of {symbol}")
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
        """One ``PDEntry`` per reduced composition of the chemical system (lowest CHGNet energy)."""
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
        """pymatgen ``PhaseDiagram`` of the chemical system from CHGNet energies (cached)."""
        from pymatgen.analysis.phase_diagram import PhaseDiagram

        chemsys = frozenset(elements)
        if chemsys not in self._diagrams:
            entries = self.entries(chemsys)
            missing = chemsys - {e.composition.elements[0].symbol for e in entries if e.composition.is_element}
            if missing:
                raise ValueError(f"no elemental reference energy for {sorted(missing)}")
            self._diagrams[chemsys] = PhaseDiagram(entries)
        return self._diagrams[chemsys]


def hull_energies(
    candidates: Sequence[dict | Structure],
    references: Iterable[Structure] | ReferenceEnergies,
    *,
    calculator: CHGNetCalculator | None = None,
    fmax: float = 0.1,
    steps: int = 300,
) -> list[float]:
    """Energy above the CHGNet convex hull (eV/atom) of each candidate; NaN where it cannot be had.

    ``candidates`` are rows returned by :func:`relax` (``structure`` + ``energy_per_atom``) or bare
    Structures, which are relaxed first. ``references`` are the known phases (pymatgen Structures),
    or a :class:`ReferenceEnergies` to reuse its cached relaxations; ``calculator``, ``fmax`` and
    ``steps`` apply to relaxations made here.

    The value is the signed distance to the hull of the reference phases
    (``PhaseDiagram.get_decomp_and_e_above_hull(..., allow_negative=True)``): 0 on the hull,
    negative for a candidate below it (it would be a new ground state).
    """
    from pymatgen.analysis.phase_diagram import PDEntry

    refs = references if isinstance(references, ReferenceEnergies) else \
        ReferenceEnergies(references, calculator=calculator, fmax=fmax, steps=steps)
    rows = list(candidates)
    bare = [i for i, c in enumerate(rows) if not isinstance(c, dict)]
    if bare:
        for i, row in zip(bare, relax([rows[i] for i in bare], fmax=fmax, steps=steps, calculator=calculator)):
            rows[i] = row

    out: list[float] = []
    for i, row in enumerate(rows):
        structure, e_atom = row.get("structure"), row.get("energy_per_atom", math.nan)
        if structure is None or e_atom is None or not math.isfinite(e_atom):
            out.append(math.nan)
            continue
        try:
            comp = structure.composition
            pd_ = refs.phase_diagram(el.symbol for el in comp.elements)
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
    energies), SevenNet's after :func:`invdesign.oracles.committee.mp2020_energy`."""
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


# ---------------------------------------------------------------------------------------------
# equation of state
# ---------------------------------------------------------------------------------------------

#: an EOS fit with a lower R^2 is not a modulus (an error row): the energies do not follow Birch-Murnaghan
MIN_EOS_R2 = 0.95


def eos_fits(
    structures: Sequence[Structure],
    *,
    calculator: CHGNetCalculator | None = None,
    relaxed: bool | Sequence[bool] = False,
    fmax: float = 0.1,
    max_steps: int = 500,
    max_abs_strain: float = 0.1,
    n_points: int = 11,
    min_r2: float = MIN_EOS_R2,
) -> list[dict]:
    """Birch-Murnaghan fit per structure from matcalc's ``EOSCalc``: ``{"k": GPa or NaN, "r2": fit R^2, "error":
    "" or why there is no modulus, "points": {"volumes": A^3, "energies": eV} of the scan (when it ran)}``. A fit
    with R^2 below ``min_r2`` gives no modulus.

    ``calculator`` is the ``CHGNetCalculator`` object (default: :func:`load_chgnet`'s). ``relaxed``
    (one flag, or one per structure) marks structures already relaxed with CHGNet: for those the
    EOSCalc pre-relaxation is skipped; the others are relaxed first (EOSCalc raises, hence NaN, if
    that does not converge). The scan applies linear strains in +-``max_abs_strain`` at
    ``n_points`` points, relaxing atoms and cell shape at fixed volume at each point (matcalc's
    defaults). Non-finite or non-positive moduli become NaN.
    """
    from matcalc import EOSCalc

    calc = _calculator(calculator)
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


# ---------------------------------------------------------------------------------------------
# everything together
# ---------------------------------------------------------------------------------------------

VERIFY_COLUMNS = ["relaxed_cif", "chgnet_energy_per_atom", "e_hull", "stable", "eos_bulk_modulus_gpa", "eos_r2",
                  "eos_points", "relax_converged", "oracle_error"]


def verify_crystals(
    structures: Sequence[Structure],
    references: Iterable[Structure] | ReferenceEnergies,
    *,
    fmax: float = 0.1,
    steps: int = 300,
    e_hull_max: float = 0.1,
    calculator: CHGNetCalculator | None = None,
    eos_for: str = "all",
) -> pd.DataFrame:
    """Relax candidates with CHGNet, place them on the reference hull, and fit their EOS.

    Returns one row per input (same order) with :data:`VERIFY_COLUMNS`: ``relaxed_cif`` (CIF text,
    "" on failure), ``chgnet_energy_per_atom`` (eV/atom), ``e_hull`` (eV/atom, signed, see
    :func:`hull_energies`), ``stable`` (``e_hull <= e_hull_max``), ``eos_bulk_modulus_gpa``,
    ``relax_converged`` and ``oracle_error`` ("" when fine).

    ``eos_for`` picks who gets the matcalc EOS bulk modulus: ``"all"`` (every candidate that relaxed,
    stable or not), ``"stable"`` (only those within ``e_hull_max``) or ``"none"``; the others get NaN.
    """
    if eos_for not in ("all", "stable", "none"):
        raise ValueError(f"eos_for must be 'all', 'stable' or 'none', not {eos_for!r}")
    calc = _calculator(calculator)
    refs = references if isinstance(references, ReferenceEnergies) else \
        ReferenceEnergies(references, calculator=calc, fmax=fmax, steps=steps)
    rows = relax(structures, fmax=fmax, steps=steps, calculator=calc)
    e_hull = np.asarray(hull_energies(rows, refs, calculator=calc, fmax=fmax, steps=steps), dtype=float)
    stable = np.nan_to_num(e_hull, nan=np.inf) <= e_hull_max
    bulk, r2 = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    eos_error, eos_points = [""] * len(rows), [""] * len(rows)
    relaxed = np.array([row["structure"] is not None and row["error"] is None for row in rows], dtype=bool)
    want_eos = {"all": relaxed, "stable": stable & relaxed, "none": np.zeros_like(relaxed)}[eos_for]
    idx = np.flatnonzero(want_eos)
    if idx.size:
        fits = eos_fits([rows[i]["structure"] for i in idx], calculator=calc,
                        relaxed=[rows[i]["converged"] for i in idx], fmax=fmax, max_steps=steps)
        for i, fit in zip(idx, fits):
            bulk[i], r2[i], eos_error[i] = fit["k"], fit["r2"], fit["error"]
            eos_points[i] = json.dumps(fit["points"]) if fit.get("points") else ""
    errors = []
    for row, e, k, want, why in zip(rows, e_hull, bulk, want_eos, eos_error):
        if row["error"] is not None:
            errors.append(row["error"])
        elif math.isnan(e):
            errors.append("no energy above hull (missing or failed reference phases)")
        elif want and math.isnan(k):
            errors.append(why or "EOS fit failed")
        else:
            errors.append("")
    return pd.DataFrame({
        "relaxed_cif": [row["structure"].to(fmt="cif") if row["structure"] is not None else "" for row in rows],
        "chgnet_energy_per_atom": [row["energy_per_atom"] for row in rows],
        "e_hull": e_hull,
        "stable": stable,
        "eos_bulk_modulus_gpa": bulk,
        "eos_r2": r2,
        "eos_points": eos_points,
        "relax_converged": [bool(row["converged"]) for row in rows],
        "oracle_error": errors,
    }, columns=VERIFY_COLUMNS)


# ---------------------------------------------------------------------------------------------
# the oracle of the workflow
# ---------------------------------------------------------------------------------------------

class Measure(NamedTuple):
    """How the crystal oracle measures one property: its first tier's column (the committee's is ``sevennet_`` +
    it), the calculation that fills it, the tag of its verdict columns and metrics (``<tag>_in_target``,
    ``n_stable_<tag>_in_target``, ...), the committee's SevenNet - CHGNet column, its label and short name."""

    column: str
    calc: str  # "eos" | "elastic"
    tag: str
    diff: str
    label: str
    short: str


#: the first tier's column -> its measure; the column :class:`ChgnetOracle`'s first tier declares for the campaign
#: property picks one
MEASURES = {m.column: m for m in (
    Measure("eos_bulk_modulus_gpa", "eos", "eos", "committee_k_diff_gpa", "EOS bulk modulus", "EOS"),
    Measure("elastic_shear_modulus_gpa", "elastic", "shear", "committee_g_diff_gpa", "VRH shear modulus", "G"),
    Measure("vickers_hardness_gpa", "elastic", "hardness", "committee_hv_diff_gpa", "Chen Vickers hardness", "H_V"),
)}

ELASTIC_DOC = {
    "elastic_shear_modulus_gpa": "Voigt-Reuss-Hill shear modulus of the elastic tensor (matcalc ElasticityCalc with "
                                 "CHGNet, GPa); none where the tensor gives no positive moduli",
    "elastic_bulk_modulus_gpa": "Voigt-Reuss-Hill bulk modulus of the same elastic tensor (GPa)",
    "vickers_hardness_gpa": "Chen's Vickers hardness from the elastic K and G (GPa)",
    "elastic_r2": "mean R^2 of the elastic tensor's stress-strain fits",
}


class ChgnetOracle(Oracle):
    """CHGNet check of crystal candidates: relaxation (from the composition's additive volume), energy above the
    hull of the data set's phases of the chemical system plus elemental references, the measure of the campaign
    property (EOS bulk modulus, or the elastic tensor's shear modulus or Chen hardness), and a second novelty check
    of the relaxed cell."""

    settings_class = ChgnetOracleSettings
    domain = "crystals"
    default = True
    tiers = (
        Tier("CHGNet", {"bulk_modulus_gpa": TierMeasure("eos_bulk_modulus_gpa", "GPa"),
                        "shear_modulus_gpa": TierMeasure("elastic_shear_modulus_gpa", "GPa"),
                        "vickers_hardness_gpa": TierMeasure("vickers_hardness_gpa", "GPa")},
             card=(CardField("E_hull, CHGNet", "e_hull", "eV/atom", 3),
                   CardField("E_hull on DFT entries (CHGNet)", "e_hull_dft", "eV/atom", 3, missing="no DFT entries",
                             explain=False),
                   CardField("matches a known phase", "matches_known", explain=False, text=True)),
             figures=(CardFigure("phase_diagram", "CHGNet", {"entries": "hull_entries", "cif": "relaxed_cif",
                                                             "energy": "chgnet_energy_per_atom"}),
                      CardFigure("eos_scan", "CHGNet", {"points": "eos_points", "modulus": "eos_bulk_modulus_gpa",
                                                        "r2": "eos_r2"})),
             large=("relaxed_cif",),
             hulls=(("e_hull_dft", "the hull of the DFT entries"), ("e_hull", "the CHGNet hull of the known phases")),
             known_match="matches_known"),
        Tier("SevenNet", {"bulk_modulus_gpa": TierMeasure("sevennet_eos_bulk_modulus_gpa", "GPa"),
                          "shear_modulus_gpa": TierMeasure("sevennet_elastic_shear_modulus_gpa", "GPa"),
                          "vickers_hardness_gpa": TierMeasure("sevennet_vickers_hardness_gpa", "GPa")},
             error="sevennet_error",
             card=(CardField("E_hull, SevenNet", "sevennet_e_hull", "eV/atom", 3),),
             figures=(CardFigure("eos_scan", "SevenNet", {"points": "sevennet_eos_points",
                                                          "modulus": "sevennet_eos_bulk_modulus_gpa",
                                                          "r2": "sevennet_eos_r2"}),),
             hulls=(("sevennet_e_hull_dft", "the hull of the DFT entries"),
                    ("sevennet_e_hull", "the SevenNet hull of the known phases")),
             known_match="sevennet_matches_known"),
    )
    report_columns = ("e_hull", "stable", "novel_after_relaxation", "matches_known")
    COLUMNS = {
        "volume_scale": "factor the cell volume was scaled by before relaxing (oracle.rescale_volume)",
        "relaxed_cif": "the CHGNet-relaxed cell (CIF text; '' when the relaxation failed)",
        "chgnet_energy_per_atom": "CHGNet energy of the relaxed cell (eV/atom)",
        "e_hull": "energy above the CHGNet hull of the known phases (eV/atom, signed)",
        "e_hull_dft": "CHGNet energy above the hull of the DFT entries of filters.known_library (eV/atom, signed, "
                      "MP2020-corrected; none where those entries do not cover the chemical system)",
        "hull_reference": "the hull 'stable' is judged on: 'DFT entries' where e_hull_dft exists, else 'CHGNet known "
                          "phases'",
        "stable": "e_hull_dft (where it exists, else e_hull) <= oracle.e_hull_max",
        "eos_bulk_modulus_gpa": "Birch-Murnaghan bulk modulus from matcalc's EOS with CHGNet (GPa); none where the "
                                "fit's R^2 is below 0.95",
        "eos_r2": "R^2 of the Birch-Murnaghan fit",
        "eos_points": "the EOS scan: volumes (A^3) and CHGNet energies (eV), JSON ('' where none ran)",
        "hull_entries": "the hull the cell was placed on: [reduced formula, CHGNet energy per atom] of each known phase "
                        "and elemental reference of its chemical system, JSON",
        "relax_converged": "the relaxation met fmax within max_steps",
        "matches_known": "id of a data set phase the relaxed cell matches ('' when none)",
        "novel_after_relaxation": "the relaxed cell matches no known phase",
        ERROR_COLUMN: "why CHGNet could not check the cell ('' when it could)",
    }

    def table_columns(self):
        return [("committee_confirmed", ""), ("stable", ""), ("e_hull", "eV/atom"), ("sevennet_stable", ""),
                ("sevennet_e_hull", "eV/atom"), ("e_hull_dft", "eV/atom"), (MEASURED, ""),
                ("predicted_property", "{unit}"), ("novel_after_relaxation", ""), ("matches_known", ""),
                ("generator", ""), (ERROR_COLUMN, ""), ("sevennet_error", "")]

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        #: the measure of the campaign property (None: not measured); a column MEASURES lacks is an error
        self.measure = MEASURES[self.measures] if self.measures else None
        #: the measure whose column names the verdict columns (the bulk modulus's when none is measured)
        self.named = self.measure or MEASURES["eos_bulk_modulus_gpa"]

    def _elastic(self) -> bool:
        return self.measure is not None and self.measure.calc == "elastic"

    @property
    def columns(self) -> dict[str, str]:
        return {**self.COLUMNS, **(ELASTIC_DOC if self._elastic() else {})}

    @property
    def confirm_columns(self) -> dict[str, str]:
        extra = {f"sevennet_{c}": f"SevenNet: {doc.replace('CHGNet', 'SevenNet')}" for c, doc in ELASTIC_DOC.items()}
        return {**self.CONFIRM_COLUMNS, **(extra if self._elastic() else {})}

    @property
    def eos_for(self) -> str:
        """Who gets an EOS fit: none when the campaign property is not the EOS bulk modulus."""
        return self.settings.eos_for if self.measure is not None and self.measure.calc == "eos" else "none"

    @property
    def elastic_for(self) -> str:
        """Who gets the elastic tensor: none when the campaign property is not an elastic measure."""
        return self.settings.elastic_for if self._elastic() else "none"

    def prepare(self, dataset: pd.DataFrame) -> dict:
        """Per-element volumes fitted on the data set's cells (for ``rescale_volume``)."""
        from ..chem.crystals import fit_atomic_volumes, structure_from_record

        if not self.settings.rescale_volume:
            return {}
        return {"atomic_volumes": fit_atomic_volumes([structure_from_record(r) for r in dataset["structure"]])}

    def select(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """The passing candidates, ranked by earlier campaigns' verdicts (``feedback_from``) when given, one per
        reduced formula (``one_per_formula``), the ``top_k`` best."""
        s = self.settings
        top = candidates[candidates["passes"].astype(bool)]
        if s.feedback_from:
            from ..search.feedback import rank_by_feedback

            top = rank_by_feedback(top, s.feedback_from, self.target, self.measures)
        if s.one_per_formula:
            top = top.drop_duplicates("formula")  # a diversity filter: the best-ranked cell of each formula
        return (top if s.top_k is None else top.head(s.top_k)).reset_index(drop=True)

    def evaluate(self, batch: pd.DataFrame, known: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        """CHGNet relaxation, E_hull against every known phase of the candidate's chemical system (the whole source
        data set, any size, and the user's library), and EOS of one batch; every relaxed cell is matched against
        the known phases again (``matches_known``, ``novel_after_relaxation``): a novel generated cell can relax
        onto a known phase."""
        from pymatgen.core import Structure

        from ..chem.crystals import known_matches, rescale_to_volume, structure_from_record

        s = self.settings
        top = batch.reset_index(drop=True).copy()
        if not len(top):
            return self.empty_result(top)
        cells, unreadable = [], {}
        for i, rec in enumerate(top["structure"]):
            try:
                cells.append(structure_from_record(rec))
            except Exception as exc:  # noqa: BLE001  (a bad record is an error row, never a crashed job)
                cells.append(None)
                unreadable[i] = f"unreadable structure record: {type(exc).__name__}"
        ok = [i for i, c in enumerate(cells) if c is not None]
        chemsys = {frozenset(el.symbol for el in cells[i].composition.elements) for i in ok}
        references = self._references(known, chemsys)
        volumes = prepared.get("atomic_volumes")
        scale = np.ones(len(top))
        if volumes:
            # generated cells are often compressed (median 0.45x the relaxed volume in the bench); relaxed from
            # the composition's additive volume, 1 of 80 bench cells failed to relax against 21 of 100 as generated
            for i in ok:
                rescaled = rescale_to_volume(cells[i], volumes)
                scale[i], cells[i] = rescaled.volume / cells[i].volume, rescaled
            log.info("cells scaled to their additive volume before relaxing (median factor %.2f)",
                     float(np.median(scale[ok])) if ok else 1.0)
        top["volume_scale"] = scale
        log.info("CHGNet check of %d crystal candidates (%d chemical systems, %d reference phases)", len(top),
                 len(chemsys), len(references.structures))
        calc = references.calculator
        if self.eos_for == "none" and s.eos_for != "none":
            log.info("no EOS fit: the campaign property %s is not the EOS bulk modulus", self.property_column)
        res = verify_crystals([cells[i] for i in ok], references, fmax=s.fmax, steps=s.max_steps,
                              e_hull_max=s.e_hull_max, calculator=calc, eos_for=self.eos_for)
        res["hull_entries"] = [hull_entries_json(references, cells[i]) if np.isfinite(e) else ""
                               for i, e in zip(ok, res["e_hull"])]
        res.index = ok
        res = res.reindex(range(len(top)))
        for i, why in unreadable.items():
            res.loc[i, ["relaxed_cif", "oracle_error", "stable", "relax_converged"]] = ["", why, False, False]
        top = pd.concat([top, res], axis=1)
        relaxed = [Structure.from_str(c, fmt="cif") if isinstance(c, str) and c else None for c in top["relaxed_cif"]]
        try:
            matches = known_matches(relaxed, known)
        except Exception as exc:  # noqa: BLE001  (the matcher failing leaves the novelty unknown, in the error)
            log.warning("matching the relaxed cells against the data set failed: %s: %s", type(exc).__name__, exc)
            matches = [None] * len(relaxed)
            top[ERROR_COLUMN] = [e or f"no novelty check: {type(exc).__name__}" for e in top[ERROR_COLUMN].fillna("")]
        top["matches_known"] = [k or "" for k in matches]
        top["novel_after_relaxation"] = [r is not None and k is None for r, k in zip(relaxed, matches)]
        self._on_dft_hull(top, [r.composition if r is not None else None for r in relaxed],
                          top["chgnet_energy_per_atom"], known, "e_hull_dft", "stable", "hull_reference")
        if self.elastic_for != "none":
            fine = top[ERROR_COLUMN].fillna("").eq("") & (top["stable"].eq(True) if self.elastic_for == "stable"
                                                          else True)
            self._add_elastic(top, relaxed, fine.to_numpy(bool), references.calculator, "", ERROR_COLUMN)
        log.info("%d of %d relaxed candidates relaxed onto a known phase",
                 sum(k is not None for k in matches), sum(r is not None for r in relaxed))
        return top

    def _on_dft_hull(self, table, compositions, energies, known, column: str, stable: str, reference: str | None):
        """``column``: the energy above the DFT entries' hull (:func:`dft_hull_energies`); where it exists, it decides
        ``stable`` instead of the potential's own hull of the known phases."""
        e = dft_hull_energies(compositions, pd.to_numeric(pd.Series(list(energies)), errors="coerce").to_numpy(float),
                              known)
        table[column] = e
        on = np.isfinite(e)
        if on.any():
            table[stable] = pd.Series(np.where(on, e <= self.settings.e_hull_max, table[stable].eq(True)),
                                      index=table.index)
            log.info("%d of %d cells placed on the hull of the known DFT entries", int(on.sum()), len(table))
        if reference:
            table[reference] = np.where(on, "DFT entries", "CHGNet known phases")

    def _add_elastic(self, table, cells, want, calculator, prefix: str, error: str) -> None:
        """The elastic columns (``prefix`` + :data:`ELASTIC_DOC`'s) of ``cells`` where ``want``; a failed tensor's
        error is added to the ``error`` column."""
        from .elasticity import elastic_columns

        cols, errors = elastic_columns(cells, want, calculator, fmax=self.settings.fmax,
                                       relax_ions=self.settings.elastic_relax_ions,
                                       max_gpa=self.settings.elastic_max_gpa, prefix=prefix)
        for name, values in cols.items():
            table[name] = values
        table[error] = [e or x for e, x in zip(table[error].fillna(""), errors)]

    def _references(self, dataset: pd.DataFrame, chemsys: set) -> ReferenceEnergies:
        """The data set's phases of the chemical systems ``chemsys`` (every phase whose elements are a subset of one)
        with their CHGNet energies. Kept on the oracle while ``dataset`` is the same table, so a process that checks
        several batches (a bench lane) relaxes each reference once."""
        from ..chem.crystals import structure_from_record

        if getattr(self, "_refs_for", None) is not dataset:
            self._refs_for, self._refs_rows = dataset, set()
            self._refs = ReferenceEnergies([], calculator=load_chgnet().calculator, fmax=self.settings.fmax,
                                           steps=self.settings.max_steps)
        new = [i for i, f in enumerate(dataset["formula"]) if i not in self._refs_rows
               and any(set(_elements_of(f)) <= c for c in chemsys)]
        self._refs.add(structure_from_record(dataset["structure"].iloc[i]) for i in new)
        self._refs_rows.update(new)
        return self._refs

    def finalize(self, checked, candidates, known, prepared):
        """The checked cells re-ranked: S.U.N. hits first (stable, measured property in the target, still novel
        after relaxation), then by the measured property's distance to the target, then the candidate rank."""
        from ..targets import distance_to_target

        out = checked.reset_index(drop=True).copy()
        out["novel_after_relaxation"] = out["novel_after_relaxation"].astype("boolean")
        out["stable"] = out["stable"].astype("boolean")
        m, tag = self.named, self.named.tag
        if self.measures:
            k = pd.to_numeric(out[self.measures], errors="coerce").to_numpy(float)
            out[f"{tag}_in_target"] = self.in_target(k)
            out[f"{tag}_distance_to_target"] = distance_to_target(k, self.target)
            out[f"predictor_vs_{tag}_gpa"] = out["predicted_property"].to_numpy(float) - k
            order = ["stable", f"{tag}_in_target", "novel_after_relaxation", f"{tag}_distance_to_target", "rank"]
        else:
            out[f"{tag}_in_target"] = pd.Series(pd.NA, index=out.index, dtype="boolean")
            out["property_check"] = self.not_measured_note
            log.warning("%s", self.not_measured_note)
            order = ["stable", "novel_after_relaxation", "distance_to_target", "rank"]
        out = out.sort_values(order, ascending=[False] * (len(order) - 2) + [True, True], na_position="last",
                              kind="stable").reset_index(drop=True)
        out.insert(0, "final_rank", np.arange(1, len(out) + 1))
        stable = out["stable"].eq(True)
        hit = stable & out[f"{tag}_in_target"].eq(True)
        errors = out[ERROR_COLUMN].fillna("")
        diff = out[f"predictor_vs_{tag}_gpa"].to_numpy(float) if self.measures else np.array([])
        metrics = {"confirmed_by": f"CHGNet (stable within e_hull_max, {m.label} in the target, novel after "
                                   "relaxation)" if self.measures else self.not_measured_note,
                   "n_confirmed": int(self._chgnet_hits(out).sum()) if self.measures else 0,
                   "n_checked_by_confirming_tier": int(len(out)),
                   "oracle": self.name, "n_checked": int(len(out)), "n_relaxed": int((errors == "").sum()),
                   "n_oracle_errors": int((errors != "").sum()), "n_stable": int(stable.sum()),
                   "e_hull_max": self.settings.e_hull_max, "property_measured": bool(self.measures),
                   f"n_{tag}": int(np.isfinite(pd.to_numeric(out[m.column], errors="coerce")).sum()),
                   f"n_{tag}_in_target": int(out[f"{tag}_in_target"].eq(True).sum()),
                   f"n_stable_{tag}_in_target": int(hit.sum()),
                   "n_relaxed_onto_known": int((out["matches_known"].fillna("") != "").sum()),
                   "n_on_dft_hull": int(np.isfinite(pd.to_numeric(out.get("e_hull_dft"), errors="coerce")).sum())
                   if "e_hull_dft" in out else 0,
                   f"n_sun_{tag}_in_target": int((hit & out["novel_after_relaxation"].eq(True)).sum()),
                   f"{tag}_vs_predictor_mae_gpa": float(np.mean(np.abs(diff[np.isfinite(diff)])))
                   if np.isfinite(diff).any() else None}
        log.info("%d/%d relaxed, %d stable (E_hull <= %.2f eV/atom), %d with the %s in the target (%d of them still "
                 "novel after relaxation)", metrics["n_relaxed"], len(out), metrics["n_stable"],
                 self.settings.e_hull_max, metrics[f"n_stable_{tag}_in_target"], m.label,
                 metrics[f"n_sun_{tag}_in_target"])
        return out, metrics

    # ------------------------------------------------------------------ the committee (SevenNet)
    CONFIRM_COLUMNS = {
        "sevennet_energy_per_atom": "SevenNet energy of its relaxed cell, MP2020-corrected (eV/atom)",
        "sevennet_e_hull": "energy above the SevenNet hull of the same known phases (eV/atom, MP2020-corrected)",
        "sevennet_e_hull_dft": "SevenNet energy (MP2020-corrected) above the hull of the known DFT entries (eV/atom)",
        "sevennet_stable": "sevennet_e_hull_dft (where it exists, else sevennet_e_hull) <= oracle.e_hull_max",
        "sevennet_eos_bulk_modulus_gpa": "Birch-Murnaghan bulk modulus from matcalc's EOS with SevenNet (GPa)",
        "sevennet_eos_r2": "R^2 of SevenNet's EOS fit",
        "sevennet_eos_points": "SevenNet's EOS scan: volumes (A^3) and energies (eV), JSON",
        "sevennet_matches_known": "id of a known phase SevenNet's relaxed cell matches ('' when none)",
        "sevennet_error": "why SevenNet could not check the cell ('' when it could)",
    }

    @property
    def confirm_batch_size(self) -> int:
        return self.settings.committee.batch_size

    def confirm_select(self, checked):
        """CHGNet's hits (or its stable / relaxed cells, ``committee.select``) for SevenNet, best first; none when
        sevenn is not installed (the committee is an optional extra) or ``committee.top_k`` is 0."""
        from .committee import sevennet_available

        c = self.settings.committee
        if c.top_k == 0 or not sevennet_available() or not len(checked):
            return checked.head(0)
        relaxed = checked["oracle_error"].fillna("").eq("") & checked["relaxed_cif"].fillna("").ne("")
        pick = {"all": relaxed, "stable": relaxed & checked["stable"].eq(True),
                "hits": relaxed & self._chgnet_hits(checked)}[c.select]
        top = checked[pick].sort_values("final_rank")
        return (top if c.top_k is None else top.head(c.top_k)).reset_index(drop=True)

    def _chgnet_hits(self, table) -> pd.Series:
        hit = table["stable"].eq(True) & table["novel_after_relaxation"].eq(True)
        return hit & table[f"{self.named.tag}_in_target"].eq(True) if self.measures else hit

    def confirm(self, batch, known, prepared):
        """SevenNet re-relaxes each CHGNet-relaxed cell, places it on a hull of SevenNet energies of every known phase
        of its chemical system (MP2020-corrected), fits its EOS and matches it against the known phases again."""
        from pymatgen.core import Structure

        from ..chem.crystals import known_matches, structure_from_record
        from .committee import CorrectedReferences, load_sevennet, relax_ase

        s, c = self.settings, self.settings.committee
        out = batch.reset_index(drop=True).copy()
        calc = load_sevennet(c.model)
        cells = [Structure.from_str(cif, fmt="cif") for cif in out["relaxed_cif"]]
        chemsys = {frozenset(el.symbol for el in x.composition.elements) for x in cells}
        refs = CorrectedReferences([], calculator=calc, fmax=s.fmax, steps=s.max_steps)
        refs.add(structure_from_record(r) for r, f in zip(known["structure"], known["formula"])
                 if any(set(_elements_of(f)) <= cs for cs in chemsys))
        rows = relax_ase(cells, calc, fmax=s.fmax, steps=s.max_steps)
        e_hull = np.asarray(hull_energies(rows, refs), float)
        ok = [i for i, r in enumerate(rows) if r["error"] is None]
        fits = dict(zip(ok, eos_fits([rows[i]["structure"] for i in ok], calculator=calc, relaxed=True,
                                     fmax=s.fmax, max_steps=s.max_steps))) if self.eos_for != "none" else {}
        matches = known_matches([r["structure"] for r in rows], known)
        out["sevennet_energy_per_atom"] = [r["energy_per_atom"] for r in rows]
        out["sevennet_e_hull"] = e_hull
        out["sevennet_stable"] = np.nan_to_num(e_hull, nan=np.inf) <= s.e_hull_max
        out["sevennet_eos_bulk_modulus_gpa"] = [fits.get(i, {}).get("k", np.nan) for i in range(len(rows))]
        out["sevennet_eos_r2"] = [fits.get(i, {}).get("r2", np.nan) for i in range(len(rows))]
        out["sevennet_eos_points"] = [json.dumps(fits[i]["points"]) if fits.get(i, {}).get("points") else ""
                                      for i in range(len(rows))]
        out["sevennet_matches_known"] = [m or "" for m in matches]
        out["sevennet_error"] = [r["error"] or ("no energy above hull" if not np.isfinite(e) else "")
                                 or fits.get(i, {}).get("error", "")
                                 for i, (r, e) in enumerate(zip(rows, e_hull))]
        self._on_dft_hull(out, [r["structure"].composition if r.get("structure") is not None else None for r in rows],
                          out["sevennet_energy_per_atom"], known, "sevennet_e_hull_dft", "sevennet_stable", None)
        if self._elastic():
            self._add_elastic(out, [r["structure"] for r in rows], [r["error"] is None for r in rows], calc,
                              "sevennet_", "sevennet_error")
        out["sevennet_model"] = c.model
        return out

    def merge_confirmed(self, checked, confirmed, metrics):
        """``committee_confirmed`` where CHGNet and SevenNet both find the cell stable, in the target and novel; the
        two potentials' disagreement on every cell SevenNet checked; committee-confirmed cells rank first. Without
        the committee (sevenn absent or top_k 0) CHGNet's verdicts stand alone and the metrics say so."""
        c = self.settings.committee
        out = self.with_confirmations(checked, confirmed, extra=["sevennet_model"])
        ran = out["sevennet_error"].notna()
        m = self.named
        k7 = pd.to_numeric(out[f"sevennet_{m.column}"], errors="coerce").to_numpy(float)
        seven = out["sevennet_stable"].eq(True) & out["sevennet_matches_known"].fillna("x").eq("")
        if self.measures:
            seven &= pd.Series(self.in_target(k7), index=out.index)
        both = self._chgnet_hits(out) & seven
        out["committee_confirmed"] = pd.array(np.where(ran, both, pd.NA), dtype="boolean")
        out["committee_e_hull_diff"] = (pd.to_numeric(out["sevennet_e_hull"], errors="coerce")
                                        - pd.to_numeric(out["e_hull"], errors="coerce"))
        out[m.diff] = k7 - pd.to_numeric(out[m.column], errors="coerce").to_numpy(float)
        out = self.rerank(out, ["committee_confirmed"], "chgnet_rank")
        n_ran = int(ran.sum())
        stab = out.loc[ran, ["stable", "sevennet_stable"]].astype(bool)
        committee = {"committee_model": c.model, "n_committee_run": n_ran,
                     "n_committee_errors": int(out.loc[ran, "sevennet_error"].fillna("").ne("").sum()),
                     "n_sevennet_stable": int(out["sevennet_stable"].eq(True).sum()),
                     "n_committee_confirmed": int(out["committee_confirmed"].eq(True).sum()),
                     "committee_stability_agreement": float((stab["stable"] == stab["sevennet_stable"]).mean())
                     if n_ran else None,
                     "committee_e_hull_mad": float(np.nanmean(np.abs(out["committee_e_hull_diff"])))
                     if n_ran else None,
                     m.diff.replace("_diff_", "_mad_"): float(np.nanmean(np.abs(out[m.diff])))
                     if n_ran and np.isfinite(out[m.diff]).any() else None}
        if not self.measures:
            lead = {"confirmed_by": self.not_measured_note, "n_confirmed": 0, "n_checked_by_confirming_tier": n_ran}
        elif self._committee_ran():
            lead = {"confirmed_by": f"committee: CHGNet and SevenNet ({c.model}) both stable, {m.short} in the "
                                    "target, novel",
                    "n_confirmed": committee["n_committee_confirmed"], "n_checked_by_confirming_tier": n_ran}
        else:
            why = "committee.top_k is 0" if c.top_k == 0 else "sevenn not installed: pip install 'invdesign[committee]'"
            lead = {"confirmed_by": f"CHGNet alone ({why})", "n_confirmed": metrics["n_confirmed"],
                    "n_checked_by_confirming_tier": metrics["n_checked_by_confirming_tier"]}
        metrics = {k: v for k, v in metrics.items() if k not in lead}
        log.info("committee (SevenNet %s): %d checked, %d confirmed", c.model, n_ran,
                 committee["n_committee_confirmed"])
        return out, {**lead, **metrics, **committee}

    def _committee_ran(self) -> bool:
        from .committee import sevennet_available

        return self.settings.committee.top_k != 0 and sevennet_available()

    def confirmed(self, verified):
        """Committee-confirmed cells (CHGNet's hits where the committee is off), as ``n_confirmed`` counts."""
        if not self.measures:
            return pd.Series(False, index=verified.index)
        if self._committee_ran() and "committee_confirmed" in verified:
            return verified["committee_confirmed"].eq(True)
        return self._chgnet_hits(verified)

    def confirm_ran(self, verified):
        if self._committee_ran() and "sevennet_error" in verified:
            return verified["sevennet_error"].notna()
        return verified[ERROR_COLUMN].notna()

    def first_tier_checked(self, verified):
        """Cells CHGNet relaxed (an EOS that failed afterwards is on the card, as its error)."""
        return verified.get("relaxed_cif", pd.Series("", index=verified.index)).fillna("").ne("")

    def report_extras(self, verified):
        m = self.named
        hist = {f"CHGNet {m.short} (checked candidates)": pd.to_numeric(verified[m.column],
                                                                        errors="coerce").to_numpy(float)}
        hit = verified["stable"].eq(True) & verified[f"{m.tag}_in_target"].eq(True)
        funnel = {"CHGNet stable": int(verified["stable"].eq(True).sum()), f"stable, {m.short} on target": int(hit.sum()),
                  "... and novel after relaxation": int((hit & verified["novel_after_relaxation"].eq(True)).sum())}
        return hist, funnel


def _elements_of(formula: str) -> list[str]:
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula).elements]
