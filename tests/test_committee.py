"""The crystal committee: SevenNet as a second judge of CHGNet's hits, on an MP2020-corrected hull; CHGNet alone
when sevenn is absent."""

import json

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from invdesign.chem.crystals import structure_to_record
from invdesign.oracles.potentials import mp2020_energy
from invdesign.pipeline.verify import run_oracle_chain


# CHGNet and SevenNet on 1-8 atom cells are overhead-bound: one torch thread (conftest.one_torch_thread)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rocksalt(a, b, lattice):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_mp2020_corrections_on_oxides():
    """SevenNet speaks uncorrected GGA/GGA+U: an oxide gets MP2020's oxide correction (-0.687 eV per O), an oxide of
    a U metal also the GGA/GGA+U mixing correction (Fe: -2.256 eV per Fe), an intermetallic nothing."""
    mgo = rocksalt("Mg", "O", 4.21)   # conventional cell: 4 Mg, 4 O
    assert mp2020_energy(mgo, -47.0) == pytest.approx(-47.0 - 4 * 0.687, abs=1e-3)
    feo = rocksalt("Fe", "O", 4.33)
    assert mp2020_energy(feo, -60.0) == pytest.approx(-60.0 - 4 * 0.687 - 4 * 2.256, abs=1e-3)
    nial = Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert mp2020_energy(nial, -10.0) == pytest.approx(-10.0)


def test_the_committee_does_not_import_the_crystal_oracle():
    """The committee builds on the relaxation, hull and potential modules, not on the oracle that uses it."""
    import subprocess
    import sys

    code = "import sys, invdesign.oracles.committee; assert 'invdesign.oracles.crystal' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def crystal_chain(tmp_path, committee: dict, known_extra: pd.DataFrame | None = None,
                  prop: str = "bulk_modulus_gpa", target: float = 100.0):
    """B2 NiAl (DFT K ~160 GPa), slightly strained, against a known set without any Ni-Al phase: CHGNet calls it a
    stable, novel cell above 100 GPa; the committee re-checks it with SevenNet. B2 NiAl is an ordering of the bcc
    lattice, so these chains count alloy orderings (oracle.alloy_orderings: count)."""
    cell = Structure(Lattice.cubic(2.95), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    known = pd.DataFrame({"id": ["mp-1265"], "formula": ["MgO"],
                          "structure": [structure_to_record(rocksalt("Mg", "O", 4.21))]})
    if known_extra is not None:
        known = pd.concat([known, known_extra], ignore_index=True)
    cands = pd.DataFrame({"rank": [1], "formula": ["AlNi"], "predicted_property": [150.0], "passes": [True],
                          "distance_to_target": [0.0], "structure": [structure_to_record(cell)]})
    cands.to_parquet(tmp_path / "c.parquet")
    known.to_parquet(tmp_path / "k.parquet")
    (tmp_path / "p.json").write_text(json.dumps({}))
    oracle = {"top_k": 1, "fmax": 0.05, "max_steps": 200, "rescale_volume": False, "committee": committee,
              "alloy_orderings": "count"}
    m = run_oracle_chain(campaign="t", domain="crystals", oracle=oracle, target={"min": target},
                         property_column=prop, property_kind=None, candidates=str(tmp_path / "c.parquet"),
                         known=str(tmp_path / "k.parquet"), prepared=str(tmp_path / "p.json"),
                         folder=str(tmp_path / "o"))
    return m, pd.read_parquet(tmp_path / "o" / "candidates_verified.parquet").iloc[0]


def test_committee_confirms_a_cell_both_potentials_find_stable_stiff_and_novel(tmp_path):
    m, row = crystal_chain(tmp_path, {"select": "hits"})
    assert row["stable"] and row["eos_in_target"] and row["novel_after_relaxation"]  # CHGNet's hit
    assert row["alloy_ordering"] and row["parent_lattice"] == "bcc" and row["novel_disorder_aware"]
    # no Ni-Al phase is known: the hull is the elements', so E_hull is NiAl's formation energy (DFT about -0.6 to
    # -0.7 eV/atom), by each potential on its own hull
    assert row["sevennet_error"] == "" and row["sevennet_stable"] and -0.9 < row["sevennet_e_hull"] < -0.4
    assert abs(row["committee_e_hull_diff"]) < 0.15
    assert 110.0 < row["sevennet_eos_bulk_modulus_gpa"] < 220.0 and row["sevennet_eos_r2"] > 0.95
    assert row["committee_confirmed"] and row["sevennet_model"] == "7net-0"
    assert abs(row["committee_k_diff_gpa"]) < 60.0  # the two potentials' disagreement is on the row
    assert m["confirmed_by"].startswith("committee: CHGNet and SevenNet") and m["n_confirmed"] == 1
    assert m["n_committee_run"] == 1 and m["committee_stability_agreement"] == 1.0


def test_with_dft_entries_both_potentials_are_judged_on_the_dft_hull(tmp_path):
    """Known DFT entries of Ni and Al (MP2020-corrected energies, as a user's MP export brings them): each potential's
    energy of NiAl is placed on their hull, which then decides stability; the potentials' own hulls stay beside."""
    fcc = [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]]
    extra = pd.DataFrame({"id": ["mp-134", "mp-23"], "formula": ["Al", "Ni"],
                          "structure": [structure_to_record(Structure(Lattice.cubic(4.04), ["Al"] * 4, fcc)),
                                        structure_to_record(Structure(Lattice.cubic(3.52), ["Ni"] * 4, fcc))],
                          "dft_energy_per_atom": [-3.75, -5.78]})  # MP's PBE energies of fcc Al and Ni
    m, row = crystal_chain(tmp_path, {"select": "hits"}, extra)
    assert row["hull_reference"] == "DFT entries" and m["n_on_dft_hull"] == 1
    # the formation energy of NiAl (DFT about -0.6 to -0.7 eV/atom) by each potential against DFT's elements
    assert -0.9 < row["e_hull_dft"] < -0.4 and -0.9 < row["sevennet_e_hull_dft"] < -0.4
    assert row["stable"] and row["sevennet_stable"] and row["committee_confirmed"]
    assert abs(row["e_hull_dft"] - row["e_hull"]) < 0.3  # CHGNet's elements against DFT's


