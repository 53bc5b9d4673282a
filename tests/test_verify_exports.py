"""xTB oracle, calibration, the oracle rules (batches -> checked -> verified) and the chemist-facing exports
(SDF re-read by RDKit, CIF zip by pymatgen)."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from invdesign.oracles import measured_by
from invdesign.chem.crystals import structure_to_record
from invdesign.chem.descriptors import nearest_neighbours, qed_and_sa
from invdesign.errors import InvdesignError
from invdesign.oracles.xtb import apply_calibration, fit_calibration, target_probability, xtb_verify
from invdesign.pipeline.verify import export_structures, oracle_batches, oracle_merge, run_oracle_chain, verify

CRYSTAL = {"domain": "crystals", "target": {"min": 300}, "property_column": "bulk_modulus_gpa",
           "property_kind": None}


def test_xtb_methanol_gap_densities_and_invariance():
    a = xtb_verify("CO", seed=0)
    assert a["xtb_ok"] and a["xtb_connectivity_ok"] and a["xtb_converged"] and a["oracle_error"] == ""
    assert 8 < a["xtb_gap_ev"] < 20
    for key in ("xtb_homo_density", "xtb_lumo_density"):
        assert len(a[key]) == 2 and sum(a[key]) == pytest.approx(1.0, abs=1e-3)
        assert min(a[key]) > -0.05  # populations, not signed coefficients
    # the HOMO of methanol sits mostly on oxygen (lone pair)
    assert a["xtb_homo_density"][1] > a["xtb_homo_density"][0]
    # another atom order and another starting orientation give the same atom-resolved answer
    b = xtb_verify("OC", seed=7)
    assert b["xtb_gap_ev"] == pytest.approx(a["xtb_gap_ev"], abs=0.05)
    assert b["xtb_homo_density"][::-1] == pytest.approx(a["xtb_homo_density"], abs=0.02)
    assert Chem.MolFromMolBlock(a["molblock"], removeHs=False).GetNumAtoms() == 6


def test_xtb_failure_after_the_single_point_is_an_error_row(monkeypatch):
    """A failure in the orbital analysis (after the single point ran) names its stage; nothing raises."""
    import invdesign.oracles.xtb as xtb

    def broken(*args, **kwargs):
        raise IndexError("no occupied orbital")

    monkeypatch.setattr(xtb, "_atom_projection", broken)
    out = xtb_verify("CCO")
    assert out["xtb_ok"] is False and out["oracle_error"].startswith("orbital analysis failed: IndexError")


def test_calibration_follows_the_data_inside_its_range_and_gives_no_estimate_outside():
    x = np.linspace(1, 10, 30)
    fit = fit_calibration(x, 0.5 * x + 4.0 + 0.01 * np.sin(x))
    assert fit["linear_slope"] == pytest.approx(0.5, abs=0.01) and fit["r"] > 0.99
    assert apply_calibration([2.0], fit)[0] == pytest.approx(5.0, abs=0.05)
    # outside the calibration molecules' xTB range there is no estimate (a line would extrapolate)
    assert np.isnan(apply_calibration([0.5, 10.5], fit)).all()
    p = target_probability(np.array([4.5, 6.0, np.nan]), fit, {"window": [4.0, 5.0]})
    assert p[0] == pytest.approx(1.0) and p[1] == 0.0 and np.isnan(p[2])


def test_calibration_does_not_pull_a_low_xtb_value_into_a_window_as_a_line_does():
    """Regression to the mean (issue #23): noisy calibration data give a line a small slope, so an xTB gap far below
    the calibration molecules' range (a cumulated heteroatom chain at 0.6 eV) lands inside a 4-5 eV window. The
    monotone calibration gives it no estimate, no chance of being in the window, and the DFT tier skips it."""
    rng = np.random.default_rng(0)
    dft = rng.uniform(4.0, 9.0, 300)
    xtb = dft - 2.0 + rng.normal(0, 1.2, 300)  # xTB gaps: lower and noisy, as GFN2 against B3LYP
    fit = fit_calibration(xtb, dft)
    far_low = np.min(xtb) - 1.0
    line = fit["linear_slope"] * far_low + fit["linear_intercept"]
    window = {"window": [line - 0.5, line + 0.5]}
    assert fit["linear_slope"] < 0.8 and line > np.min(dft) - 1.0  # the line's estimate stays near the data
    assert np.isnan(apply_calibration([far_low], fit)[0])
    assert np.isnan(target_probability(apply_calibration([far_low], fit), fit, window)[0])
    # inside the range it follows the data: the estimates of the lowest tenth of xTB values are low gaps
    low = xtb < np.quantile(xtb, 0.1)
    assert np.mean(apply_calibration(xtb[low], fit)) == pytest.approx(np.mean(dft[low]), abs=0.4)
    # out-of-fold residuals of (nearly) every molecule, of the size of the noise put in
    assert len(fit["residuals"]) > 250 and 0.8 < fit["residual_std_ev"] < 1.6


def test_descriptors():
    qed, sa = qed_and_sa(["CCO", "not smiles"])
    assert 0 < qed[0] < 1 and 1 <= sa[0] <= 10 and np.isnan(qed[1])
    names, sims = nearest_neighbours(["CCO"], ["CCC", "CCO", "c1ccccc1"])
    assert names == ["CCO"] and sims[0] == pytest.approx(1.0)


def run_oracle(tmp_path, params: dict, candidates: pd.DataFrame, known: pd.DataFrame, prepared: dict) -> dict:
    """The oracle rules as the workflow chains them: batches -> checked -> merged -> confirmed -> verified
    (``v.parquet`` / ``v.csv`` are the verified tables)."""
    cands, data, prep = tmp_path / "c.parquet", tmp_path / "d.parquet", tmp_path / "prepared.json"
    candidates.to_parquet(cands)
    known.to_parquet(data)
    prep.write_text(json.dumps(prepared))
    m = run_oracle_chain(campaign="t", **params, candidates=str(cands), known=str(data), prepared=str(prep),
                         folder=str(tmp_path / "oracle"))
    for suffix in ("parquet", "csv"):
        (tmp_path / "oracle" / f"candidates_verified.{suffix}").rename(tmp_path / f"v.{suffix}")
    return m


def test_xtb_oracle_verifies_the_top_molecules_and_the_sdf_reads_back(tmp_path):
    cands = pd.DataFrame({"rank": [1, 2, 3], "campaign": "t", "smiles": ["CCO", "C=CC=O", "CC#N"],
                          "predicted_property": [7.0, 5.5, 8.0], "passes": [True, True, False]})
    data = pd.DataFrame({"id": ["a", "b"], "smiles": ["CCC", "CCN"], "property": [8.0, 7.5], "split": "train"})
    calib = {"applicable": True, "xtb_quantity": "xtb_gap_ev", **fit_calibration(np.linspace(0.5, 16, 20),
                                                                                0.5 * np.linspace(0.5, 16, 20) + 4.3)}
    params = {"domain": "molecules", "oracle": {"top_k": 1, "batch_size": 1, "max_steps": 200},
              "target": {"window": [5.0, 9.0]}, "property_column": "gap_ev", "property_kind": None}
    m = run_oracle(tmp_path, params, cands, data, calib)
    assert m["n_candidates"] == 2 and m["n_xtb_run"] == 1 and m["n_xtb_verified"] == 1 and m["property_measured"]
    export_structures(domain="molecules", verified=str(tmp_path / "v.parquet"), candidates=str(tmp_path / "c.parquet"),
                      export=str(tmp_path / "v.sdf"))
    mols = [mol for mol in Chem.SDMolSupplier(str(tmp_path / "v.sdf"), removeHs=False)]
    assert len(mols) == 2 and all(mol is not None and mol.GetNumConformers() == 1 for mol in mols)
    assert mols[0].GetConformer().Is3D()
    first = mols[0]
    assert first.GetProp("smiles") == "CCO" and float(first.GetProp("xtb_gap_ev")) > 0
    assert len(json.loads(first.GetProp("xtb_homo_density"))) == 3
    table = pd.read_csv(tmp_path / "v.csv")
    assert table["final_rank"].tolist() == [1, 2] and {"qed", "sa_score", "nearest_known"} <= set(table.columns)
    assert table.loc[0, "xtb_calibrated"] == pytest.approx(0.5 * table.loc[0, "xtb_gap_ev"] + 4.3, abs=0.01)
    with pytest.raises(InvdesignError, match="exports candidates.sdf"):
        export_structures(domain="molecules", verified=str(tmp_path / "v.parquet"),
                          candidates=str(tmp_path / "c.parquet"), export=str(tmp_path / "v_cifs.zip"))


def test_a_property_no_oracle_measures_is_said_so_not_judged_by_another(tmp_path):
    """A user's property (no property_kind) is not calibrated onto the xTB gap: the table says it was not measured."""
    cands = pd.DataFrame({"rank": [1], "campaign": "t", "smiles": ["CCO"], "predicted_property": [1.0],
                          "passes": [True]})
    data = pd.DataFrame({"id": ["a"], "smiles": ["CCC"], "property": [1.0], "split": "train"})
    params = {"domain": "molecules", "oracle": {"top_k": 0}, "target": {"min": 0.5},
              "property_column": "logp", "property_kind": None}
    from invdesign.pipeline.verify import make_oracle

    prepared = make_oracle(**(params | {"target": None})).prepare(data)
    assert prepared["applicable"] is False and "no measure of logp" in prepared["reason"]
    m = run_oracle(tmp_path, params, cands, data, prepared)
    table = pd.read_parquet(tmp_path / "v.parquet")
    assert not m["property_measured"] and table["xtb_in_target"].isna().all()
    assert table["property_check"].iloc[0].startswith("not measured: the xtb oracle has no measure of logp")


def test_cif_zip_reads_back_with_pymatgen(tmp_path):
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cands = pd.DataFrame({"rank": [1, 2], "formula": ["NaCl", "NaCl"], "passes": [True, False],
                          "structure": [structure_to_record(s)] * 2})
    cands.to_parquet(tmp_path / "c.parquet")
    cands.head(0).to_parquet(tmp_path / "v.parquet")
    export_structures(domain="crystals", verified=str(tmp_path / "v.parquet"), candidates=str(tmp_path / "c.parquet"),
                      export=str(tmp_path / "c_cifs.zip"))
    with zipfile.ZipFile(tmp_path / "c_cifs.zip") as zf:
        assert zf.namelist() == ["README.txt", "0001_NaCl.cif"]
        back = Structure.from_str(zf.read("0001_NaCl.cif").decode(), fmt="cif")
        readme = zf.read("README.txt").decode()
    assert back.composition.reduced_formula == "NaCl" and back.matches(s)
    assert "UNRELAXED" in readme and "ranked by the predictor before any check" in readme and "1 cells" in readme


def _relaxed_cells():
    """Rocksalt MgO (primitive cell, perturbed off its symmetry by a few mA), B2 NiAl, L1_0 CuAu (P4/mmm)."""
    from pymatgen.core import Lattice, Structure

    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"],
                                    [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    mgo.perturb(0.003, min_distance=0.001)
    nial = Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cuau = Structure(Lattice.tetragonal(2.80, 3.70), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return mgo, nial, cuau


def _verified(confirmed):
    """A verified table of four rows: three relaxed cells (final_rank 1-3) and a failed relaxation (rank 4)."""
    cells = _relaxed_cells()
    return pd.DataFrame({
        "final_rank": [1, 2, 3, 4], "formula": [c.composition.reduced_formula for c in cells] + ["Fe3Al"],
        "relaxed_cif": [c.to(fmt="cif") for c in cells] + [""],
        "confirmed": confirmed, "confirmed_by": "committee: CHGNet and SevenNet both stable",
        "stable": [True, True, False, False], "e_hull": [0.0, 0.012, 0.2, np.nan],
        "committee_confirmed": pd.array([True, False, None, None], dtype="boolean"),
        "alloy_ordering": pd.array([False, True, True, None], dtype="boolean"),
        "parent_lattice": ["", "bcc", "fcc", ""],
        "eos_bulk_modulus_gpa": [305.0, 160.5, np.nan, np.nan],
        "sevennet_eos_bulk_modulus_gpa": [298.2, 158.0, np.nan, np.nan]})


def _export(tmp_path, table):
    from invdesign.pipeline.verify import export_relaxed

    table.to_parquet(tmp_path / "v.parquet")
    paths = {"confirmed": str(tmp_path / "confirmed.zip"), "checked": str(tmp_path / "checked.zip")}
    n = export_relaxed(**CRYSTAL, oracle={}, verified=str(tmp_path / "v.parquet"), **paths)
    zips = {}
    for key, path in paths.items():
        with zipfile.ZipFile(path) as zf:
            zips[key] = {name: zf.read(name).decode() for name in zf.namelist()}
    return n, zips


def test_relaxed_zips_hold_symmetrised_cells_named_by_final_rank_and_space_group(tmp_path):
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from invdesign.chem.symmetry import SYMPREC

    n, zips = _export(tmp_path, _verified([True, False, False, False]))
    assert n == (1, 3)
    assert list(zips["confirmed"]) == ["README.txt", "1_MgO_Fm-3m.cif"]
    assert list(zips["checked"]) == ["README.txt", "1_MgO_Fm-3m.cif", "2_AlNi_Pm-3m.cif", "3_CuAu_P4_mmm.cif"]
    for name, number in (("1_MgO_Fm-3m.cif", 225), ("2_AlNi_Pm-3m.cif", 221), ("3_CuAu_P4_mmm.cif", 123)):
        text = zips["checked"][name]
        assert f"symprec {SYMPREC:g} A" in text.splitlines()[1] and text.startswith("# invdesign: ")
        assert f"data_{name.split('_')[0]}_{name.split('_')[1]}\n" in text
        back = Structure.from_str(text, fmt="cif")
        # symmetrised: the space group holds at a tolerance ten times tighter than the one it was found at
        assert SpacegroupAnalyzer(back, symprec=SYMPREC / 10).get_space_group_number() == number
        assert f"_symmetry_Int_Tables_number   {number}" in text
    assert zips["confirmed"]["1_MgO_Fm-3m.cif"] == zips["checked"]["1_MgO_Fm-3m.cif"]
    mgo = Structure.from_str(zips["checked"]["1_MgO_Fm-3m.cif"], fmt="cif")
    assert len(mgo) == 8  # the conventional cell of the 2-atom primitive one
    for readme in (zips["confirmed"]["README.txt"], zips["checked"]["README.txt"]):
        assert "CHGNet-relaxed" in readme and f"symprec {SYMPREC:g} A, angle_tolerance 5 deg" in readme
        assert "Confirmed by: committee: CHGNet and SevenNet both stable." in readme
        line = next(x for x in readme.splitlines() if x.startswith("1_MgO_Fm-3m.cif: "))
        assert line == ("1_MgO_Fm-3m.cif: rank 1, MgO, Fm-3m (225); confirmed yes, stable yes, e_hull +0.000 eV/atom, "
                        "committee_confirmed yes, alloy_ordering no, parent_lattice none, "
                        "CHGNet bulk_modulus_gpa 305.0 GPa, SevenNet bulk_modulus_gpa 298.2 GPa")
    checked = zips["checked"]["README.txt"].splitlines()
    assert any(x.startswith("2_AlNi_Pm-3m.cif: rank 2, AlNi, Pm-3m (221); confirmed no,") and
               "alloy_ordering yes, parent_lattice bcc" in x for x in checked)
    assert any(x.startswith("3_CuAu_P4_mmm.cif: rank 3, CuAu, P4/mmm (123);") and "committee_confirmed not run" in x
               and "CHGNet bulk_modulus_gpa not run" in x for x in checked)
    assert not any("Fe3Al" in x for x in checked)  # its relaxation failed: no cell to hand over


def test_relaxed_zips_without_a_confirmed_hit_still_exist_and_say_so(tmp_path):
    n, zips = _export(tmp_path, _verified([False] * 4))
    assert n == (0, 3)
    assert list(zips["confirmed"]) == ["README.txt"]
    assert zips["confirmed"]["README.txt"].endswith("\nNo confirmed hit: this zip holds only this README.\n")
    n, zips = _export(tmp_path, _verified([False] * 4).head(0))  # an empty run: nothing checked either
    assert n == (0, 0) and list(zips["checked"]) == ["README.txt"]
    assert "No cell was relaxed" in zips["checked"]["README.txt"]


def test_a_confirmed_row_without_a_relaxed_cell_is_an_error_and_molecules_have_no_relaxed_zips(tmp_path):
    with pytest.raises(InvdesignError, match=r"confirmed rows without a relaxed cell \(final_rank \[4\]\)"):
        _export(tmp_path, _verified([True, False, False, True]))
    from invdesign.domains import get_domain

    with pytest.raises(InvdesignError, match="molecules campaign has no files of relaxed structures"):
        get_domain("molecules").write_relaxed_exports(pd.DataFrame(), "c.zip", "k.zip")


def test_optional_xtb_orbital_features():
    from invdesign.domains import molecules as dom
    from invdesign.featurize.molecule import NODE_FEATURES

    df = pd.DataFrame({"smiles": ["CO", "C=CC=O"], "property": [1.0, 2.0], "mulliken": [None, None]})
    graphs, meta = dom.featurize(df, {"xtb_orbitals": True})
    i_h, i_l, i_ok = (NODE_FEATURES.index(n) for n in ("xtb_homo_density", "xtb_lumo_density",
                                                       "xtb_orbitals_available"))
    for g in graphs:
        assert g.x[:, i_ok].min() == 1
        assert float(g.x[:, i_h].sum()) == pytest.approx(1.0, abs=1e-3)
        assert float(g.x[:, i_l].sum()) == pytest.approx(1.0, abs=1e-3)
    # QM-derived features are hidden from the candidate-scoring predictor
    assert {i_h, i_l, i_ok} <= set(meta["sample_unavailable_node_features"])
    plain, _ = dom.featurize(df, {})
    assert plain[0].x[:, i_ok].max() == 0


def batches(tmp_path, oracle: dict, cands: pd.DataFrame, **params) -> list[pd.DataFrame]:
    cands.to_parquet(tmp_path / "c.parquet")
    n = oracle_batches(**(CRYSTAL | params), oracle=oracle, candidates=str(tmp_path / "c.parquet"), feedback=[],
                       batches=str(tmp_path / "b"))
    files = sorted((tmp_path / "b").glob("batch_*.parquet"))
    assert n == len(files)
    return [pd.read_parquet(f) for f in files]


@pytest.mark.parametrize("domain", ["molecules", "crystals"])
@pytest.mark.parametrize("top_k, batch_size, expected", [(3, 2, [2, 1]), (None, 2, [2, 2, 1]), (0, 2, [])])
def test_oracle_batches_split_the_best_passing_candidates(tmp_path, domain, top_k, batch_size, expected):
    """Every oracle fans out the same way: the best passing candidates in batch_size files."""
    cands = pd.DataFrame({"rank": range(1, 8), "passes": [True, False, True, True, True, False, True],
                          "formula": list("ABCDEFG"), "smiles": "C"})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "batch_009.parquet").write_text("stale")  # from an earlier run: removed
    parts = batches(tmp_path, {"top_k": top_k, "batch_size": batch_size}, cands, domain=domain,
                    property_column="gap_ev" if domain == "molecules" else "bulk_modulus_gpa")
    assert [len(p) for p in parts] == expected
    ranks = [r for p in parts for r in p["rank"]]
    assert ranks == [1, 3, 4, 5, 7][: sum(expected)]  # passing ones only, best first


def merged(tmp_path, params: dict) -> dict:
    """The oracle's verdicts of the checked batch b0.parquet merged, confirmed (no confirming tier here) and
    written to v.parquet, as rules oracle_merge and verify do."""
    oracle_merge(**params, checked=[str(tmp_path / "b0.parquet")], candidates=str(tmp_path / "c.parquet"),
                 known=str(tmp_path / "d.parquet"), prepared=str(tmp_path / "p.json"),
                 table=str(tmp_path / "t.parquet"), tier_metrics=str(tmp_path / "t.json"))
    return verify(campaign="t", **params, table=str(tmp_path / "t.parquet"), tier_metrics=str(tmp_path / "t.json"),
                  confirmed=[], csv=str(tmp_path / "v.csv"), parquet=str(tmp_path / "v.parquet"),
                  metrics=str(tmp_path / "m.json"))


def test_chgnet_verdicts_rank_novel_hits_above_known_ones(tmp_path):
    """Stable and on target first; among those, a cell that relaxed onto a known phase goes below novel ones."""
    checked = pd.DataFrame({"rank": [1, 2, 3, 4], "predicted_property": [350.0, 340.0, 330.0, 320.0],
                            "distance_to_target": 0.0, "volume_scale": 1.0, "relaxed_cif": "",
                            "chgnet_energy_per_atom": -8.0, "e_hull": [0.0, 0.0, 0.3, 0.0],
                            "stable": [True, True, False, True], "eos_bulk_modulus_gpa": [320.0, 310.0, 400.0, 200.0],
                            "relax_converged": True, "oracle_error": "", "matches_known": ["mp-1", "", "", ""],
                            "novel_after_relaxation": [False, True, True, True]})
    checked.to_parquet(tmp_path / "b0.parquet")
    checked[["rank"]].assign(passes=True).to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"id": ["x"]}).to_parquet(tmp_path / "d.parquet")
    (tmp_path / "p.json").write_text("{}")
    m = merged(tmp_path, CRYSTAL | {"oracle": {"e_hull_max": 0.1, "committee": {"top_k": 0}}})
    out = pd.read_parquet(tmp_path / "v.parquet")
    assert out["rank"].tolist() == [2, 1, 4, 3]
    assert (m["n_stable_eos_in_target"], m["n_sun_eos_in_target"], m["n_relaxed_onto_known"]) == (2, 1, 1)
    # the summary leads with what the highest tier confirms: here (no committee) CHGNet's stable, on-target, novel cells
    assert list(m)[:3] == ["campaign", "confirmed_by", "n_confirmed"] and m["n_confirmed"] == 1
    assert m["confirmed_by"] == "CHGNet alone (committee.top_k is 0)"
    # a user property the registry does not know: the EOS bulk modulus does not judge it
    m = merged(tmp_path, CRYSTAL | {"property_column": "toughness", "oracle": {}})
    out = pd.read_parquet(tmp_path / "v.parquet")
    assert not m["property_measured"] and m["n_stable_eos_in_target"] == 0 and out["eos_in_target"].isna().all()
    assert out["property_check"].iloc[0].startswith("not measured: the chgnet oracle has no measure of toughness")


