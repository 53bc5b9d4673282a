"""Training data checks (prepare_dataset): every class of bad row is left out with a logged count under
on_bad_rows: skip, and named in a one-line error under on_bad_rows: error; duplicates are merged by a stated rule."""

import logging

import numpy as np
import pandas as pd
import pytest

from invdesign.errors import InvdesignError
from invdesign.pipeline.data import prepare_dataset

GOOD = ["CCO", "CCN", "CCC", "c1ccccc1", "CC(=O)O", "CCOC", "CCCl", "CNC", "OCCO", "CC#N", "C1CC1", "CC=O"]
BAD = {  # SMILES -> the reason's first words
    "[Na+].[Cl-]": "several fragments",
    "[Fe]": "unsupported elements",
    "C[CH2]": "radical",
    "C" * 60: "too large",
    "C[NH3+]": "charged",
    "C[Si](C)(C)C": "unsupported elements",
}


def run(tmp_path, rows, on_bad_rows="skip", **dataset):
    csv = tmp_path / "mols.csv"
    pd.DataFrame(rows, columns=["smiles", "y"]).to_csv(csv, index=False)
    out = tmp_path / "dataset.parquet"
    prepare_dataset(campaign="t", domain="molecules", split={},
                    dataset={"source": "csv", "path": str(csv), "property_column": "y", "on_bad_rows": on_bad_rows,
                             **dataset}, data={}, out=str(out))
    return pd.read_parquet(out)


def test_each_class_of_bad_molecule_is_left_out_with_a_count(tmp_path, caplog):
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)] + [(s, 5.0) for s in BAD]
    with caplog.at_level(logging.WARNING):
        df = run(tmp_path, rows)
    assert sorted(df["smiles"]) == sorted(GOOD)
    text = caplog.text
    assert "left out 6 of 18 molecules" in text
    for reason in ("several fragments", "unsupported elements", "radical", "too large", "charged"):
        assert reason in text, reason


@pytest.mark.parametrize("smiles, reason", list(BAD.items()))
def test_error_mode_names_the_row_and_the_reason(tmp_path, smiles, reason):
    rows = [(s, 5.0) for s in GOOD] + [(smiles, 5.0)]
    with pytest.raises(InvdesignError, match=f"mols.csv.*{reason}.*on_bad_rows: skip") as err:
        run(tmp_path, rows, on_bad_rows="error")
    assert "\n" not in str(err.value) and "row14" in str(err.value)  # the CSV line of the bad row


def test_labels_that_are_not_numbers_or_are_outliers_are_bad_rows(tmp_path, caplog):
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)] + [("CCCC", "n/a"), ("CCCCO", 900.0)]
    with caplog.at_level(logging.WARNING):
        df = run(tmp_path, rows)
    assert len(df) == len(GOOD) and "label: not a finite number" in caplog.text and "label outlier" in caplog.text
    with pytest.raises(InvdesignError, match="label outlier: 900"):
        run(tmp_path, rows[:-2] + [("CCCCO", 900.0)], on_bad_rows="error")
    assert len(run(tmp_path, rows[:-2] + [("CCCCO", 900.0)], outlier_z=None)) == len(GOOD) + 1


def test_duplicates_are_merged_and_conflicting_ones_dropped(tmp_path, caplog):
    """The same molecule written twice (OCC and CCO are one) becomes one row with the median label, so it cannot
    sit in two splits; copies whose labels disagree beyond the tolerance are all left out."""
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)] + [("OCC", 5.02), ("C(C)N", 7.0)]
    with caplog.at_level(logging.INFO):
        df = run(tmp_path, rows, duplicate_tolerance=0.1)
    assert df["smiles"].is_unique
    assert df.loc[df["smiles"] == "CCO", "property"].iloc[0] == pytest.approx(5.01)  # median of 5.0 and 5.02
    assert "CCN" not in set(df["smiles"])  # 5.1 against 7.0: conflicting
    assert "merged 2 duplicate rows into 1" in caplog.text and "conflicting duplicates" in caplog.text


