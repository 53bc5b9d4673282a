"""Settings of a whole config file: runtime, data, results and the campaigns, each campaign with its dataset,
target, split, featurization, generators, predictor, search, filters and oracle. Standard library only."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import properties as props
from ..device import DEVICE_PATTERN
from .generators import Generator, Predictor, parse_generator, parse_predictor
from .oracles import ORACLE_SETTINGS
from .spec import MAX_SAMPLES, ConfigError, Spec, setting, variant

# ---------------------------------------------------------------------------------------------- runtime


@dataclass(frozen=True, kw_only=True)
class Runtime(Spec):
    __doc_line__ = "Where and how to compute. Not part of the science; results do not depend on it beyond float noise."
    device: str = setting("auto", pattern=DEVICE_PATTERN,
                          doc="auto = CUDA when present; cuda fails clearly when no GPU is visible")
    threads: int = setting(2, ge=1, doc="torch CPU threads per job")
    loader_workers: int = setting(0, ge=0, doc="data-loader processes per training job (batch collation); 4-8 "
                                               "keeps a GPU busy")
    gpus: int = setting(1, ge=1, doc="processes per node of a training job; above 1, training runs as torchrun DDP "
                                     "(one process per GPU, or gloo on CPU)")
    nodes: int = setting(1, ge=1, doc="nodes per training job; above 1, torchrun runs on each node of a SLURM "
                                      "allocation (slurm profile) and the ranks meet at a c10d rendezvous")
    rendezvous_port: int = setting(29500, ge=1024, le=65535, doc="TCP port of the c10d rendezvous on the first "
                                                                 "node (multi-node training)")
    checkpoint_minutes: float = setting(10.0, ge=0, doc="training saves a resumable checkpoint "
                                        "(<model>.pt.resume) at an epoch end at most this often; a rerun after a "
                                        "time limit, preemption or crash continues from it. 0 = never")


@dataclass(frozen=True, kw_only=True)
class DataSettings(Spec):
    mirror: str | None = setting("../shared/data", doc="Folder holding mirrored downloads (same file name, checked "
                                 "against the sha256). Looked at before the URL; the env var INVDESIGN_DATA_MIRROR "
                                 "overrides it. null = download only.")
    cache: str = setting("data/cache", doc="Where downloads and parsed source tables are cached")

    def check(self, where, source):
        for key in ("mirror", "cache"):
            value = getattr(self, key)
            if value and Path(value).is_file():
                raise ConfigError(f"{source}: {where}.{key} = {value!r} is a file, not a folder; give the folder "
                                  "that holds the files")


# ---------------------------------------------------------------------------------------------- dataset

OnBadRows = Literal["skip", "error"]


@dataclass(frozen=True, kw_only=True)
class DatasetBase(Spec):
    max_rows: int | None = setting(None, ge=1, doc="Seeded random subset for small campaigns")
    seed: int = setting(0, doc="seeds the max_rows subset")
    on_bad_rows: OnBadRows = setting("skip", doc="bad rows (malformed, failing a data check, conflicting duplicates, "
                                     "label not a number or an outlier): skip them with a logged count, or stop")
    outlier_z: float | None = setting(10.0, gt=0, doc="a label further than this many robust standard deviations "
                                      "(1.4826 x median absolute deviation) from the median is a bad row; null = no "
                                      "outlier check")
    duplicate_tolerance: float | None = setting(None, ge=0, doc="rows of one molecule / structure are merged into one "
                                                "with their median label; when their labels spread more than this "
                                                "(property units; null = a tenth of the labels' standard deviation) "
                                                "they conflict and are bad rows")

    def registered_property(self) -> props.Property | None:
        """The registry's entry for the target property (None: a user's property no oracle measures)."""
        return props.resolve(self.property_column, getattr(self, "property_kind", None))

    def check(self, where, source):
        known = props.source_properties(self.source)
        if known and self.property_column not in known:
            raise ConfigError(f"{source}: {where}.property_column = {self.property_column!r} is not provided by "
                              f"{self.source}; use one of {sorted(known)}")


@dataclass(frozen=True, kw_only=True)
class QM9Source(DatasetBase):
    __doc_line__ = "QM9 from the qm9pack package (130,831 molecules, B3LYP/6-31G(2df,p))"
    source: Literal["qm9"] = setting("qm9")
    property_column: str = setting("gap_ev", doc="gap_ev | homo_ev | lumo_ev")
    max_heavy_atoms: int = setting(50, ge=1, doc="molecules with more heavy atoms are bad rows")
    size_outlier_ratio: float | None = setting(2.0, gt=1, doc="molecules with more heavy atoms than this many times "
                                                       "the data's 90th percentile are bad rows (size outliers: one "
                                                       "long chain slows training and inflates its memory); null = off")


@dataclass(frozen=True, kw_only=True)
class UserTableBase(DatasetBase):
    property_kind: str | None = setting(None, doc="the registered property your column holds (one of "
                                        + ", ".join(sorted(props.PROPERTIES)) + "), in its unit; lets an "
                                        "oracle measure it. null: no oracle measures it, and the verified table "
                                        "says so")

    def check(self, where, source):
        kind = self.property_kind
        if kind is not None and kind not in props.PROPERTIES:
            raise ConfigError(f"{source}: {where}.property_kind = {kind!r} is not a registered property; use one of "
                              f"{sorted(props.PROPERTIES)} or leave it out")


@dataclass(frozen=True, kw_only=True)
class CsvSource(UserTableBase):
    __doc_line__ = "your table of SMILES with a numeric property column"
    source: Literal["csv"] = setting("csv")
    path: str = setting(required_hint="point it at your CSV file (for source 'csv')")
    property_column: str = setting(required_hint="name the column holding the target property (for source 'csv')")
    smiles_column: str = setting("smiles")
    id_column: str | None = setting(None, doc="column of unique row ids (default: the line number)")
    max_heavy_atoms: int = setting(50, ge=1, doc="molecules with more heavy atoms are bad rows (one 200-atom chain "
                                   "makes dense-graph training several times slower and larger)")
    size_outlier_ratio: float | None = setting(2.0, gt=1, doc="molecules with more heavy atoms than this many times "
                                                       "the data's 90th percentile are bad rows (size outliers: one "
                                                       "long chain slows training and inflates its memory); null = off")


@dataclass(frozen=True, kw_only=True)
class MPSource(DatasetBase):
    __doc_line__ = "Materials Project elasticity data of binary compounds (PBE), by URL with a checksum or a mirror"
    source: Literal["mp_elasticity"] = setting("mp_elasticity")
    property_column: str = setting("bulk_modulus_gpa", doc="bulk_modulus_gpa | shear_modulus_gpa")
    max_atoms: int = setting(20, ge=1, doc="drop cells with more sites")


@dataclass(frozen=True, kw_only=True)
class CifFolderSource(UserTableBase):
    __doc_line__ = "your folder of CIF files plus a CSV with one row per CIF and the property"
    source: Literal["cif_folder"] = setting("cif_folder")
    path: str = setting(required_hint="point it at the folder of .cif files (for source 'cif_folder')")
    table: str = setting(required_hint="a CSV with an id column (CIF file stem) and the property column (for "
                                       "source 'cif_folder')")
    property_column: str = setting(required_hint="name the column holding the target property (for source "
                                                 "'cif_folder')")
    id_column: str = setting("id")
    max_atoms: int = setting(20, ge=1, doc="drop cells with more sites")


#: domain -> {source: settings class}
SOURCES: dict[str, dict[str, type]] = {
    "molecules": {"qm9": QM9Source, "csv": CsvSource},
    "crystals": {"mp_elasticity": MPSource, "cif_folder": CifFolderSource},
}

# ---------------------------------------------------------------------------------------------- target / split


@dataclass(frozen=True, kw_only=True)
class Target(Spec):
    __doc_line__ = "A window [low, high] or a threshold (min and/or max) on the property, in the data's unit."
    window: list[float] | None = setting(None, min_items=2, max_items=2)
    min: float | None = setting(None)
    max: float | None = setting(None)
    unit: str | None = setting(None, doc="for the record (eV, GPa); checked against the property's unit when known")

    def check(self, where, source):
        if self.window is None and self.min is None and self.max is None:
            raise ConfigError(f"{source}: {where} needs a window: [low, high] or a threshold min: / max:")
        if self.window is not None and (self.min is not None or self.max is not None):
            raise ConfigError(f"{source}: {where}: give either window or min/max, not both")
        lo, hi = self.bounds()
        if lo >= hi:
            raise ConfigError(f"{source}: {where}: lower bound {lo} must be below upper bound {hi}")

    def bounds(self) -> tuple[float, float]:
        return target_bounds(self.to_dict())

    def to_dict(self) -> dict:
        """The keys given (a window or min / max, and the unit if given), as the user wrote them."""
        return {k: v for k, v in super().to_dict().items() if v is not None}


def target_bounds(target: dict) -> tuple[float, float]:
    """(low, high) of the accepted property range of a target mapping; open ends are +-inf."""
    if target.get("window") is not None:
        lo, hi = target["window"]
        return float(lo), float(hi)
    lo, hi = target.get("min"), target.get("max")
    return (float(lo) if lo is not None else -math.inf), (float(hi) if hi is not None else math.inf)


@dataclass(frozen=True, kw_only=True)
class Split(Spec):
    val: float = setting(0.1, ge=0, le=0.5)
    test: float = setting(0.1, ge=0, le=0.5)
    seed: int = setting(0)


# ---------------------------------------------------------------------------------------------- featurize / filters


@dataclass(frozen=True, kw_only=True)
class MoleculeFeaturize(Spec):
    xtb_orbitals: bool = setting(False, doc="add atom-resolved GFN2-xTB HOMO/LUMO densities as node features "
                                            "(about 0.2-1 s per molecule)")


@dataclass(frozen=True, kw_only=True)
class CrystalFeaturize(Spec):
    cutoff: float = setting(5.0, gt=0, doc="radius-graph cutoff (Angstrom)")
    max_neighbors: int = setting(12, ge=1, doc="neighbours kept per atom")
    num_gaussians: int = setting(32, ge=2, doc="distance expansion size")


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


FEATURIZE = {"molecules": MoleculeFeaturize, "crystals": CrystalFeaturize}
FILTERS = {"molecules": MoleculeFilters, "crystals": CrystalFilters}

# ---------------------------------------------------------------------------------------------- search


@dataclass(frozen=True, kw_only=True)
class LatentSearch(Spec):
    __doc_line__ = "vae: latent-space optimisation toward the target (the sampler that wraps the VAE)"
    method: Literal["gradient"] = setting("gradient", doc="Latent-space optimisation of the property head")
    n_starts: int = setting(2000, ge=1, le=MAX_SAMPLES, doc="Latent starting points")
    from_data: float = setting(0.5, ge=0, le=1, doc="Share of starts encoded from training examples closest to the "
                                                    "target (rest: prior samples)")
    steps: int = setting(100, ge=0)
    lr: float = setting(0.05, gt=0)
    prior_weight: float = setting(0.05, ge=0, doc="Pull toward the prior (keeps decodes on-manifold)")
    noise: float = setting(0.3, ge=0, doc="Gaussian jitter added to encoded starts")
    checkpoints: int = setting(4, ge=1, doc="Points along each trajectory that are decoded")
    uncertainty_weight: float = setting(1.0, ge=0, doc="Penalty on the property-head ensemble's variance (0 = plain "
                                                       "gradient descent on the mean)")
    seed: int = setting(0)

    def check(self, where, source):
        if self.steps and self.checkpoints > self.steps:
            raise ConfigError(f"{source}: {where}.checkpoints = {self.checkpoints} is more than steps = {self.steps} "
                              "(a trajectory has only that many points to decode); lower checkpoints or raise steps")


# ---------------------------------------------------------------------------------------------- campaign

CAMPAIGN_KEYS = ("domain", "description", "dataset", "target", "split", "featurize", "generator", "generators",
                 "predictor", "search", "filters", "oracle")


@dataclass(frozen=True, kw_only=True)
class Campaign:
    """One campaign, typed. ``Campaign.parse`` validates the mapping a user writes; ``to_dict`` gives it back
    with every default filled in (``generator:`` normalised to a one-item ``generators:`` list)."""

    name: str
    domain: str
    description: str
    dataset: DatasetBase
    target: Target
    split: Split
    featurize: Spec
    generators: tuple[Generator, ...]
    predictor: Predictor
    search: LatentSearch
    filters: Spec
    oracle: Spec

    @classmethod
    def parse(cls, name: str, data, source: str = "config", results: str = "results") -> Campaign:
        where = f"campaigns.{name}"
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {where}: {data!r} is not of type 'object'; give the campaign's keys")
        unknown = sorted(set(data) - set(CAMPAIGN_KEYS))
        if unknown:
            raise ConfigError(f"{source}: unknown key '{where}.{unknown[0]}'; allowed keys there: "
                              f"{', '.join(sorted(k for k in CAMPAIGN_KEYS if k != 'generator'))}, generator")
        for key in ("domain", "dataset", "target"):
            if key not in data:
                raise ConfigError(f"{source}: {where}: '{key}' is a required property; add it (see "
                                  "config/config.yaml for an example)")
        domain = data["domain"]
        if domain not in SOURCES:
            raise ConfigError(f"{source}: {where}.domain = {domain!r} is not allowed; use one of {sorted(SOURCES)}")
        ds = data["dataset"]
        if not isinstance(ds, dict) or "source" not in ds:
            raise ConfigError(f"{source}: {where}.dataset.source is required; use one of {sorted(SOURCES[domain])}")
        if ds["source"] not in SOURCES[domain]:
            other = [d for d, s in SOURCES.items() if ds["source"] in s]
            if other:
                raise ConfigError(f"{source}: {where}.dataset.source = {ds['source']!r} does not fit domain "
                                  f"{domain!r}; use one of {sorted(SOURCES[domain])}")
        dataset = variant(ds, SOURCES[domain], "source", None, f"{where}.dataset", source, f"{domain} sources",
                          {k: v for s in SOURCES.values() for k, v in s.items()})
        if "generator" in data and "generators" in data:
            raise ConfigError(f"{source}: {where} has both generator: and generators:; keep one (generators: is a "
                              "list for several generators)")
        if "generators" in data:
            items = data["generators"]
            if not isinstance(items, list) or not items:
                raise ConfigError(f"{source}: {where}.generators: give a non-empty list of generators, e.g. "
                                  "[{type: vae}, {type: diffusion}]")
            gens = tuple(parse_generator(g, domain, f"{where}.generators.{i}", source) for i, g in enumerate(items))
        else:
            gens = (parse_generator(data.get("generator"), domain, f"{where}.generator", source),)
        types = [g.type for g in gens]
        dup = sorted({t for t in types if types.count(t) > 1})
        if dup:
            raise ConfigError(f"{source}: {where}.generators lists type {dup[0]!r} twice; give each generator type "
                              "once")
        oracles = ORACLE_SETTINGS[domain]
        every_oracle = {f"{t} oracle ({d})": c for d, o in ORACLE_SETTINGS.items() for t, c in o.items()}
        oracle_cfg = dict(data.get("oracle") or {})
        if "feedback_from" in oracle_cfg and domain != "crystals":
            raise ConfigError(f"{source}: {where}.oracle.feedback_from ranks by CHGNet verdicts and works for "
                              "crystal campaigns only; remove it")
        camp = cls(
            name=name, domain=domain, description=_string(data.get("description", ""), f"{where}.description",
                                                          source),
            dataset=dataset,
            target=Target.parse(data["target"], f"{where}.target", source),
            split=Split.parse(data.get("split"), f"{where}.split", source),
            featurize=_domain_block(data, "featurize", FEATURIZE, domain, where, source),
            generators=gens,
            predictor=parse_predictor(data.get("predictor"), f"{where}.predictor", source),
            search=LatentSearch.parse(data.get("search"), f"{where}.search", source),
            filters=_domain_block(data, "filters", FILTERS, domain, where, source),
            oracle=variant(oracle_cfg, oracles, "type", next(iter(oracles)), f"{where}.oracle", source,
                           f"{domain} oracles", every_oracle),
        )
        camp._check(where, source, results)
        return camp

    def _check(self, where: str, source: str, results: str) -> None:
        prop = self.dataset.registered_property()
        unit = self.target.unit
        if prop is not None and unit is not None and unit != prop.unit:
            raise ConfigError(f"{source}: {where}.target.unit = {unit!r} but {self.dataset.property_column} is in "
                              f"{prop.unit}; convert the target or fix the unit")
        if prop is not None and prop.domain != self.domain:
            raise ConfigError(f"{source}: {where}.dataset.property_kind = {prop.name!r} is a {prop.domain} property; "
                              f"a {self.domain} campaign cannot hold it: fix property_kind or leave it out")
        if self.split.val + self.split.test >= 0.9:
            raise ConfigError(f"{source}: {where}.split: val + test = {self.split.val + self.split.test:g} leaves "
                              "less than 10% of the rows for training; lower split.val or split.test")
        feedback = getattr(self.oracle, "feedback_from", [])
        if feedback and (prop is None or prop.measured_by.get("chgnet") != "eos_bulk_modulus_gpa"):
            # the feedback ranker models P(stable) x P(CHGNet EOS bulk modulus in the target): it would judge any
            # other property by the bulk modulus
            raise ConfigError(f"{source}: {where}.oracle.feedback_from ranks by CHGNet's EOS bulk modulus, which does "
                              f"not measure {self.dataset.property_column}; remove feedback_from (and "
                              "compositions.from_feedback) or target bulk_modulus_gpa")
        for i, gen in enumerate(self.generators):
            comp = getattr(gen.sample, "compositions", None)
            if comp is not None and comp.from_feedback and not feedback:
                raise ConfigError(f"{source}: {where} generator {gen.type}: compositions.from_feedback needs "
                                  "oracle.feedback_from (earlier campaigns' candidates_verified tables); add it or "
                                  "list formulas instead")
        own = Path(results.rstrip("/") or ".", self.name).resolve()
        for p in feedback:
            if Path(p).resolve().parent == own:
                raise ConfigError(f"{source}: {where}.oracle.feedback_from: {p} is this campaign's own output, a "
                                  "cycle; point it at an earlier campaign's candidates_verified table (e.g. a copy "
                                  "of this one's from a previous run)")

    # ------------------------------------------------------------------ access
    @property
    def target_property(self) -> props.Property | None:
        return self.dataset.registered_property()

    @property
    def unmeasured_note(self) -> str:
        """One line where no tier of the campaign's oracle measures its target property ('' where one does): the
        campaign still runs, ranked by the predictor, and its verified table says the property was not measured."""
        prop, oracle = self.target_property, self.oracle.type
        if prop is not None and oracle in prop.measured_by:
            return ""
        return (f"campaign {self.name}: the {oracle} oracle does not measure {self.dataset.property_column}"
                + ("" if prop else " (a user property: set dataset.property_kind if it is a registered one)")
                + "; its candidates are ranked by the predictor alone and no hit is confirmed by physics")

    @property
    def unit(self) -> str:
        p = self.target_property
        return p.unit if p else (self.target.unit or "")

    def generator(self, kind: str) -> Generator:
        for g in self.generators:
            if g.type == kind:
                return g
        raise KeyError(f"campaign {self.name} has no {kind!r} generator")

    def to_dict(self) -> dict:
        return {"domain": self.domain, "description": self.description, "dataset": self.dataset.to_dict(),
                "target": self.target.to_dict(), "split": self.split.to_dict(),
                "featurize": self.featurize.to_dict(), "generators": [g.to_dict() for g in self.generators],
                "predictor": self.predictor.to_dict(), "search": self.search.to_dict(),
                "filters": self.filters.to_dict(), "oracle": self.oracle.to_dict()}


def _string(value, where, source) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {where}: {value!r} is not of type 'string'")
    return value


def _domain_block(data, key, classes, domain, where, source):
    block = data.get(key)
    cls = classes[domain]
    if isinstance(block, dict):
        mine = {f.name for f in dataclasses.fields(cls)}
        for extra in sorted(set(block) - mine):
            other = [d for d, c in classes.items() if d != domain and extra in {f.name for f in dataclasses.fields(c)}]
            if other:
                raise ConfigError(f"{source}: unknown key '{where}.{key}.{extra}': it is a {other[0]} setting, not "
                                  f"one of {domain}; remove it; allowed keys there: {', '.join(sorted(mine))}")
    return cls.parse(block, f"{where}.{key}", source)


# ---------------------------------------------------------------------------------------------- the whole file

TOP_KEYS = ("runtime", "data", "results", "campaigns")


def _check_writable_folder(results: str, source: str) -> None:
    """``results`` must be a folder this user can create or write: its nearest existing ancestor is a writable
    folder (a file on the way, /proc or a read-only mount fail here, before any job runs)."""
    import os

    for q in (Path(results), *Path(results).parents):
        if q.is_symlink() and not q.exists():
            raise ConfigError(f"{source}: results = {results!r}: {q} is a link to {os.readlink(q)}, which does not "
                              "exist; create that folder or remove the link")
    p = Path(results).resolve()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise ConfigError(f"{source}: results = {results!r}: {q} is a file, not a folder; give a folder "
                                  "such as results")
            if not os.access(q, os.W_OK | os.X_OK) or str(q).startswith(("/proc", "/sys")):
                raise ConfigError(f"{source}: results = {results!r}: {q} is not writable; give a folder you can "
                                  "write, such as results")
            return


#: the longest campaign name: it is a folder name and part of every output path (a file name holds 255 bytes)
MAX_NAME = 100


def _check_campaign_name(name, source: str) -> None:
    """Letters, digits, '_' and '-', at most MAX_NAME of them, and no end that repeats one piece 20 times or more
    (Snakemake takes such a wildcard value for a runaway recursion and stops with PeriodicWildcardError)."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"{source}: campaign name {name!r} may only use letters, digits, '_' and '-'")
    if len(name) > MAX_NAME:
        raise ConfigError(f"{source}: campaign name {name[:20]}... has {len(name)} characters; use at most {MAX_NAME}")
    repeat = re.search(r"(.+?)\1{19,}$", name)
    if repeat:
        raise ConfigError(f"{source}: campaign name {name!r} ends in {repeat.group(1)!r} repeated "
                          f"{len(repeat.group(0)) // len(repeat.group(1))} times, which Snakemake refuses as a "
                          "wildcard (PeriodicWildcardError); shorten the repeat")


