"""Crystal domain, user data: a folder of CIFs + a CSV table (fixtures in tests/data/crystals_*)."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from invdesign.domains import crystals as dom
from invdesign.errors import InvdesignError

DATA = Path(__file__).parent / "data"
DS = {"source": "cif_folder", "path": str(DATA / "crystals_cifs"), "table": str(DATA / "crystals_props.csv"),
      "property_column": "bulk_modulus_gpa", "max_atoms": 20, "on_bad_rows": "skip"}


def test_skip_bad_cifs_with_a_count(caplog):
    with caplog.at_level(logging.WARNING):
        df = dom.load_source(DS, mirror=None, cache_dir="unused")
    # broken syntax, partial occupancies and a missing file are the three bad rows
    assert df["id"].tolist() == ["nacl", "tio2", "mgo", "gan"]
    assert df["formula"].tolist() == ["NaCl", "TiO2", "MgO", "GaN"]
    assert df["num_sites"].tolist() == [8, 6, 2, 4]
    assert df["property"].tolist() == [24.0, 210.0, 160.0, 190.0]
    assert "skipped 3 unusable CIFs of 7" in caplog.text


def test_error_mode_names_the_file_and_the_fix():
    with pytest.raises(InvdesignError, match=r"cuau_disordered\.cif.*partial occupancies.*3 bad files.*on_bad_rows"):
        dom.load_source(DS | {"on_bad_rows": "error"}, mirror=None, cache_dir="unused")


def test_missing_column_folder_and_table(tmp_path):
    with pytest.raises(InvdesignError, match=r"crystals_props.csv has no column 'K_VRH'.*dataset.property_column"):
        dom.load_source(DS | {"property_column": "K_VRH"}, mirror=None, cache_dir="unused")
    with pytest.raises(InvdesignError, match=r"no column 'name'.*dataset.id_column"):
        dom.load_source(DS | {"id_column": "name"}, mirror=None, cache_dir="unused")
    with pytest.raises(InvdesignError, match="CIF folder .*nowhere not found; fix dataset.path"):
        dom.load_source(DS | {"path": str(tmp_path / "nowhere")}, mirror=None, cache_dir="unused")
    with pytest.raises(InvdesignError, match="dataset.table is required"):
        dom.load_source({k: v for k, v in DS.items() if k != "table"}, mirror=None, cache_dir="unused")
    with pytest.raises(InvdesignError, match="dataset.source = 'qm9' is not allowed"):
        dom.load_source(DS | {"source": "qm9"}, mirror=None, cache_dir="unused")


def test_max_atoms_max_rows_and_ids_with_suffix(tmp_path):
    df = dom.load_source(DS | {"max_atoms": 6}, mirror=None, cache_dir="unused")
    assert "nacl" not in df["id"].tolist() and len(df) == 3          # 8 sites > 6
    a = dom.load_source(DS | {"max_rows": 2, "seed": 3}, mirror=None, cache_dir="unused")
    b = dom.load_source(DS | {"max_rows": 2, "seed": 3}, mirror=None, cache_dir="unused")
    assert len(a) == 2 and a["id"].tolist() == b["id"].tolist()
    table = tmp_path / "t.csv"
    pd.DataFrame({"file": ["gan.cif", "mgo"], "k": [190.0, "n/a"]}).to_csv(table, index=False)
    df = dom.load_source(DS | {"table": str(table), "id_column": "file", "property_column": "k"},
                         mirror=None, cache_dir="unused")
    assert df["id"].tolist() == ["gan", "mgo"] and df["property"].iloc[0] == 190.0 and pd.isna(df["property"].iloc[1])


def test_user_crystals_featurize_and_score_like_training():
    df = dom.load_source(DS, mirror=None, cache_dir="unused")
    graphs, meta = dom.featurize(df, {"cutoff": 4.0, "max_neighbors": 8})
    assert len(graphs) == len(df) and meta["elements"] == ["N", "O", "Na", "Mg", "Cl", "Ti", "Ga"]
    assert meta["max_atoms"] == 8 and meta["edge_rbf"] == {"cutoff": 4.0, "num_gaussians": 32}
    for g, n in zip(graphs, df["num_sites"]):
        assert g.x.shape == (n, meta["node_dim"]) and g.edge_attr.shape == (g.edge_index.size(1), 1)
        assert g.types_t.shape == (1, 8) and g.frac_t.shape == (1, 8, 3) and g.lat_t.shape == (1, 6)
        assert int((g.types_t >= 0).sum()) == n and float(g.edge_attr.max()) <= 4.0
        assert (g.edge_index[1].bincount(minlength=n) <= 8).all()  # max_neighbors incoming edges per atom
    again = dom.featurize_like(df, meta)
    assert all((a.x == g.x).all() and (a.edge_attr == g.edge_attr).all() for a, g in zip(again, graphs))
    # unknown elements and unreadable records give None, never an exception
    odd = pd.DataFrame({"structure": [df["structure"].iloc[0].replace('"Na"', '"K"'), "{not json", None]})
    assert dom.featurize_like(odd, meta) == [None, None, None]