def test_a_molecule_selfies_cannot_write_is_a_bad_row_not_a_featurization_crash(tmp_path, caplog):
    """A hypervalent molecule RDKit accepts but SELFIES rejects (featurization used to stop on it)."""
    import selfies

    selfies.set_semantic_constraints("default")
    weird = "FS(F)(F)(F)(F)(F)F"  # 7 bonds to sulfur
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)] + [(weird, 5.0)]
    with caplog.at_level(logging.WARNING):
        df = run(tmp_path, rows)
    assert len(df) == len(GOOD) and weird not in set(df["smiles"])


def test_crystal_with_atoms_too_close_is_a_bad_row(tmp_path):
    """A CIF with two atoms 0.1 A apart is left out (skip) or stops the run naming it (error)."""
    from pymatgen.core import Lattice, Structure

    folder = tmp_path / "cifs"
    folder.mkdir()
    names = []
    pairs = [("Na", "Cl"), ("K", "Cl"), ("Na", "Br"), ("K", "Br"), ("Li", "F"), ("Na", "F"), ("K", "F"), ("Rb", "Cl"),
             ("Cs", "Cl"), ("Li", "Cl"), ("Rb", "Br")]  # CsCl-type cells of eleven compounds
    for i, ((a, b), size) in enumerate(zip(pairs, np.linspace(3.5, 4.5, 11))):
        Structure(Lattice.cubic(size), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(folder / f"c{i}.cif"))
        names.append(f"c{i}")
    Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.02, 0, 0]]).to(filename=str(folder / "clash.cif"))
    pd.DataFrame({"id": names + ["clash"], "k": list(np.linspace(20, 40, 11)) + [30.0]}).to_csv(tmp_path / "t.csv",
                                                                                                index=False)
    ds = {"source": "cif_folder", "path": str(folder), "table": str(tmp_path / "t.csv"), "property_column": "k"}
    out = tmp_path / "d.parquet"
    prepare_dataset(campaign="c", domain="crystals", split={}, dataset=ds, data={}, out=str(out))
    assert "clash" not in set(pd.read_parquet(out)["id"])
    with pytest.raises(InvdesignError, match=r"'clash': atoms too close: Na-Cl 0.10 A apart"):
        prepare_dataset(campaign="c", domain="crystals", split={}, dataset=ds | {"on_bad_rows": "error"}, data={},
                        out=str(out))