def test_a_shear_campaign_is_judged_by_the_elastic_shear_modulus_not_the_eos(tmp_path):
    """The verdict of a shear-modulus campaign (target G >= 150 GPa) follows the elastic tensor's VRH shear
    modulus; the EOS bulk modulus (here in the target where G is not, and the reverse) must not decide it. A
    registry entry that routes shear_modulus_gpa to another column fails this test."""
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.oracles.crystal import ChgnetOracle
    from invdesign.properties import PROPERTIES

    checked = pd.DataFrame({"rank": [1, 2, 3], "predicted_property": [200.0, 190.0, 180.0],
                            "distance_to_target": 0.0, "volume_scale": 1.0, "relaxed_cif": "",
                            "chgnet_energy_per_atom": -8.0, "e_hull": 0.0, "stable": True,
                            "eos_bulk_modulus_gpa": [400.0, 100.0, np.nan], "relax_converged": True,
                            "elastic_shear_modulus_gpa": [90.0, 170.0, 160.0], "elastic_bulk_modulus_gpa": 250.0,
                            "vickers_hardness_gpa": [5.0, 21.0, 19.0], "elastic_r2": 0.99, "oracle_error": "",
                            "matches_known": "", "novel_after_relaxation": True})
    checked.to_parquet(tmp_path / "b0.parquet")
    checked[["rank"]].assign(passes=True).to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"id": ["x"]}).to_parquet(tmp_path / "d.parquet")
    (tmp_path / "p.json").write_text("{}")
    assert measured_by("shear_modulus_gpa") == {"chgnet": "elastic_shear_modulus_gpa"}
    assert ChgnetOracle(ChgnetOracleSettings(), {"min": 150.0}, PROPERTIES["shear_modulus_gpa"]).eos_for == "none"
    shear = CRYSTAL | {"property_column": "shear_modulus_gpa", "target": {"min": 150.0},
                       "oracle": {"committee": {"top_k": 0}}}
    m = merged(tmp_path, shear)
    out = pd.read_parquet(tmp_path / "v.parquet")
    assert m["property_measured"] and m["n_stable_shear_in_target"] == 2 and m["n_confirmed"] == 2
    assert out["rank"].tolist() == [2, 3, 1] and out["shear_in_target"].tolist() == [True, True, False]
    # the hardness campaign (Chen H_V >= 20 GPa) is judged by its own column
    m = merged(tmp_path, shear | {"property_column": "vickers_hardness_gpa", "target": {"min": 20.0}})
    out = pd.read_parquet(tmp_path / "v.parquet")
    assert m["n_stable_hardness_in_target"] == 1 and out["rank"].tolist()[0] == 2


