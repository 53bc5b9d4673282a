"""Settings of the data: where downloads live (the config's ``data:``), each domain's dataset sources (a
campaign's ``dataset:``) and the train / val / test split (``split:``). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import properties as props
from .spec import ConfigError, Spec, setting

# ---------------------------------------------------------------------------------------------- downloads


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
    property_column: str = setting("gap_ev", doc="one of QM9's 12 registered properties (invdesign.properties: gap_ev, "
                                   "homo_ev, lumo_ev, dipole_debye, polarizability_bohr3, ...)")
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

# ---------------------------------------------------------------------------------------------- split


@dataclass(frozen=True, kw_only=True)
class Split(Spec):
    val: float = setting(0.1, ge=0, le=0.5)
    test: float = setting(0.1, ge=0, le=0.5)
    seed: int = setting(0)