def test_a_charged_cell_is_a_bad_row():
    from pymatgen.core import Lattice, Structure

    from invdesign.chem.crystals import structure_to_record
    from invdesign.data.checks import structure_problem

    charged = Structure(Lattice.cubic(4.0), ["Na+", "Cl-", "Na+"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])
    assert structure_problem(structure_to_record(charged)) == "charged cell: net charge +1"
    neutral = Structure(Lattice.cubic(4.0), ["Na+", "Cl-"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_problem(structure_to_record(neutral)) is None


@pytest.mark.parametrize("name, damage", [
    ("dataset.parquet", lambda b: b[: len(b) // 2]),         # truncated: no end marker
    ("prepared.json", lambda b: b[: len(b) // 2]),           # JSON cut in the middle
    ("graphs.pt", lambda b: b[: len(b) // 2]),               # torch file without its zip directory
])
def test_a_damaged_intermediate_is_named_with_the_recipe_that_rebuilds_it(tmp_path, name, damage):
    import json

    import torch

    from invdesign.artifacts import check_intact

    path = tmp_path / name
    if name.endswith(".parquet"):
        pd.DataFrame({"id": range(100), "property": 1.0, "split": "train"}).to_parquet(path)
    elif name.endswith(".json"):
        path.write_text(json.dumps({"a": list(range(100))}))
    else:
        torch.save({"a": torch.zeros(100)}, path)
    check_intact(path)  # whole: nothing to say
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InvdesignError, match=rf"{name}: .*the outputs made from it are kept: rebuild it alone with "
                                             rf"snakemake --cores 2 --force \S*{name}"):
        check_intact(path)


def test_a_whole_intermediate_without_the_columns_its_readers_need_is_named(tmp_path):
    """A whole Parquet file (e.g. edited by hand, or written by another version) that lacks a column the next rules
    read stops the run while planning, like a truncated one; files of no known kind are not judged."""
    from invdesign.artifacts import check_intact

    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "dataset.parquet"
    pd.DataFrame({"id": ["a"], "property": [1.0]}).to_parquet(path)
    with pytest.raises(InvdesignError, match=r"dataset.parquet: lacks the column\(s\) split its readers need; the "
                                             r"outputs made from it are kept"):
        check_intact(path)
    batch = tmp_path / "batch_3.parquet"
    pd.DataFrame({"smiles": ["C"]}).to_parquet(batch)
    with pytest.raises(InvdesignError, match="lacks the column.s. rank"):
        check_intact(batch)
    other = tmp_path / "anything.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(other)
    check_intact(other)


def test_a_molecule_far_larger_than_the_rest_is_a_size_outlier(tmp_path, caplog):
    """One 40-carbon chain among small molecules: within max_heavy_atoms (50), but more than twice the data's 99th
    percentile of heavy atoms; left out with its reason, kept when the check is off."""
    small = [("C" * n + "O", 5.0 + 0.01 * n) for n in range(2, 10)] * 3  # 24 molecules of 3-10 heavy atoms
    small = [(s if i < 8 else s.replace("O", "N", 1) if i < 16 else s + "C", y) for i, (s, y) in enumerate(small)]
    rows = small + [("C" * 40, 5.0)]
    with caplog.at_level(logging.WARNING):
        df = run(tmp_path, rows)
    assert "C" * 40 not in set(df["smiles"]) and "size outlier: 40 heavy atoms" in caplog.text
    assert "C" * 40 in set(run(tmp_path, rows, size_outlier_ratio=None)["smiles"])


def test_stereoisomers_are_one_molecule_merged_or_conflicting(tmp_path, caplog):
    """The graphs carry no chirality or double-bond geometry: enantiomers with labels within the tolerance become
    one row (median label, so one split); cis and trans with labels far apart are conflicting duplicates."""
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)]
    rows += [("C[C@H](N)O", 5.5), ("C[C@@H](N)O", 5.52), ("F/C=C/F", 5.0), ("F/C=C\\F", 6.0)]
    with caplog.at_level(logging.INFO):
        df = run(tmp_path, rows, duplicate_tolerance=0.1)
    assert len(df) == len(GOOD) + 1 and not df["smiles"].str.contains("[@/\\\\]").any()
    assert df.loc[df["smiles"] == "CC(N)O", "property"].iloc[0] == pytest.approx(5.51)
    assert "FC=CF" not in set(df["smiles"]) and "conflicting duplicates: 2 rows" in caplog.text
    assert "the stereo labels of 4 rows" in caplog.text and "merged 2 duplicate rows into 1" in caplog.text



def test_an_isotope_label_is_removed_and_the_molecule_merged(tmp_path, caplog):
    """[13CH4] is methane to the featurization (no masses): read as methane, logged, and merged with methane."""
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)] + [("C", 5.5), ("[13CH4]", 5.52)]
    with caplog.at_level(logging.INFO):
        df = run(tmp_path, rows, duplicate_tolerance=0.1)
    assert sorted(df["smiles"]) == sorted(GOOD + ["C"])
    assert df.loc[df["smiles"] == "C", "property"].iloc[0] == pytest.approx(5.51)
    assert "the isotope labels of 1 rows (first: '[13CH4]')" in caplog.text
    assert "merged 2 duplicate rows into 1" in caplog.text


def test_deuterium_is_hydrogen_not_an_unsupported_element(tmp_path, caplog):
    """[2H]C is methane and [2H]OCC ethanol (merged with CCO), accepted even with on_bad_rows: error; D2 alone is
    a row without heavy atoms, not 'unsupported elements: H'."""
    rows = [(s, 5.0 + 0.1 * i) for i, s in enumerate(GOOD)]  # CCO is 5.0
    with caplog.at_level(logging.INFO):
        df = run(tmp_path, rows + [("[2H]C", 5.5), ("[2H]OCC", 5.02)], duplicate_tolerance=0.1, on_bad_rows="error")
    assert sorted(df["smiles"]) == sorted(GOOD + ["C"]) and df.loc[df["smiles"] == "C", "n_heavy"].iloc[0] == 1
    assert df.loc[df["smiles"] == "CCO", "property"].iloc[0] == pytest.approx(5.01)
    assert "the isotope labels of 2 rows" in caplog.text
    with pytest.raises(InvdesignError, match="row14.: no heavy atom: hydrogen .or deuterium. only"):
        run(tmp_path, rows + [("[2H][2H]", 5.0)], on_bad_rows="error")
