"""Molecule domain: QM9 parsing, Mulliken alignment, featurization invariances, SELFIES VAE, checks."""

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from torch_geometric.data import Batch

from invdesign.chem.molecules import build_vocab, decode_tokens, encode_tokens, selfies_tokens
from invdesign.data.qm9 import group_charges, parse_numbers
from invdesign.domains import molecules as dom
from invdesign.errors import InvdesignError
from invdesign.featurize.molecule import NODE_FEATURES, mol_to_graph
from invdesign.models.gnn import GraphEncoder

# methanol from QM9 (dsgdb9nsd_000007-like geometry), atoms C, O, H x4 with Mulliken charges
ELEMENTS = ["C", "O", "H", "H", "H", "H"]
XYZ = np.array([[-0.0467, 0.6642, 0.0000], [-0.0467, -0.7578, 0.0000], [-1.0854, 0.9833, 0.0000],
                [0.4366, 1.0830, 0.8923], [0.4366, 1.0830, -0.8923], [0.8551, -1.0846, 0.0000]])
Q = np.array([-0.11, -0.42, 0.10, 0.08, 0.08, 0.27])


def random_rotation(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_qm9_list_columns_parse_non_json_numbers():
    assert parse_numbers("[0.,1.5,-2e-3,.25]").tolist() == [0.0, 1.5, -0.002, 0.25]


def test_group_charges_sum_hydrogens_onto_heavy_atoms():
    smiles, charges = group_charges("CO", ELEMENTS, XYZ, Q)
    assert smiles == "CO"
    assert charges == pytest.approx([-0.11 + 0.10 + 0.08 + 0.08, -0.42 + 0.27])
    assert sum(charges) == pytest.approx(Q.sum())  # total charge is conserved


def test_group_charges_invariant_to_rotation_translation_and_atom_order():
    ref = group_charges("OC", ELEMENTS, XYZ, Q)
    moved = XYZ @ random_rotation().T + np.array([3.0, -7.0, 1.5])
    out = group_charges("OC", ELEMENTS, moved, Q)
    assert out[0] == ref[0] and out[1] == pytest.approx(ref[1])
    perm = np.random.default_rng(1).permutation(len(ELEMENTS))
    out = group_charges("OC", [ELEMENTS[i] for i in perm], XYZ[perm], Q[perm])
    assert out[0] == ref[0] and out[1] == pytest.approx(ref[1])


def test_mismatching_geometry_is_rejected():
    assert group_charges("CC", ELEMENTS, XYZ, Q) is None


def test_graph_permutation_equivariance_and_encoder_invariance():
    mol = Chem.MolFromSmiles("OC(=O)c1ccncc1F")
    q = np.linspace(-0.5, 0.5, mol.GetNumAtoms()).tolist()
    g = mol_to_graph(mol, q)
    perm = list(np.random.default_rng(0).permutation(mol.GetNumAtoms()))
    pmol = Chem.RenumberAtoms(mol, [int(i) for i in perm])
    pg = mol_to_graph(pmol, [q[i] for i in perm])
    assert torch.equal(g.x[perm], pg.x)
    assert g.x[:, NODE_FEATURES.index("mulliken_available")].min() == 1
    enc = GraphEncoder(g.x.size(1), g.edge_attr.size(1), hidden=16, layers=3, out_dim=8).eval()
    b1, b2 = Batch.from_data_list([g]), Batch.from_data_list([pg])
    with torch.no_grad():
        assert torch.allclose(enc(b1.x, b1.edge_index, b1.edge_attr, b1.batch),
                              enc(b2.x, b2.edge_index, b2.edge_attr, b2.batch), atol=1e-5)


def test_selfies_round_trip():
    smiles = ["CCO", "c1ccccc1O", "N#CC(=O)N"]
    toks = [selfies_tokens(s) for s in smiles]
    vocab = build_vocab(toks)
    for s, t in zip(smiles, toks):
        ids = encode_tokens(t, vocab, 20)
        assert len(ids) == 20
        assert decode_tokens(ids, vocab)[1] == Chem.MolToSmiles(Chem.MolFromSmiles(s))
    assert encode_tokens(toks[1], vocab, 3) is None  # too long


def test_user_csv_bad_rows_and_missing_column(tmp_path):
    p = tmp_path / "mols.csv"
    pd.DataFrame({"smi": ["CCO", "not_a_smiles", "c1ccccc1", "C1CC"], "gap": [7.0, 1.0, 6.5, 2.0]}).to_csv(p, index=False)
    ds = {"source": "csv", "path": str(p), "smiles_column": "smi", "property_column": "gap", "on_bad_rows": "skip"}
    df = dom.load_source(ds, mirror=None, cache_dir=str(tmp_path))
    assert df["smiles"].tolist() == ["CCO", "c1ccccc1"] and df["property"].tolist() == [7.0, 6.5]
    with pytest.raises(InvdesignError, match=r"line 3: malformed SMILES 'not_a_smiles'.*2 bad rows"):
        dom.load_source(ds | {"on_bad_rows": "error"}, mirror=None, cache_dir=str(tmp_path))
    with pytest.raises(InvdesignError, match=r"has no column 'gap_ev'.*dataset.property_column"):
        dom.load_source(ds | {"property_column": "gap_ev"}, mirror=None, cache_dir=str(tmp_path))
    with pytest.raises(InvdesignError, match="not found"):
        dom.load_source(ds | {"path": str(tmp_path / "nope.csv")}, mirror=None, cache_dir=str(tmp_path))


@pytest.fixture(scope="module")
def qm9_small(tmp_path_factory):
    return dom.load_source({"source": "qm9", "max_rows": 300, "property_column": "gap_ev", "seed": 0},
                           mirror=None, cache_dir="data/cache")


def test_qm9_loader(qm9_small):
    df = qm9_small
    assert 270 <= len(df) <= 300 and df["id"].is_unique
    assert df["gap_ev"].between(0.5, 20).all()
    assert np.allclose(df["gap_ev"], df["lumo_ev"] - df["homo_ev"], atol=0.01)  # QM9 rounds to 1e-4 Ha
    assert all(len(q) == n for q, n in zip(df["mulliken"], df["n_heavy"]))


def test_vae_trains_decodes_and_filters(qm9_small):
    from invdesign.config import model_settings
    from invdesign.models.mol_vae import MolVAE
    from invdesign.config.generators import TrainSettings
    from invdesign.models.train import fit

    df = qm9_small
    graphs, meta = dom.featurize(df, {})
    assert len(graphs) == len(df) and graphs[0].tokens.shape == (1, meta["max_len"])
    meta.update(y_mean=float(df.property.mean()), y_std=float(df.property.std()))
    model = MolVAE(meta, model_settings("molecules", "vae", {"latent_dim": 16, "hidden": 32}))
    info = fit(model, graphs[:250], graphs[250:], TrainSettings(epochs=2, batch_size=64, lr=3e-3),
               device=torch.device("cpu"), workers=0)
    assert info["history"][-1]["train_token_ce"] < info["history"][0]["train_token_ce"] + 1e-6
    out = model.decode(torch.randn(50, 16))
    samples = dom.decode(out, meta)
    assert len(samples) == 50 and {"selfies", "smiles"} <= set(samples.columns)
    checked = dom.filter_candidates(samples, df, {"min_heavy_atoms": 1})
    assert checked["valid"].sum() > 0
    assert not checked.loc[checked["unique"], "smiles"].duplicated().any()
    assert (checked["passes"] == checked["valid"] & checked["unique"] & checked["novel"] & checked["stable"]).all()
    # a training molecule is never novel
    again = dom.filter_candidates(pd.DataFrame({"smiles": [df.smiles.iloc[0]]}), df, {})
    assert not again["novel"].iloc[0] and again["reject_reason"].iloc[0].startswith("not novel")
    graphs_like = dom.featurize_like(checked, meta)
    assert all((g is None) == (not isinstance(s, str) or not s) for g, s in zip(graphs_like, checked.smiles))


def test_a_functional_group_outside_the_data_is_rejected_with_its_share():
    """The rare-group rule: a nitroso / cumulated N+ chain (found in no training molecule) fails, named with the
    group and its share of the data; a group the data holds passes; null turns the rule off."""
    import pandas as pd

    from invdesign.domains import molecules as dom

    train = pd.DataFrame({"smiles": ["CCO", "CC=O", "CCN", "C1CC1O", "CC(=O)N", "CCC=O"] * 10})
    cands = pd.DataFrame({"smiles": ["N=CC(CN)=[N+]=NN=O", "OCCC=O"]})
    out = dom.filter_candidates(cands, train, {"heavy_atom_margin": None}, train)  # bigger than the training data
    first = out.iloc[0]
    assert not first["passes"] and first["reject_reason"].startswith("structural alert: rare group:")
    assert "nitroso (0.00% of the data)" in first["rare_groups"] and "heteroatom cumulene" in first["rare_groups"]
    assert out.iloc[1]["passes"] and out.iloc[1]["rare_groups"] == ""
    off = dom.filter_candidates(cands, train, {"rare_group_share": None}, train)
    assert off.iloc[0]["rare_groups"] == "" and "rare group" not in off.iloc[0]["reject_reason"]
