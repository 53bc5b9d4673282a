"""Every registered property converts its source's raw field to its own unit, and every oracle tier that measures a
property measures it in that unit with the right sign (a broken measure fails here)."""

import numpy as np
import pandas as pd
import pytest

from invdesign.oracles import measured_by
from invdesign import properties as props
from invdesign.data.qm9 import property_values

# QM9 row 2 (ammonia) as qm9pack ships it, and each property converted by hand (1 Hartree = 27.211386 eV)
AMMONIA = {"HOMO_LUMO_gap_au": 0.3399, "HOMO_au": -0.257, "LUMO_au": 0.0829, "Dipole_debye": 1.6256,
           "Polarizability_bohr3": 9.46, "R2_bohr2": 26.1563, "ZPVE_au": 0.034358,
           "InternalEnergy_0K_au": -56.525887, "InternalEnergy_298K_au": -56.523026, "Enthalphy_298K_au": -56.522082,
           "GibbsFreeEnergy_298K_au": -56.544961, "Heatcapacity_Cv_cal_mol_K": 6.316}
AMMONIA_BY_HAND = {"gap_ev": 9.2492, "homo_ev": -6.9933, "lumo_ev": 2.2558, "dipole_debye": 1.6256,
                   "polarizability_bohr3": 9.46, "r2_bohr2": 26.1563, "zpve_ev": 0.9349, "u0_ev": -1538.1477,
                   "u298_ev": -1538.0699, "h298_ev": -1538.0442, "g298_ev": -1538.6668, "cv_cal_mol_k": 6.316}


def test_every_qm9_property_converts_one_row_to_its_unit():
    values = property_values(pd.Series(AMMONIA))
    assert set(values) == set(AMMONIA_BY_HAND) == set(props.source_properties("qm9"))  # all 12, nothing else
    for name, want in AMMONIA_BY_HAND.items():
        assert values[name] == pytest.approx(want, abs=1e-4), name


def test_the_qm9_loader_reads_every_property_field_from_qm9pack():
    from invdesign.data.qm9 import _RAW_COLUMNS, _qm9pack_files

    header = pd.read_csv(_qm9pack_files()[0], nrows=0).columns
    assert set(AMMONIA) <= set(_RAW_COLUMNS) <= set(header)


def test_chen_hardness_by_hand_and_from_the_mp_loader():
    # diamond-like moduli: k = G/K = 1.2077, H = 2 (k^2 G)^0.585 - 3 = 95.40 GPa; K 200, G 100: 10.15 GPa
    assert props.chen_vickers_hardness(443.0, 535.0) == pytest.approx(95.40, abs=0.01)
    assert props.chen_vickers_hardness(200.0, 100.0) == pytest.approx(10.147, abs=0.001)
    assert np.isnan(props.chen_vickers_hardness(float("nan"), 100.0))
    assert np.isnan(props.chen_vickers_hardness(200.0, -5.0))
    from invdesign.data.materials import parse_items

    item = {"mp_id": "mp-1", "formula": "NaCl", "bulk_modulus_vrh": 200.0, "shear_modulus_vrh": 100.0,
            "structure": {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                          "sites": [{"species": [{"element": "Na", "occu": 1}], "abc": [0, 0, 0]}]}}
    row = parse_items([item], "test", on_bad_rows="skip").iloc[0]
    assert row["bulk_modulus_gpa"] == 200.0 and row["shear_modulus_gpa"] == 100.0
    assert row["vickers_hardness_gpa"] == pytest.approx(10.147, abs=0.001)


def test_every_property_has_a_unit_a_domain_and_a_source_or_oracle_note():
    from invdesign.oracles import check_declarations, registered

    for p in props.PROPERTIES.values():
        assert p.unit and p.domain in ("molecules", "crystals") and p.sources, p.name
        for oracle, column in measured_by(p.name).items():
            assert column, (p.name, oracle)
    assert check_declarations() == []
    xtb, dft = registered()["xtb"].tiers
    assert set(xtb.measures) == set(dft.measures) and all(m.raw for m in xtb.measures.values())
    for name in xtb.measures:
        assert measured_by(name) == {"xtb": "xtb_calibrated"}


