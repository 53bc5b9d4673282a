"""CHGNet/matcalc crystal oracle: relaxation, energy above hull, EOS bulk modulus, failure rows."""

import math

import numpy as np
import pytest

from pymatgen.core import Composition, Lattice, Structure

from invdesign.oracles import crystal
from invdesign.oracles.eos import eos_bulk_modulus
from invdesign.oracles.hull import ReferenceEnergies, hull_energies
from invdesign.oracles.potentials import load_chgnet
from invdesign.oracles.relax import relax, shortest_distance


# CHGNet and SevenNet on 1-8 atom cells are overhead-bound: one torch thread (conftest.one_torch_thread)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nial_refs():
    """Reference set of the Ni-Al tests: B2 NiAl only (Ni and Al come from the bundled elemental
    structures); shared so its relaxations are cached across the tests of this module."""
    return ReferenceEnergies([nial_b2()], fmax=0.05, steps=200)


def nial_b2(a: float = 2.88) -> Structure:
    """B2 (CsCl-type) NiAl, the ground state of Ni-Al at 50:50."""
    return Structure(Lattice.cubic(a), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rocksalt_mgo(a: float = 4.21) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Mg", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def test_import_without_side_effects():
    assert callable(crystal.verify_crystals)
    assert load_chgnet() is load_chgnet()  # cached


def test_shortest_distance_counts_overlaps_and_images():
    s = Structure(Lattice.cubic(3.0), ["Fe", "Fe"], [[0, 0, 0], [0, 0, 0.1]])
    assert shortest_distance(s) == pytest.approx(0.3)
    assert shortest_distance(Structure(Lattice.cubic(2.5), ["Fe"], [[0, 0, 0]])) == pytest.approx(2.5)


def test_relax_hull_and_bad_structure(nial_refs):
    ground = nial_b2()
    perturbed = nial_b2(2.97)                  # 3 % strained cell ...
    perturbed.perturb(0.08, min_distance=0.04)  # ... and rattled atoms
    bad = Structure(Lattice.cubic(3.0), ["Ni", "Al", "Ni"], [[0, 0, 0], [0.1, 0, 0], [0.5, 0.5, 0.5]])  # 0.3 A apart

    rows = relax([perturbed, bad], fmax=0.05, steps=200)
    good, failed = rows
    assert good["error"] is None and good["converged"] and 0 < good["steps"] < 200
    assert math.isfinite(good["energy_per_atom"]) and -8.0 < good["energy_per_atom"] < -4.0
    assert good["structure"].volume == pytest.approx(ground.volume, rel=0.15)
    assert failed["structure"] is None and failed["error"] and math.isnan(failed["energy_per_atom"])

    refs = nial_refs
    higher = dict(good, energy_per_atom=good["energy_per_atom"] + 0.2)
    e_hull = hull_energies([good, failed, higher], refs)
    assert abs(e_hull[0]) < 0.05
    assert math.isnan(e_hull[1])
    assert e_hull[2] == pytest.approx(e_hull[0] + 0.2, abs=1e-6)
    assert set(refs.elemental) == {"Ni", "Al"}
    # B2 NiAl is strongly bound: its CHGNet formation energy must be clearly negative
    pd_ = refs.phase_diagram(["Ni", "Al"])
    nial = next(e for e in pd_.stable_entries if e.composition.reduced_composition == Composition("NiAl"))
    assert pd_.get_form_energy_per_atom(nial) < -0.3


def test_verify_crystals_table(nial_refs):
    bad = Structure(Lattice.cubic(3.0), ["Ni", "Al"], [[0, 0, 0], [0.1, 0, 0]])
    df = crystal.verify_crystals([nial_b2(2.95), bad], nial_refs, fmax=0.05, steps=200, e_hull_max=0.1,
                                 eos_for="none")
    assert list(df.columns) == crystal.VERIFY_COLUMNS
    assert df.loc[0, "stable"] and df.loc[0, "relax_converged"] and df.loc[0, "oracle_error"] == ""
    assert "_cell_length_a" in df.loc[0, "relaxed_cif"]
    assert not df.loc[1, "stable"] and df.loc[1, "oracle_error"] and df.loc[1, "relaxed_cif"] == ""
    assert df["eos_bulk_modulus_gpa"].isna().all()


def test_chgnet_oracle_relaxes_places_on_the_hull_and_fits_an_eos_of_a_tiny_cell():
    """The workflow's CHGNet oracle on one 2-atom cell (rattled rock-salt MgO) against a data set holding MgO: the
    relaxation, the hull from the data set's phases plus elemental references, one EOS fit (DFT K ~150 GPa), and
    the second novelty check, which finds the relaxed cell is the known phase."""
    import pandas as pd

    from invdesign.chem.crystals import structure_to_record
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.properties import PROPERTIES

    perturbed = rocksalt_mgo(4.30)
    perturbed.perturb(0.05)
    known = rocksalt_mgo()
    dataset = pd.DataFrame({"id": ["mp-1265"], "formula": ["MgO"], "structure": [structure_to_record(known)]})
    batch = pd.DataFrame({"rank": [1], "formula": ["MgO"], "predicted_property": [150.0],
                          "structure": [structure_to_record(perturbed)]})
    oracle = crystal.ChgnetOracle(ChgnetOracleSettings(fmax=0.05, max_steps=300), {"min": 100.0},
                                  PROPERTIES["bulk_modulus_gpa"])
    row = oracle.evaluate(batch, dataset, oracle.prepare(dataset)).iloc[0]
    assert row["oracle_error"] == "" and row["relax_converged"] and row["stable"]
    assert abs(row["e_hull"]) < 0.05
    assert 120.0 < row["eos_bulk_modulus_gpa"] < 190.0
    assert row["matches_known"] == "mp-1265" and not row["novel_after_relaxation"]
    assert 0.5 < row["volume_scale"] < 2.0  # relaxed from the additive volume fitted on the data set
    # what a report draws: the EOS scan and the hull's entries (the data set's MgO and the elements)
    import json

    scan = json.loads(row["eos_points"])
    assert len(scan["volumes"]) == len(scan["energies"]) == 11
    assert {f for f, _ in json.loads(row["hull_entries"])} == {"MgO", "Mg", "O2"}


@pytest.mark.slow
def test_eos_needs_relaxation_when_not_relaxed():
    """An unrelaxed, strained input gets EOSCalc's own relaxation and still yields a sane modulus."""
    calc = load_chgnet().calculator
    k_unrelaxed, = eos_bulk_modulus([nial_b2(3.05)], calculator=calc, fmax=0.1, max_steps=500)
    relaxed = relax([nial_b2()], fmax=0.05, steps=300)[0]["structure"]
    k_relaxed, = eos_bulk_modulus([relaxed], calculator=calc, relaxed=True, fmax=0.1, max_steps=500)
    assert np.isfinite([k_unrelaxed, k_relaxed]).all()
    assert k_unrelaxed == pytest.approx(k_relaxed, rel=0.1)
    assert 100.0 < k_relaxed < 250.0  # B2 NiAl: DFT/experiment ~160 GPa


def test_chgnet_oracle_turns_every_failure_into_an_error_row():
    """A record that is not a structure and a cell with atoms on top of each other are error rows beside a cell
    that checks fine; nothing raises."""
    import pandas as pd

    from invdesign.chem.crystals import structure_to_record
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.properties import PROPERTIES

    clash = Structure(Lattice.cubic(3.0), ["Ni", "Al"], [[0, 0, 0], [0.02, 0, 0]])
    batch = pd.DataFrame({"rank": [1, 2, 3], "formula": ["AlNi", "AlNi", "AlNi"], "predicted_property": 150.0,
                          "structure": ["{not a structure", structure_to_record(clash), structure_to_record(nial_b2())]})
    dataset = pd.DataFrame({"id": ["mp-1487"], "formula": ["AlNi"], "structure": [structure_to_record(nial_b2())]})
    oracle = crystal.ChgnetOracle(ChgnetOracleSettings(fmax=0.05, max_steps=100, eos_for="none",
                                                       rescale_volume=False), {"min": 100.0},
                                  PROPERTIES["bulk_modulus_gpa"])
    out = oracle.evaluate(batch, dataset, oracle.prepare(dataset))
    assert len(out) == 3 and set(oracle.columns) <= set(out.columns)
    assert out.loc[0, "oracle_error"].startswith("unreadable structure record")
    assert "closer than" in out.loc[1, "oracle_error"]
    assert out.loc[2, "oracle_error"] == "" and out.loc[2, "matches_known"] == "mp-1487"


def test_chen_vickers_hardness_against_a_hand_value():
    """Diamond-like moduli K = 443, G = 535 GPa: k = G/K = 1.208, 2 (k^2 G)^0.585 - 3 = 95.4 GPa; a missing or
    non-positive modulus gives NaN."""
    from invdesign.properties import chen_vickers_hardness

    assert chen_vickers_hardness(443.0, 535.0) == pytest.approx(95.4, abs=0.2)
    assert math.isnan(chen_vickers_hardness(float("nan"), 100.0)) and math.isnan(chen_vickers_hardness(100.0, 0.0))


def test_chgnet_elastic_shear_modulus_of_rocksalt_mgo():
    """matcalc's elastic tensor with CHGNet on relaxed rock-salt MgO (MP PBE: G_VRH 119, K_VRH 152 GPa): finite,
    positive moduli in GPa; the band fails a unit error (eV/A^3 would give ~0.7, a double conversion ~10^4) and
    the hardness is Chen's of the same K and G."""
    from invdesign.oracles.elasticity import elastic_moduli
    from invdesign.properties import chen_vickers_hardness

    relaxed = relax([rocksalt_mgo()], fmax=0.05, steps=300)[0]["structure"]
    calc = load_chgnet().calculator
    fit, missing = elastic_moduli([relaxed, None], calc, fmax=0.05, relax_ions=True, max_gpa=1000.0)
    capped, = elastic_moduli([relaxed], calc, fmax=0.05, relax_ions=False, max_gpa=50.0)
    assert fit["error"] == "" and 70.0 < fit["g"] < 170.0 and 100.0 < fit["k"] < 200.0
    assert fit["hardness"] == pytest.approx(chen_vickers_hardness(fit["k"], fit["g"]))
    assert missing["error"] == "no structure" and math.isnan(missing["g"])
    assert "implausible" in capped["error"] and math.isnan(capped["g"])  # above max_gpa: an error, not a modulus


@pytest.mark.parametrize("factor, caught", [(1.0, ""), (1 / 160.2, "band"), (160.2, "implausible")])
def test_a_shear_modulus_in_the_wrong_unit_is_caught(monkeypatch, factor, caught):
    """The elastic measure of the CHGNet and SevenNet tiers (one code path, a calculator each) asks matcalc for GPa;
    MgO's moduli in eV/A^3 (G 119 GPa = 0.74 eV/A^3) fail the MgO band of the test above, and converted twice
    (x 160.2) they are an error, not a modulus. matcalc's ElasticityCalc is replaced by one giving MgO's moduli x
    ``factor``."""
    import matcalc

    from invdesign.oracles import elasticity

    class Tensor:
        def __init__(self, calculator, *, units_GPa=False, **kw):
            assert units_GPa  # matcalc's default is eV/A^3

        def calc(self, structure):
            return {"shear_modulus_vrh": 119.0 * factor, "bulk_modulus_vrh": 152.0 * factor, "r2_score_mean": 0.99}

    monkeypatch.setattr(matcalc, "ElasticityCalc", Tensor)
    (fit,) = elasticity.elastic_moduli([rocksalt_mgo()], None, fmax=0.05, relax_ions=True, max_gpa=1000.0)
    assert (fit["error"] == "" and 70.0 < fit["g"] < 170.0) == (caught == "")
    assert ("implausible" in fit["error"]) == (caught == "implausible")


def test_chgnet_oracle_measures_the_shear_modulus_of_a_shear_campaign():
    """A campaign on shear_modulus_gpa: the oracle fills the elastic columns (and no EOS), and its verdict is the
    elastic shear modulus against the target."""
    import pandas as pd

    from invdesign.chem.crystals import structure_to_record
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.properties import PROPERTIES

    known = pd.DataFrame({"id": ["mp-1"], "formula": ["NiAl"], "structure": [structure_to_record(nial_b2())]})
    batch = pd.DataFrame({"rank": [1], "formula": ["MgO"], "predicted_property": [150.0],
                          "structure": [structure_to_record(rocksalt_mgo())]})
    oracle = crystal.ChgnetOracle(ChgnetOracleSettings(rescale_volume=False), {"min": 60.0},
                                  PROPERTIES["shear_modulus_gpa"])
    checked = oracle.evaluate(batch, known, {})
    assert set(oracle.columns) <= set(checked) and "sevennet_elastic_shear_modulus_gpa" in oracle.confirm_columns
    row = checked.iloc[0]
    assert row["oracle_error"] == "" and 70.0 < row["elastic_shear_modulus_gpa"] < 170.0
    assert math.isnan(row["eos_bulk_modulus_gpa"]) and row["eos_points"] == ""
    out, m = oracle.finalize(checked, batch, known, {})
    assert out["shear_in_target"].iloc[0] and m["n_shear"] == 1 and "VRH shear modulus" in m["confirmed_by"]
