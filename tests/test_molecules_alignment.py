"""Mulliken group charges land on the right atoms (strained rings, symmetric skeletons, ions),
whatever the pose and atom order of the geometry; generated molecules are featurized like the data."""

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem
from torch_geometric.data import Batch

from invdesign.data.qm9 import group_charges
from invdesign.domains import molecules as dom
from invdesign.errors import InvdesignError
from invdesign.featurize.molecule import NODE_FEATURES
from invdesign.models.gnn import GraphEncoder


def geometry(smiles: str, seed: int = 7):
    """Canonical heavy-atom SMILES, an all-atom geometry, distinct per-atom charges and the expected
    per-heavy-atom group charges in the canonical atom order."""
    canon = Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    mol = Chem.AddHs(Chem.MolFromSmiles(canon))  # heavy atoms keep their canonical indices
    if AllChem.EmbedMolecule(mol, randomSeed=seed) != 0:  # RDKit < 2025 fails on the strained polycycle
        assert AllChem.EmbedMolecule(mol, randomSeed=seed, useRandomCoords=True) == 0
    AllChem.MMFFOptimizeMolecule(mol)
    xyz = mol.GetConformer().GetPositions()
    elements = [a.GetSymbol() for a in mol.GetAtoms()]
    q = np.random.default_rng(seed).uniform(-0.5, 0.5, len(elements))
    expected = [q[a.GetIdx()] + sum(q[n.GetIdx()] for n in a.GetNeighbors() if n.GetAtomicNum() == 1)
                for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    return canon, elements, xyz, q, expected


def rotation(seed):
    m, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return m * np.sign(np.linalg.det(m))


@pytest.mark.parametrize("smiles", [
    "OCCC1OC1CC=O",          # skeleton symmetric without bond orders: only H counts tell the ends apart
    "COC12CC(C1)(C2)C=O",    # bicyclo[1.1.1]pentane: bridgeheads closer than the covalent cut-off
    "OC12CCOC3C1CC23",       # strained polycycle
    "NC=[NH+]C1=NC(O)=N[N-]1",  # zwitterion as written in QM9
    "CC(C)(C)C#N",
])
def test_group_charges_follow_the_atoms_under_any_pose_and_order(smiles):
    canon, elements, xyz, q, expected = geometry(smiles)
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(elements))
        moved = xyz[perm] @ rotation(seed).T + np.random.default_rng(seed).normal(size=3) * 5
        out = group_charges(smiles, [elements[i] for i in perm], moved, q[perm])
        assert out is not None, f"{smiles} rejected"
        assert out[0] == canon
        # symmetry-equivalent atoms may swap, so compare per-atom multisets within symmetry classes
        ranks = list(Chem.CanonicalRankAtoms(Chem.MolFromSmiles(canon), breakTies=False))
        for r in set(ranks):
            idx = [i for i, x in enumerate(ranks) if x == r]
            assert sorted(out[1][i] for i in idx) == pytest.approx(sorted(expected[i] for i in idx))


def test_geometry_of_another_molecule_is_rejected():
    _, elements, xyz, q, _ = geometry("CCCC=O")
    assert group_charges("CC(C)C=O", elements, xyz, q) is None   # same formula, different skeleton
    assert group_charges("CCCCO", elements, xyz, q) is None      # different H count


def test_featurized_qm9_style_graph_is_pose_and_order_invariant():
    smiles = "OCCC1OC1CC=O"
    canon, elements, xyz, q, _ = geometry(smiles)
    ref = group_charges(smiles, elements, xyz, q)
    perm = np.random.default_rng(3).permutation(len(elements))
    out = group_charges(smiles, [elements[i] for i in perm], xyz[perm] @ rotation(3).T + 2.0, q[perm])
    row = lambda r: pd.DataFrame({"smiles": [r[0]], "mulliken": [r[1]], "property": [5.0]})  # noqa: E731
    g1, _ = dom.featurize(row(ref), {})
    g2, _ = dom.featurize(row(out), {})
    assert torch.allclose(g1[0].x, g2[0].x) and torch.equal(g1[0].edge_index, g2[0].edge_index)
    assert g1[0].x[:, NODE_FEATURES.index("mulliken_available")].min() == 1
    enc = GraphEncoder(g1[0].x.size(1), g1[0].edge_attr.size(1), hidden=16, layers=2, out_dim=4).eval()
    # atom order of the SMILES itself: renumber the molecule and compare encoder embeddings
    mol = Chem.MolFromSmiles(canon)
    order = [int(i) for i in np.random.default_rng(0).permutation(mol.GetNumAtoms())]
    from invdesign.featurize.molecule import mol_to_graph

    g3 = mol_to_graph(Chem.RenumberAtoms(mol, order), [ref[1][i] for i in order])
    b1, b3 = Batch.from_data_list([g1[0]]), Batch.from_data_list([g3])
    with torch.no_grad():
        assert torch.allclose(enc(b1.x, b1.edge_index, b1.edge_attr, b1.batch),
                              enc(b3.x, b3.edge_index, b3.edge_attr, b3.batch), atol=1e-5)


def test_csv_molecules_have_no_mulliken_and_a_zero_flag(tmp_path):
    p = tmp_path / "m.csv"
    pd.DataFrame({"smiles": ["CCO", "c1ccncc1", "ClCCl"], "y": [1.0, 2.0, 3.0]}).to_csv(p, index=False)
    df = dom.load_source({"source": "csv", "path": str(p), "property_column": "y"}, mirror=None,
                         cache_dir=str(tmp_path))
    assert df["mulliken"].isna().all()
    graphs, meta = dom.featurize(df, {})
    flag, q = NODE_FEATURES.index("mulliken_available"), NODE_FEATURES.index("mulliken_group_charge")
    assert all(float(g.x[:, flag].abs().sum()) == 0 and float(g.x[:, q].abs().sum()) == 0 for g in graphs)
    assert "Cl" in meta["training_elements"]
    # generated molecules: same feature layout; unseen elements and junk give None
    like = dom.featurize_like(pd.DataFrame({"smiles": ["CCCl", "CCBr", "C1CC", None, "N#N"]}), meta)
    assert [g is None for g in like] == [False, True, True, True, False]
    assert like[0].x.shape[1] == meta["node_dim"] and like[0].edge_attr.shape[1] == meta["edge_dim"]


def test_qm9_property_column_must_be_known(tmp_path):
    with pytest.raises(InvdesignError, match="property_column = 'gap' is not provided by qm9.*gap_ev"):
        dom.load_source({"source": "qm9", "property_column": "gap", "max_rows": 5}, mirror=None, cache_dir=tmp_path)