def test_oracle_batches_one_cell_per_formula(tmp_path):
    cands = pd.DataFrame({"rank": range(1, 7), "formula": ["TcRh", "MoN", "TcRh", "IrW", "MoN", "NbIr5"],
                          "passes": [True, True, True, False, True, True]})
    oracle = {"top_k": 3, "batch_size": 10, "one_per_formula": True}
    (picked,) = batches(tmp_path, oracle, cands)
    assert picked["rank"].tolist() == [1, 2, 6]  # best cell of each formula, failing IrW skipped
    (picked,) = batches(tmp_path, oracle | {"one_per_formula": False}, cands)
    assert picked["rank"].tolist() == [1, 2, 3]


def test_oracle_batches_ranked_by_earlier_oracle_verdicts(tmp_path):
    """With oracle.feedback_from the CHGNet check starts from the chemistry earlier verdicts rewarded, even
    where the predictor ranks it lower; bad feedback tables get one-line errors naming the file."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):  # Ir alloys: stable and hard; Mo alloys: stable and soft; B compounds: unstable
        kind = ["Ir", "Mo", "B"][i % 3]
        partner = ["Nb", "Ta", "V"][i // 3 % 3]
        stable = kind != "B" and rng.random() < 0.8
        k = (330 if kind == "Ir" else 220) + rng.normal(0, 10)
        rows.append({"formula": f"{partner}{kind}{1 + i % 4}", "predicted_property": 320 + rng.normal(0, 15),
                     "stable": stable, "eos_bulk_modulus_gpa": k if stable else np.nan})
    pd.DataFrame(rows).to_parquet(tmp_path / "earlier.parquet")
    pd.DataFrame(rows).astype({"stable": str}).to_csv(tmp_path / "earlier.csv", index=False)  # verdicts as text
    cands = pd.DataFrame({"rank": [1, 2, 3, 4, 5],
                          "formula": ["MoB2", "Mo3Ti", "TiIr3", "ZrIr", rows[0]["formula"]],
                          "predicted_property": [360.0, 350.0, 330.0, 320.0, 400.0], "passes": True})
    oracle = {"top_k": 3, "batch_size": 10, "feedback_from": [str(tmp_path / "earlier.parquet")]}
    (picked,) = batches(tmp_path, oracle, cands)
    assert picked["rank"].tolist()[:2] == [3, 4]  # the Ir cells first, ahead of the predictor's favourites
    assert 5 not in picked["rank"].tolist()  # its formula was verified already
    assert picked["feedback_score"].is_monotonic_decreasing and (picked["feedback_p_stable"] > 0).all()
    assert picked["feedback_expected_gpa"].iloc[0] > 290
    (every,) = batches(tmp_path, oracle | {"top_k": None}, cands)
    p_stable = every.set_index("formula")["feedback_p_stable"]
    assert p_stable["MoB2"] < 0.5 * p_stable["Mo3Ti"]  # boron compounds were unstable
    (from_csv,) = batches(tmp_path, oracle | {"top_k": None, "feedback_from": [str(tmp_path / "earlier.csv")]}, cands)
    assert np.allclose(from_csv.set_index("formula")["feedback_p_stable"][p_stable.index], p_stable)
    with pytest.raises(InvdesignError, match="missing.parquet not found"):
        batches(tmp_path, oracle | {"feedback_from": [str(tmp_path / "missing.parquet")]}, cands)
    pd.DataFrame(rows).drop(columns="stable").to_csv(tmp_path / "nostable.csv", index=False)
    with pytest.raises(InvdesignError, match="nostable.csv lacks column"):
        batches(tmp_path, oracle | {"feedback_from": [str(tmp_path / "nostable.csv")]}, cands)
    pd.DataFrame(rows).assign(stable=False).to_csv(tmp_path / "unstable.csv", index=False)
    with pytest.raises(InvdesignError, match="at least 2 stable"):
        batches(tmp_path, oracle | {"feedback_from": [str(tmp_path / "unstable.csv")]}, cands)


def test_a_cell_without_a_space_group_is_written_as_relaxed_in_p1_and_named_so(tmp_path, monkeypatch):
    from pymatgen.core import Structure

    import invdesign.chem.symmetry as symmetry

    monkeypatch.setattr(symmetry, "space_group", lambda structure: None)  # spglib giving up (a degenerate cell)
    n, zips = _export(tmp_path, _verified([False] * 4))
    assert n == (0, 3) and "1_MgO_P1.cif" in zips["checked"]
    text = zips["checked"]["1_MgO_P1.cif"]
    assert f"# no space group found by spglib at symprec {symmetry.SYMPREC:g} A" in text
    assert len(Structure.from_str(text, fmt="cif")) == 2  # the relaxed primitive cell as it was
    assert "1_MgO_P1.cif: rank 1, MgO, no space group (P1);" in zips["checked"]["README.txt"]
