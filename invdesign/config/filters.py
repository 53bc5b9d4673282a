"""Settings of each domain's candidate filters (a campaign's ``filters:``): novelty against known libraries, the
domain's validity checks and the objectives beside the target. Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .spec import ConfigError, Spec, setting


@dataclass(frozen=True, kw_only=True)
class Novelty(Spec):
    known_library: list[str] = setting([], doc="files of known molecules / structures a candidate must differ from "
                                       "to be novel, beside the whole source data set (all rows, whatever max_rows): "
                                       "SMILES files (.smi, .txt, or .csv with a smiles column) / folders of CIFs or "
                                       "JSON files of pymatgen entries or structures (DFT entries, e.g. a Materials "
                                       "Project export, also give the crystal oracle the hull of their MP2020-"
                                       "corrected energies)")

    def check(self, where, source):
        for i, path in enumerate(self.known_library):
            library_path(path, f"{source}: {where}.known_library.{i}")


#: the largest known_library file read (a bigger one is refused while validating, and again before it is read)
MAX_LIBRARY_BYTES = 4 * 2**30


def library_path(path: str, where: str) -> Path:
    """``path`` of a known_library entry: a folder, or a regular file of at most MAX_LIBRARY_BYTES (not a device
    such as /dev/zero or a FIFO, which would be read without end); ConfigError naming ``where`` otherwise."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{where}: {path} not found; fix the path (relative to the folder snakemake runs in) or "
                          "remove it")
    if p.is_dir():
        return p
    if not p.is_file():
        raise ConfigError(f"{where}: {path} is not a regular file (a device, FIFO or socket); give a file of "
                          "SMILES or structures")
    size = p.stat().st_size
    if size > MAX_LIBRARY_BYTES:
        raise ConfigError(f"{where}: {path} holds {size / 2**30:.1f} GiB, more than the "
                          f"{MAX_LIBRARY_BYTES // 2**30} GiB a library file may; keep the entries you need or split it")
    return p


@dataclass(frozen=True, kw_only=True)
class ObjectiveBase(Spec):
    __doc_line__ = ("one more objective beside the target (invdesign/objectives.py): min/max are hard bounds, "
                    "weight counts in the weighted ranking")
    min: float | None = setting(None, doc="candidates below this do not pass")
    max: float | None = setting(None, doc="candidates above this do not pass")
    weight: float = setting(1.0, ge=0, doc="weight in filters.ranking: weighted (the target's distance has 1)")

    def check(self, where, source):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(f"{source}: {where}: min {self.min:g} is above max {self.max:g}; swap them")


#: the values an objective can take (invdesign/objectives.py): QED 0-1, SA score 1-10, a cost at least 0
OBJECTIVE_RANGES = {"qed": (0.0, 1.0), "sa_score": (1.0, 10.0), "cost_usd_per_kg": (0.0, math.inf)}


def _check_objectives(objectives, where: str, source: str) -> None:
    """The min / max of every entry of one objective, with the values it can take, must leave a range: else no
    candidate passes (a run used to end with none and no word)."""
    for name in sorted({o.name for o in objectives}):
        lo, hi = OBJECTIVE_RANGES[name]
        for o in (o for o in objectives if o.name == name):
            lo, hi = max(lo, -math.inf if o.min is None else o.min), min(hi, math.inf if o.max is None else o.max)
        if lo > hi:
            a, b = OBJECTIVE_RANGES[name]
            raise ConfigError(f"{source}: {where}.objectives: {name} >= {lo:g} and <= {hi:g} can never hold ({name} "
                              f"lies in {a:g} to {b:g}; every entry's min and max count), so no candidate would "
                              "pass; fix the min / max")


@dataclass(frozen=True, kw_only=True)
class Filters(Novelty):
    """What both domains' filters check beside novelty: objectives that can hold."""

    def check(self, where, source):
        super().check(where, source)
        _check_objectives(self.objectives, where, source)


@dataclass(frozen=True, kw_only=True)
class MoleculeObjective(ObjectiveBase):
    name: Literal["qed", "sa_score"] = setting(required_hint="name the objective: qed or sa_score")