@dataclass(frozen=True, kw_only=True)
class Config:
    runtime: Runtime
    data: DataSettings
    results: str
    campaigns: dict[str, Campaign]

    @classmethod
    def parse(cls, data, source: str = "config") -> Config:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the config is {type(data).__name__}, not a mapping; start from "
                              "config/config.yaml")
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            keys = ", ".join(f"'{k}'" for k in unknown)
            raise ConfigError(f"{source}: unknown key {keys}; allowed keys there: {', '.join(sorted(TOP_KEYS))}")
        if "campaigns" not in data:
            raise ConfigError(f"{source}: <top level>: 'campaigns' is a required property; add it (see "
                              "config/config.yaml for an example)")
        results = data.get("results", "results")
        if not isinstance(results, str):
            raise ConfigError(f"{source}: results: {results!r} is not of type 'string'")
        if not results.strip() or Path(results).resolve() == Path("/"):
            raise ConfigError(f"{source}: results = {results!r} would put every output at the filesystem root; "
                              "give a folder such as results")
        _check_writable_folder(results, source)
        camps = data["campaigns"]
        if not isinstance(camps, dict) or not camps:
            raise ConfigError(f"{source}: campaigns: give at least one campaign (a mapping of names to campaigns)")
        for name in camps:
            _check_campaign_name(name, source)
        return cls(runtime=Runtime.parse(data.get("runtime"), "runtime", source),
                   data=DataSettings.parse(data.get("data"), "data", source), results=results,
                   campaigns={n: Campaign.parse(n, c, source, results) for n, c in camps.items()})

    def to_dict(self) -> dict:
        return {"runtime": self.runtime.to_dict(), "data": self.data.to_dict(), "results": self.results,
                "campaigns": {n: c.to_dict() for n, c in self.campaigns.items()}}