def test_dft_tier_measures_dipole_and_polarizability_in_qm9_units(tmp_path):
    """Methanol at QM9's own B3LYP geometry: the DFT tier's dipole is QM9's 1.526 D (measured 1.555) and its
    finite-field polarizability QM9's 16.97 bohr^3 (measured 16.78). Atomic units for the dipole (x 0.39), Angstrom^3
    for the polarizability (x 0.148) or a field of the wrong sign (negative alpha) all fail."""
    from invdesign.data.qm9 import _qm9pack_files, parse_elements, parse_numbers
    from invdesign.oracles.dft import frontier_orbitals

    row = pd.read_csv(_qm9pack_files()[0], nrows=20).set_index("SMILES").loc["CO"]
    numbers = [{"H": 1, "C": 6, "O": 8}[e] for e in parse_elements(row["Elements"])]
    out = frontier_orbitals(numbers, parse_numbers(row["XYZ_Ang"]).reshape(-1, 3), device="cpu", polarizability=True)
    assert out["dft_ok"] and out["dft_error"] == ""
    assert out["dft_dipole_debye"] == pytest.approx(row["Dipole_debye"], abs=0.1)
    assert out["dft_polarizability_bohr3"] == pytest.approx(row["Polarizability_bohr3"], rel=0.03)


#: acetonitrile's dipole in QM9 (D) and how far GFN2-xTB's may lie from it
ACETONITRILE_DIPOLE = (3.83, 0.4)


def test_declared_units_are_checked_against_the_registry(monkeypatch):
    """Every tier's measure of every property: declared in another unit than the property's, the declaration check
    names it (the xTB estimate, DFT, CHGNet and SevenNet tiers alike)."""
    import dataclasses

    from invdesign import oracles

    cases = [(name, i, prop) for name, cls in oracles.registered().items() for i, t in enumerate(cls.tiers)
             for prop in t.measures]
    assert {(n, i) for n, i, _ in cases} == {("xtb", 0), ("xtb", 1), ("chgnet", 0), ("chgnet", 1)}
    for name, i, prop in cases:
        cls = oracles.registered()[name]
        tier = cls.tiers[i]
        wrong = dataclasses.replace(tier.measures[prop], unit="au")
        broken = type("Broken", (cls,), {"tiers": tuple(dataclasses.replace(tier, measures={**tier.measures,
                                                                                           prop: wrong})
                                                        if t is tier else t for t in cls.tiers)})
        with monkeypatch.context() as m:
            m.setitem(oracles._REGISTERED, name, broken)
            assert oracles.check_declarations() == [f"oracle {name}, tier {tier.name}: {wrong.column} is in 'au'; "
                                                    f"{prop} is in {props.PROPERTIES[prop].unit!r}"]


def test_xtb_dipole_in_atomic_units_fails_the_qm9_comparison(monkeypatch):
    """The comparison below catches a broken xTB measure: the dipole left in atomic units (x 0.39) falls outside
    acetonitrile's band."""
    from invdesign.oracles import xtb

    monkeypatch.setattr(xtb, "DEBYE_PER_AU", 1.0)
    out = xtb.xtb_verify("CC#N", conformers=1)
    assert out["xtb_ok"] and out["xtb_dipole_debye"] != pytest.approx(ACETONITRILE_DIPOLE[0], abs=ACETONITRILE_DIPOLE[1])


def test_xtb_tier_measures_dipole_and_polarizability_with_the_right_sign_and_unit():
    """Acetonitrile: GFN2-xTB's dipole is close to QM9's 3.83 D; its finite-field polarizability is positive and about
    55-75% of QM9's 24.45 bohr^3 (a minimal basis; the oracle calibrates it onto QM9's scale)."""
    from invdesign.oracles.xtb import xtb_verify

    out = xtb_verify("CC#N", polarizability=True)
    assert out["xtb_ok"] and out["xtb_connectivity_ok"]
    assert out["xtb_dipole_debye"] == pytest.approx(ACETONITRILE_DIPOLE[0], abs=ACETONITRILE_DIPOLE[1])
    assert 0.5 * 24.45 < out["xtb_polarizability_bohr3"] < 0.8 * 24.45
    assert "xtb_polarizability_bohr3" not in xtb_verify("CC#N", conformers=1)  # only where a campaign asks for it


def test_a_target_no_oracle_measures_is_said_at_validation(tmp_path, capsys):
    """Every QM9 property is a valid target; one without an oracle (U0) is said in one line before any job, a measured
    one (the dipole) is not."""
    from invdesign.config.__main__ import main

    for prop, target, warned in (("u0_ev", "{max: -12000, unit: eV}", True), ("dipole_debye", "{min: 5, unit: D}", False)):
        path = tmp_path / f"{prop}.yaml"
        path.write_text(f"campaigns:\n  c:\n    domain: molecules\n    dataset: {{source: qm9, property_column: {prop}}}\n"
                        f"    target: {target}\n")
        assert main([str(path)]) == 0
        err = capsys.readouterr().err
        assert ("the xtb oracle does not measure u0_ev" in err) is warned, err
