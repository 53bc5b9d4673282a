"""The property registry: what each target property is, where the data holds it, and which oracle measures it.

Every property a campaign can target is declared here once. A declaration names its unit, its domain and the
column that holds it in each built-in source; which oracle measures it, and with which column, the oracles
declare (their tiers' measures; :func:`invdesign.oracles.measured_by` asks them). A campaign on a user's table
names its column with ``dataset.property_column``
and may say which registered property that column holds with ``dataset.property_kind``; without it, no oracle
measures the property, and the verified table says so instead of judging it by another property.

Standard library only; the registry imports nothing of the oracles (they import it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


HARTREE_EV = 27.211386245988


def chen_vickers_hardness(bulk_gpa: float, shear_gpa: float) -> float:
    """Vickers hardness (GPa) of Chen's model from the bulk and shear moduli (GPa): H_v = 2 (k^2 G)^0.585 - 3 with
    Pugh's ratio k = G / K (X.-Q. Chen et al., Intermetallics 19, 1275 (2011)); NaN where a modulus is missing or not
    positive. The model can give small negative values for soft, ductile solids; they are kept as they are."""
    if not (bulk_gpa > 0 and shear_gpa > 0):  # also False for NaN
        return float("nan")
    k = shear_gpa / bulk_gpa
    return 2.0 * (k * k * shear_gpa) ** 0.585 - 3.0


@dataclass(frozen=True)
class Source:
    """Where a built-in source holds a property: the field(s) of its raw data and the conversion to the property's
    unit. One field: ``value = raw * scale``; several fields: ``value = derive(*raw)``."""
    fields: tuple[str, ...]
    scale: float = 1.0
    derive: Callable[..., float] | None = None

    def value(self, *raw) -> float:
        """The property in its unit from the raw values of :attr:`fields` (NaN where one is missing)."""
        vals = [float("nan") if v is None else float(v) for v in raw]
        if self.derive is not None:
            return float(self.derive(*vals))
        return vals[0] * self.scale


@dataclass(frozen=True)
class Property:
    name: str
    domain: str                    # molecules | crystals
    unit: str
    description: str
    #: built-in source -> where its raw data holds this property and how it converts to ``unit`` (the loader names
    #: the parsed table's column after the property)
    sources: dict[str, Source] = field(default_factory=dict)


def _qm9(name: str, unit: str, description: str, raw: str, scale: float = 1.0) -> Property:
    return Property(name, "molecules", unit, f"{description} (QM9: B3LYP/6-31G(2df,p))", {"qm9": Source((raw,), scale)})


_MP = "(MP: PBE elasticity)"
PROPERTIES: dict[str, Property] = {p.name: p for p in (
    _qm9("gap_ev", "eV", "HOMO-LUMO gap", "HOMO_LUMO_gap_au", HARTREE_EV),
    _qm9("homo_ev", "eV", "HOMO energy", "HOMO_au", HARTREE_EV),
    _qm9("lumo_ev", "eV", "LUMO energy", "LUMO_au", HARTREE_EV),
    _qm9("dipole_debye", "D", "dipole moment (norm)", "Dipole_debye"),
    _qm9("polarizability_bohr3", "bohr^3", "isotropic static polarizability", "Polarizability_bohr3"),
    _qm9("r2_bohr2", "bohr^2", "electronic spatial extent <R^2>", "R2_bohr2"),
    _qm9("zpve_ev", "eV", "zero-point vibrational energy", "ZPVE_au", HARTREE_EV),
    _qm9("u0_ev", "eV", "internal energy at 0 K", "InternalEnergy_0K_au", HARTREE_EV),
    _qm9("u298_ev", "eV", "internal energy at 298.15 K", "InternalEnergy_298K_au", HARTREE_EV),
    _qm9("h298_ev", "eV", "enthalpy at 298.15 K", "Enthalphy_298K_au", HARTREE_EV),
    _qm9("g298_ev", "eV", "Gibbs free energy at 298.15 K", "GibbsFreeEnergy_298K_au", HARTREE_EV),
    _qm9("cv_cal_mol_k", "cal/(mol K)", "heat capacity at 298.15 K", "Heatcapacity_Cv_cal_mol_K"),
    Property("bulk_modulus_gpa", "crystals", "GPa", f"Voigt-Reuss-Hill bulk modulus {_MP}",
             {"mp_elasticity": Source(("bulk_modulus_vrh",))}),
    Property("shear_modulus_gpa", "crystals", "GPa", f"Voigt-Reuss-Hill shear modulus {_MP}",
             {"mp_elasticity": Source(("shear_modulus_vrh",))}),
    Property("vickers_hardness_gpa", "crystals", "GPa", "Vickers hardness of Chen's model from the Voigt-Reuss-Hill "
             f"bulk and shear moduli {_MP}",
             {"mp_elasticity": Source(("bulk_modulus_vrh", "shear_modulus_vrh"), derive=chen_vickers_hardness)}),
)}

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
