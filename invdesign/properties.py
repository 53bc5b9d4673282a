"""The property registry: what each target property is, where the data holds it, and which oracle measures it.

Every property a campaign can target is declared here once. A declaration names its unit, its domain, the
column that holds it in each built-in source, and the oracle quantities that measure it (an oracle name and the
column of that oracle's table). A campaign on a user's table names its column with ``dataset.property_column``
and may say which registered property that column holds with ``dataset.property_kind``; without it, no oracle
measures the property, and the verified table says so instead of judging it by another property.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Property:
    name: str
    domain: str                    # molecules | crystals
    unit: str
    description: str
    #: built-in source -> the field of its raw data that holds this property (the loader converts it to
    #: ``unit`` and names the parsed table's column after the property)
    sources: dict[str, str] = field(default_factory=dict)
    #: oracle name -> the column of that oracle's verified table that measures this property
    measured_by: dict[str, str] = field(default_factory=dict)


PROPERTIES: dict[str, Property] = {p.name: p for p in (
    Property("gap_ev", "molecules", "eV", "HOMO-LUMO gap (QM9: B3LYP/6-31G(2df,p))",
             {"qm9": "HOMO_LUMO_gap_au"}, {"xtb": "xtb_calibrated"}),
    Property("homo_ev", "molecules", "eV", "HOMO energy (QM9: B3LYP/6-31G(2df,p))", {"qm9": "HOMO_au"},
             {"xtb": "xtb_calibrated"}),
    Property("lumo_ev", "molecules", "eV", "LUMO energy (QM9: B3LYP/6-31G(2df,p))", {"qm9": "LUMO_au"},
             {"xtb": "xtb_calibrated"}),
    Property("bulk_modulus_gpa", "crystals", "GPa", "Voigt-Reuss-Hill bulk modulus (MP: PBE elasticity)",
             {"mp_elasticity": "bulk_modulus_vrh"}, {"chgnet": "eos_bulk_modulus_gpa"}),
    Property("shear_modulus_gpa", "crystals", "GPa", "Voigt-Reuss-Hill shear modulus (MP: PBE elasticity)",
             {"mp_elasticity": "shear_modulus_vrh"}),
)}

#: the xTB quantity each molecular property's calibration maps onto the data's DFT scale
XTB_QUANTITY = {"gap_ev": "xtb_gap_ev", "homo_ev": "xtb_homo_ev", "lumo_ev": "xtb_lumo_ev"}

#: the DFT tier's column that measures each molecular property
DFT_QUANTITY = {"gap_ev": "dft_gap_ev", "homo_ev": "dft_homo_ev", "lumo_ev": "dft_lumo_ev"}

DEFAULT_PROPERTY = {"qm9": "gap_ev", "mp_elasticity": "bulk_modulus_gpa"}


def source_properties(source: str) -> dict[str, Property]:
    """The properties a built-in source provides (empty for user tables)."""
    return {n: p for n, p in PROPERTIES.items() if source in p.sources}


def resolve(property_column: str, property_kind: str | None = None) -> Property | None:
    """The registered property a campaign targets: its built-in column, or what ``dataset.property_kind`` says
    a user's column holds; None for a user's property the registry does not know."""
    return PROPERTIES.get(property_kind or property_column)


def unit_of(property_column: str, property_kind: str | None = None) -> str:
    p = resolve(property_column, property_kind)
    return p.unit if p else ""


def oracle_column(prop: Property | None, oracle: str) -> str | None:
    """The column of ``oracle``'s table that measures ``prop``, or None when that oracle does not measure it."""
    return prop.measured_by.get(oracle) if prop else None
