"""Plausibility of generated molecules (issue #36): N-F/O-F on aromatic atoms, strained small rings, bridgehead
double bonds (Bredt), a heavy-atom bound from the training data, 3D coordinates, and the SDF's coordinates tag."""

import pandas as pd
import pytest
from rdkit import Chem

from invdesign.chem.molecules import BREDT_ALERT, STRAIN_ALERTS, bredt_violation, check_molecules, structural_alerts
from invdesign.domains import molecules as dom

ORDINARY = ["CC(=O)N", "c1ccncc1", "C1CC1C=O", "C1CC2CCC1C2", "OCC1CC1", "N#CC1CC1O", "CC1=CC(=O)C1"]


def alerts_of(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert mol is not None, smiles  # every example is a molecule RDKit sanitises
    return structural_alerts(mol)


@pytest.mark.parametrize("smiles", ORDINARY + ["C1=CC2CCC1C2", "Fc1ccncc1", "FC(F)N", "FC(F)(F)OC"])
def test_ordinary_molecules_raise_no_alert(smiles):
    assert alerts_of(smiles) == []


@pytest.mark.parametrize("smiles", ["Fn1nn[nH]1", "CC(=O)c1nnn(F)n1", "FN(C)C", "COF", "Fn1cccc1"])
def test_n_f_and_o_f_bonds_are_caught_on_aromatic_atoms_too(smiles):
    assert "N-F / O-F bond" in alerts_of(smiles)


@pytest.mark.parametrize("smiles, rule", [
    ("O=C1C2CC=NC12", "sp2 carbon in a fused or spiro 3-membered ring"),  # cyclopropanone fused to a pyrroline
    ("C1=C2CC2C1", "sp2 carbon in a fused or spiro 3-membered ring"),  # bicyclo[3.1.0]hex-1-ene
    ("C=C1CC12CC2", "sp2 carbon in a fused or spiro 3-membered ring"),  # spiro methylenecyclopropane
    ("C1C2CC12", "two 3-membered rings sharing an atom"),  # bicyclo[1.1.0]butane
    ("C1CC12CC2", "two 3-membered rings sharing an atom"),  # spiropentane
    ("C1=CC=C1", "cyclobutadiene / azete"),
    ("CC1=NC=C1", "cyclobutadiene / azete"),
])
def test_strained_small_rings_are_caught_with_the_rule_named(smiles, rule):
    assert f"strained ring: {rule}" in alerts_of(smiles)


@pytest.mark.parametrize("smiles", ["C1=CC2CC2C1", "O=C1CC1", "C1=CC1", "O=C1C=CC1=O", "C1CC2CC2C1", "C1CC2(C1)CC2"])
def test_strain_rules_leave_unfused_or_larger_rings_alone(smiles):
    """The double bond away from the 3-membered ring, an unfused cyclopropanone or cyclopropene, a cyclobutenedione,
    bicyclo[3.1.0]hexane, a spiro 3/4 ring pair."""
    assert not [a for a in alerts_of(smiles) if a.startswith("strained ring")]


@pytest.mark.parametrize("smiles, violates", [
    ("C1CC2CCC1C2", False),  # norbornane
    ("C1=CC2CCC1C2", False),  # norbornene: the double bond is not at a bridgehead
    ("C1CC2=CCC1C2", True),  # bicyclo[2.2.1]hept-1-ene
    ("C1=C2CCC(CC2)C1", True),  # bicyclo[2.2.2]oct-1-ene (S = 6)
    ("C1CC2=CC(C1)C2", True),  # bicyclo[3.1.1]hept-1-ene
    ("C12=CCCC(C2)CCC1", False),  # bicyclo[3.3.1]non-1-ene: S = 7, isolable
    ("C1CCC2=C(C1)CCC2", False),  # fused (rings share a bond): a ring-fusion alkene is ordinary
    ("c1ccc2c(c1)CCC2", False),  # indane
    ("c1nc2[nH]c1CCC2", True),  # an imidazole bridged across 2,4 by three carbons: aromatic bridgeheads
])
def test_bredt_rule(smiles, violates):
    mol = Chem.MolFromSmiles(smiles)
    assert bredt_violation(mol) is violates
    assert (BREDT_ALERT in structural_alerts(mol)) is violates


def test_every_strain_rule_is_documented_and_its_smarts_parses():
    for name, (smarts, why) in STRAIN_ALERTS.items():
        assert name.startswith("strained ring: ") and Chem.MolFromSmarts(smarts) is not None and len(why) > 20


def test_check_molecules_names_the_rule_in_the_reject_reason():
    smiles = ["O=C1C2CC=NC12", "C1CC2=CCC1C2", "CC(=O)c1nnn(F)n1", *ORDINARY]
    out = check_molecules(pd.DataFrame({"smiles": smiles}), ["CCO"], min_heavy_atoms=3, alerts=True)
    assert out["passes"].tolist() == [False, False, False] + [True] * len(ORDINARY)
    assert out.loc[0, "reject_reason"] == ("structural alert: strained ring: sp2 carbon in a fused or spiro "
                                           "3-membered ring")
    assert out.loc[1, "reject_reason"] == f"structural alert: {BREDT_ALERT}"
    assert out.loc[2, "reject_reason"] == "structural alert: N-F / O-F bond"


def test_a_molecule_without_3d_coordinates_does_not_pass():
    """Cyclohexyne with the alerts off: RDKit sanitises it, ETKDG cannot place it in 3D."""
    out = check_molecules(pd.DataFrame({"smiles": ["C1CC#CCC1", "CC(=O)N"]}), ["CCO"], min_heavy_atoms=3, alerts=False)
    assert out["valid"].all() and out["alerts"].eq("").all()
    assert out["passes"].tolist() == [False, True] and out["stable"].tolist() == [False, True]
    assert out.loc[0, "reject_reason"] == "no 3D coordinates: RDKit ETKDG embedding failed"


QM9_LIKE = pd.DataFrame({"smiles": ["CCO", "CC(C)(C)C(C)(C)CO", "c1ccncc1", "CC(=O)N", "CC1CCCC(C)C1"]})  # <= 9


def test_generated_molecules_bigger_than_the_training_data_are_invalid():
    big = "C" * 20
    cands = pd.DataFrame({"smiles": [big, "CCCCCCCCCC", "CCCCCCCCC", "CCCCN"]})
    out = dom.filter_candidates(cands, QM9_LIKE, {"rare_group_share": None})
    assert out["passes"].tolist() == [False, False, True, True]
    assert out.loc[0, "reject_reason"] == ("invalid: 20 heavy atoms, more than 9 (the training data's largest "
                                           "molecule + filters.heavy_atom_margin)")
    assert not out.loc[1, "valid"] and out.loc[1, "n_heavy"] == 10
    # a margin widens the bound, null removes it
    wider = dom.filter_candidates(cands, QM9_LIKE, {"rare_group_share": None, "heavy_atom_margin": 1})
    assert wider["passes"].tolist() == [False, True, True, True]
    off = dom.filter_candidates(cands, QM9_LIKE, {"rare_group_share": None, "heavy_atom_margin": None})
    assert off["passes"].all()


def test_a_user_table_with_bigger_molecules_gets_its_own_bound():
    """The bound comes from the table the campaign trains on: its ``n_heavy`` column where the loader wrote one, else
    the SMILES."""
    user = pd.concat([QM9_LIKE, pd.DataFrame({"smiles": ["CCCCCCCCCCCCCCCC"]})], ignore_index=True)  # 16 atoms
    cands = pd.DataFrame({"smiles": ["C" * 15 + "O", "C" * 17]})
    out = dom.filter_candidates(cands, user, {"rare_group_share": None})
    assert out["passes"].tolist() == [True, False]
    assert out.loc[1, "reject_reason"].startswith("invalid: 17 heavy atoms, more than 16 ")
    with_column = user.assign(n_heavy=user["smiles"].map(lambda s: Chem.MolFromSmiles(s).GetNumAtoms()))
    assert dom.filter_candidates(cands, with_column, {"rare_group_share": None})["passes"].tolist() == [True, False]


def test_sdf_records_say_where_their_coordinates_come_from(tmp_path):
    from invdesign.chem.geometry import embed

    xtb_like = Chem.MolToMolBlock(embed("CC(=O)N"))  # a 3D mol block as the xTB oracle hands it over
    cands = pd.DataFrame({"smiles": ["CC(=O)N", "OCC1CC1", "C1CC#CCC1"], "final_rank": [1, 2, 3],
                          "molblock": [xtb_like, None, None], "xtb_converged": [True, None, None],
                          "sa_score": [1.2, 2.5, 5.1], "alerts": ["", "", "triple bond in a ring"]})
    assert dom.write_sdf(cands, str(tmp_path / "c.sdf")) == 3
    mols = list(Chem.SDMolSupplier(str(tmp_path / "c.sdf"), removeHs=False))
    assert [m.GetProp("coordinates") for m in mols] == [
        "GFN2-xTB optimised", "RDKit ETKDG + MMFF94", "2D only (RDKit ETKDG found no 3D coordinates)"]
    assert [m.GetConformer().Is3D() for m in mols] == [True, True, False]
    assert mols[1].GetProp("sa_score") == "2.5" and mols[2].GetProp("alerts") == "triple bond in a ring"
    unconverged = cands.head(1).assign(xtb_converged=False)
    dom.write_sdf(unconverged, str(tmp_path / "u.sdf"))
    assert next(iter(Chem.SDMolSupplier(str(tmp_path / "u.sdf")))).GetProp("coordinates").startswith(
        "GFN2-xTB optimised (not converged")