@dataclass(frozen=True, kw_only=True)
class CrystalObjective(ObjectiveBase):
    name: Literal["cost_usd_per_kg"] = setting(required_hint="name the objective: cost_usd_per_kg")


RANKING_DOC = ("how passing candidates are ranked when objectives are given: pareto (inside the target first, then "
               "by Pareto front over the distance to the target and every objective) or weighted (inside the "
               "target first, then by the weighted sum of rank-normalised objectives); invdesign/objectives.py")


@dataclass(frozen=True, kw_only=True)
class MoleculeFilters(Filters):
    min_heavy_atoms: int = setting(3, ge=1)
    heavy_atom_margin: int | None = setting(0, ge=0, doc="a candidate with more heavy atoms than the training data's "
                                            "largest molecule plus this many is invalid (QM9: more than 9); the "
                                            "property models never saw bigger molecules; null: no upper bound")
    structural_alerts: bool = setting(True, doc="reject cumulenes in rings, ring triple bonds, O-O, N-F/O-F, "
                                                "polynitrogen chains, strained small rings and bridgehead double bonds "
                                                "of small bicyclics (invdesign/chem/molecules.py STRUCTURAL_ALERTS, "
                                                "STRAIN_ALERTS, bredt_violation)")
    rare_group_share: float | None = setting(0.001, ge=0, le=1, doc="reject a candidate holding an unwanted or "
                                             "reactive group (RDKit's Brenk catalogue, cumulated heteroatoms, "
                                             "nitroso, acyclic N=N) found in fewer than this share of the training "
                                             "molecules: chemistry outside the data (docs/benchmarks.md measures what "
                                             "it removes); null: off")
    objectives: list[MoleculeObjective] = setting([], doc="objectives beside the target, e.g. [{name: qed, min: "
                                                      "0.4}, {name: sa_score, max: 4.5}]")
    ranking: Literal["pareto", "weighted"] = setting("pareto", doc=RANKING_DOC)


@dataclass(frozen=True, kw_only=True)
class CrystalFilters(Filters):
    min_distance: float = setting(0.5, ge=0, doc="shortest interatomic distance, Angstrom")
    min_contact_ratio: float = setting(0.7, ge=0, doc="shortest contact over the sum of the two atoms' covalent radii "
                                                      "(Cordero 2008); every Materials Project elasticity cell is "
                                                      "above 0.71, overlapping atoms far below")
    min_elements: int = setting(2, ge=1, doc="elemental solids are all known, so 2 by default")
    max_elements: int = setting(4, ge=1, doc="more distinct elements are rejected")
    allow_alloys: bool = setting(True, doc="all-metal compositions pass the charge-neutrality check")
    exclude_elements: list[str] = setting([], pattern=r"^[A-Z][a-z]?$", doc="candidates containing any of these "
                                          "elements do not pass (reject_reason names them); validity, uniqueness "
                                          "and novelty are unaffected")
    max_volume_per_atom: float = setting(100.0, gt=0, doc="Angstrom^3")
    min_volume_per_atom: float = setting(3.0, ge=0, doc="Angstrom^3")
    objectives: list[CrystalObjective] = setting([], doc="objectives beside the target, e.g. [{name: "
                                                     "cost_usd_per_kg, max: 1000}]")
    ranking: Literal["pareto", "weighted"] = setting("pareto", doc=RANKING_DOC)

    def check(self, where, source):
        super().check(where, source)
        if self.min_elements > self.max_elements:
            raise ConfigError(f"{source}: {where}.min_elements = {self.min_elements} is above max_elements = "
                              f"{self.max_elements}; no cell could pass: lower min_elements or raise max_elements")
        if self.min_volume_per_atom >= self.max_volume_per_atom:
            raise ConfigError(f"{source}: {where}.min_volume_per_atom must be below max_volume_per_atom; fix one")


#: domain -> its filters settings class
FILTERS = {"molecules": MoleculeFilters, "crystals": CrystalFilters}