def test_without_sevenn_chgnet_stands_alone_and_says_so(tmp_path, monkeypatch):
    import invdesign.oracles.committee as committee

    monkeypatch.setattr(committee, "sevennet_available", lambda: False)
    m, row = crystal_chain(tmp_path, {})
    assert m["confirmed_by"].startswith("CHGNet alone (sevenn not installed") and m["n_confirmed"] == 1
    assert m["n_committee_run"] == 0 and pd.isna(row["committee_confirmed"])


@pytest.mark.slow
def test_a_shear_campaign_is_confirmed_by_both_potentials_elastic_shear_moduli(tmp_path):
    """A shear campaign on B2 NiAl (MP PBE G_VRH about 75 GPa; both potentials soften it) with a target of
    G >= 20 GPa: CHGNet's elastic G decides its hit, SevenNet's elastic G the committee's; no EOS runs; the two
    potentials' disagreement is on the row."""
    m, row = crystal_chain(tmp_path, {"select": "hits"}, prop="shear_modulus_gpa", target=20.0)
    assert row["shear_in_target"] and 20.0 < row["elastic_shear_modulus_gpa"] < 150.0
    assert row["sevennet_error"] == "" and 20.0 < row["sevennet_elastic_shear_modulus_gpa"] < 150.0
    assert pd.isna(row["eos_bulk_modulus_gpa"]) and pd.isna(row["sevennet_eos_bulk_modulus_gpa"])
    assert row["committee_g_diff_gpa"] == pytest.approx(row["sevennet_elastic_shear_modulus_gpa"]
                                                        - row["elastic_shear_modulus_gpa"])
    assert row["committee_confirmed"] and m["n_confirmed"] == 1 and "G in the target" in m["confirmed_by"]
