"""xTB oracle, calibration, and the chemist-facing exports (SDF re-read by RDKit, CIF zip by pymatgen)."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from invdesign.chem.crystals import structure_to_record
from invdesign.chem.descriptors import nearest_neighbours, qed_and_sa
from invdesign.oracles.xtb import apply_calibration, fit_calibration, xtb_verify
from invdesign.pipeline.verify import package_crystals, target_probability, verify_molecules


def test_xtb_methanol_gap_densities_and_invariance():
    a = xtb_verify("CO", seed=0)
    assert a["xtb_ok"] and a["xtb_connectivity_ok"] and a["xtb_converged"]
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


def test_calibration_fit_recovers_a_line():
    x = np.linspace(1, 10, 30)
    fit = fit_calibration(x, 0.5 * x + 4.0 + 0.01 * np.sin(x))
    assert fit["slope"] == pytest.approx(0.5, abs=0.01) and fit["intercept"] == pytest.approx(4.0, abs=0.05)
    assert fit["r"] > 0.99 and apply_calibration([2.0], fit)[0] == pytest.approx(5.0, abs=0.05)
    p = target_probability([4.5, 6.0], 0.5, {"window": [4.0, 5.0]})
    assert p[0] == pytest.approx(0.6827, abs=1e-3) and p[1] < 0.03


def test_descriptors():
    qed, sa = qed_and_sa(["CCO", "not smiles"])
    assert 0 < qed[0] < 1 and 1 <= sa[0] <= 10 and np.isnan(qed[1])
    names, sims = nearest_neighbours(["CCO"], ["CCC", "CCO", "c1ccccc1"])
    assert names == ["CCO"] and sims[0] == pytest.approx(1.0)


def test_verify_molecules_writes_sdf_that_rdkit_reads(tmp_path):
    cands = pd.DataFrame({"rank": [1, 2, 3], "campaign": "t", "smiles": ["CCO", "C=CC=O", "CC#N"],
                          "predicted_property": [7.0, 5.5, 8.0], "passes": [True, True, False]})
    cands.to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"id": ["a", "b"], "smiles": ["CCC", "CCN"], "property": [8.0, 7.5],
                  "split": "train"}).to_parquet(tmp_path / "d.parquet")
    calib = {"applicable": True, "xtb_quantity": "xtb_gap_ev", "slope": 0.5, "intercept": 4.3,
             "residual_std_ev": 0.6}
    (tmp_path / "cal.json").write_text(json.dumps(calib))
    camp = {"oracle": {"top_k": 1, "seed": 0, "fmax": 0.05, "max_steps": 200}, "target": {"window": [5.0, 9.0]}}
    m = verify_molecules("t", camp, str(tmp_path / "c.parquet"), str(tmp_path / "d.parquet"), str(tmp_path / "cal.json"),
                         str(tmp_path / "v.csv"), str(tmp_path / "v.parquet"), str(tmp_path / "v.sdf"),
                         str(tmp_path / "m.json"))
    assert m["n_candidates"] == 2 and m["n_xtb_run"] == 1 and m["n_xtb_verified"] == 1
    mols = [mol for mol in Chem.SDMolSupplier(str(tmp_path / "v.sdf"), removeHs=False)]
    assert len(mols) == 2 and all(mol is not None and mol.GetNumConformers() == 1 for mol in mols)
    assert mols[0].GetConformer().Is3D()
    first = mols[0]
    assert first.GetProp("smiles") == "CCO" and float(first.GetProp("xtb_gap_ev")) > 0
    assert len(json.loads(first.GetProp("xtb_homo_density"))) == 3
    table = pd.read_csv(tmp_path / "v.csv")
    assert table["final_rank"].tolist() == [1, 2] and {"qed", "sa_score", "nearest_known"} <= set(table.columns)
    assert table.loc[0, "xtb_calibrated"] == pytest.approx(0.5 * table.loc[0, "xtb_gap_ev"] + 4.3)


def test_cif_zip_reads_back_with_pymatgen(tmp_path):
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cands = pd.DataFrame({"rank": [1, 2], "formula": ["NaCl", "NaCl"], "passes": [True, False],
                          "structure": [structure_to_record(s)] * 2})
    cands.to_parquet(tmp_path / "c.parquet")
    assert package_crystals(str(tmp_path / "c.parquet"), str(tmp_path / "c.zip")) == 1
    with zipfile.ZipFile(tmp_path / "c.zip") as zf:
        assert zf.namelist() == ["0001_NaCl.cif"]
        back = Structure.from_str(zf.read("0001_NaCl.cif").decode(), fmt="cif")
    assert back.composition.reduced_formula == "NaCl" and back.matches(s)


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


@pytest.mark.parametrize("top_k, batch_size, expected", [(3, 2, [2, 1]), (None, 2, [2, 2, 1]), (0, 2, [])])
def test_crystal_batches_split_the_best_passing_candidates(tmp_path, top_k, batch_size, expected):
    from invdesign.pipeline.verify import crystal_batches

    cands = pd.DataFrame({"rank": range(1, 8), "passes": [True, False, True, True, True, False, True]})
    cands.to_parquet(tmp_path / "c.parquet")
    (tmp_path / "batches").mkdir()
    (tmp_path / "batches" / "batch_009.parquet").write_text("stale")  # from an earlier run: removed
    n = crystal_batches({"oracle": {"top_k": top_k, "batch_size": batch_size}}, str(tmp_path / "c.parquet"),
                        str(tmp_path / "batches"))
    files = sorted((tmp_path / "batches").glob("batch_*.parquet"))
    assert n == len(expected) == len(files)
    parts = [pd.read_parquet(f) for f in files]
    assert [len(p) for p in parts] == expected
    ranks = [r for p in parts for r in p["rank"]]
    assert ranks == [1, 3, 4, 5, 7][: sum(expected)]  # passing ones only, best first


def test_verify_crystals_ranks_novel_hits_above_known_ones(tmp_path):
    """Stable and on target first; among those, a cell that relaxed onto a known phase goes below novel ones.
    Batches written before the post-relaxation novelty column existed still merge (unknown, ranked last)."""
    from invdesign.pipeline.verify import verify_crystals

    camp = {"target": {"min": 300}, "oracle": {"e_hull_max": 0.1}}
    batch = pd.DataFrame({"rank": [1, 2, 3, 4], "predicted_property": [350.0, 340.0, 330.0, 320.0],
                          "chgnet_energy_per_atom": -8.0, "e_hull": [0.0, 0.0, 0.3, 0.0],
                          "stable": [True, True, False, True], "eos_bulk_modulus_gpa": [320.0, 310.0, 400.0, 200.0],
                          "relax_converged": True, "oracle_error": "",
                          "matches_known": ["mp-1", "", "", ""],
                          "novel_after_relaxation": [False, True, True, True]})
    batch.to_parquet(tmp_path / "b0.parquet")
    m = verify_crystals("t", camp, [str(tmp_path / "b0.parquet")], str(tmp_path / "v.csv"),
                        str(tmp_path / "v.parquet"), str(tmp_path / "m.json"))
    out = pd.read_parquet(tmp_path / "v.parquet")
    assert out["rank"].tolist() == [2, 1, 4, 3]
    assert (m["n_stable_eos_in_target"], m["n_sun_eos_in_target"], m["n_relaxed_onto_known"]) == (2, 1, 1)
    old = batch.drop(columns=["matches_known", "novel_after_relaxation"])
    old.to_parquet(tmp_path / "b1.parquet")
    m = verify_crystals("t", camp, [str(tmp_path / "b1.parquet")], str(tmp_path / "v.csv"),
                        str(tmp_path / "v.parquet"), str(tmp_path / "m.json"))
    assert pd.read_parquet(tmp_path / "v.parquet")["rank"].tolist() == [1, 2, 4, 3]
    assert m["n_sun_eos_in_target"] == 0 and m["n_stable_eos_in_target"] == 2


def test_crystal_batches_one_cell_per_formula(tmp_path):
    from invdesign.pipeline.verify import crystal_batches

    cands = pd.DataFrame({"rank": range(1, 7), "formula": ["TcRh", "MoN", "TcRh", "IrW", "MoN", "NbIr5"],
                          "passes": [True, True, True, False, True, True]})
    cands.to_parquet(tmp_path / "c.parquet")
    oracle = {"top_k": 3, "batch_size": 10, "one_per_formula": True}
    assert crystal_batches({"oracle": oracle}, str(tmp_path / "c.parquet"), str(tmp_path / "b")) == 1
    picked = pd.read_parquet(tmp_path / "b" / "batch_000.parquet")
    assert picked["rank"].tolist() == [1, 2, 6]  # best cell of each formula, failing IrW skipped
    crystal_batches({"oracle": oracle | {"one_per_formula": False}}, str(tmp_path / "c.parquet"), str(tmp_path / "b"))
    assert pd.read_parquet(tmp_path / "b" / "batch_000.parquet")["rank"].tolist() == [1, 2, 3]


def test_crystal_batches_ranked_by_earlier_oracle_verdicts(tmp_path):
    """With oracle.feedback_from the CHGNet check starts from the chemistry earlier verdicts rewarded, even
    where the predictor ranks it lower; bad feedback tables get one-line errors naming the file."""
    from invdesign.errors import InvdesignError
    from invdesign.pipeline.verify import crystal_batches

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
    cands.to_parquet(tmp_path / "c.parquet")
    camp = {"oracle": {"top_k": 3, "batch_size": 10, "feedback_from": [str(tmp_path / "earlier.parquet")]},
            "target": {"min": 300}}
    assert crystal_batches(camp, str(tmp_path / "c.parquet"), str(tmp_path / "b")) == 1
    picked = pd.read_parquet(tmp_path / "b" / "batch_000.parquet")
    assert picked["rank"].tolist()[:2] == [3, 4]  # the Ir cells first, ahead of the predictor's favourites
    assert 5 not in picked["rank"].tolist()  # its formula was verified already
    camp["oracle"]["top_k"] = None
    crystal_batches(camp, str(tmp_path / "c.parquet"), str(tmp_path / "b"))
    p_stable = pd.read_parquet(tmp_path / "b" / "batch_000.parquet").set_index("formula")["feedback_p_stable"]
    assert p_stable["MoB2"] < 0.5 * p_stable["Mo3Ti"]  # boron compounds were unstable
    camp["oracle"]["feedback_from"] = [str(tmp_path / "earlier.csv")]  # the same verdicts from a CSV
    crystal_batches(camp, str(tmp_path / "c.parquet"), str(tmp_path / "b"))
    from_csv = pd.read_parquet(tmp_path / "b" / "batch_000.parquet").set_index("formula")["feedback_p_stable"]
    assert np.allclose(from_csv[p_stable.index], p_stable)
    camp["oracle"]["feedback_from"] = [str(tmp_path / "earlier.parquet")]
    assert picked["feedback_score"].is_monotonic_decreasing and (picked["feedback_p_stable"] > 0).all()
    assert picked["feedback_expected_gpa"].iloc[0] > 290
    with pytest.raises(InvdesignError, match="missing.parquet not found"):
        crystal_batches(camp | {"oracle": camp["oracle"] | {"feedback_from": [str(tmp_path / "missing.parquet")]}},
                        str(tmp_path / "c.parquet"), str(tmp_path / "b"))
    pd.DataFrame(rows).drop(columns="stable").to_csv(tmp_path / "nostable.csv", index=False)
    with pytest.raises(InvdesignError, match="nostable.csv lacks column"):
        crystal_batches(camp | {"oracle": camp["oracle"] | {"feedback_from": [str(tmp_path / "nostable.csv")]}},
                        str(tmp_path / "c.parquet"), str(tmp_path / "b"))
    pd.DataFrame(rows).assign(stable=False).to_csv(tmp_path / "unstable.csv", index=False)
    with pytest.raises(InvdesignError, match="at least 2 stable"):
        crystal_batches(camp | {"oracle": camp["oracle"] | {"feedback_from": [str(tmp_path / "unstable.csv")]}},
                        str(tmp_path / "c.parquet"), str(tmp_path / "b"))
