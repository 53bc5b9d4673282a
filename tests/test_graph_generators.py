"""Whole-graph molecule generators: dense graphs, discrete diffusion, graph EBM, valency handling."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch

from invdesign.chem.molecules import canonical, graph_to_smiles
from invdesign.config import model_settings
from invdesign.domains.molecules import decode
from invdesign.featurize.molecule import ELEMENTS, mol_to_graph
from invdesign.models.dense import dense_statistics, pair_mask, to_dense, class_lookup
from invdesign.models.graph_diffusion import GraphDiffusion
from invdesign.models.graph_ebm import GraphEBM
from invdesign.models.samples import MoleculeSamples


def diffusion(meta, **settings):
    return GraphDiffusion(meta, model_settings("molecules", "diffusion", settings))


def ebm(meta, **settings):
    return GraphEBM(meta, model_settings("molecules", "ebm", settings))

SMILES = ["c1ccccc1O", "CC(=O)N", "C#CC1CC1", "N#Cc1ccoc1", "OC1COC1C#N", "Cc1nc(F)cn1C", "C1=CC2CC2O1",
          "CC1(C)OC1=O", "C[N+](C)(C)C", "O=c1cc[nH]cc1"]


def graphs(smiles=SMILES, y=None):
    from rdkit import Chem

    y = y if y is not None else np.linspace(4.0, 8.0, len(smiles))
    return [mol_to_graph(Chem.MolFromSmiles(s), y=float(v)) for s, v in zip(smiles, y)]


def meta_for(gs):
    ys = np.array([float(g.y) for g in gs])
    return {"domain": "molecules", "elements": ELEMENTS, "dense": dense_statistics(gs),
            "y_mean": float(ys.mean()), "y_std": float(ys.std())}


def dense_to_smiles(X, E, mask, meta):
    classes = torch.tensor(meta["dense"]["atom_classes"])
    atoms = torch.where(mask, classes[X.argmax(-1)], torch.full(mask.shape, -1))
    return decode(MoleculeSamples(atom_classes=atoms, bonds=E.argmax(-1) * pair_mask(mask).long()), meta)


def test_dense_round_trip_recovers_every_molecule():
    gs = graphs()
    meta = meta_for(gs)
    X, E, mask = to_dense(Batch.from_data_list(gs), class_lookup(meta["dense"], len(ELEMENTS)),
                          meta["dense"]["max_nodes"])
    assert torch.equal(E, E.transpose(1, 2)) and not E[..., 1:].diagonal(dim1=1, dim2=2).any()
    out = dense_to_smiles(X, E, mask, meta)
    assert out["smiles"].tolist() == [canonical(s) for s in SMILES]
    assert out["raw_valid"].all()


def test_statistics_are_distributions():
    st = dense_statistics(graphs())
    assert st["atom_classes"] == sorted(ELEMENTS.index(e) for e in {"C", "N", "O", "F"})
    assert abs(sum(st["node_marginals"]) - 1) < 1e-9 and abs(sum(st["edge_marginals"]) - 1) < 1e-9
    assert st["edge_marginals"][0] > 0.5  # most atom pairs are not bonded
    assert st["max_nodes"] == 8 and sum(st["n_hist"]) == len(SMILES) and st["n_hist"][8] == 1


def test_valency_correction():
    bonds = np.zeros((3, 3), int)
    bonds[0, 1] = bonds[1, 0] = 2
    bonds[1, 2] = bonds[2, 1] = 2
    assert graph_to_smiles(["O", "O", "C"], bonds) is None  # O with 4 bonds: invalid as generated
    fixed = graph_to_smiles(["O", "O", "C"], bonds, correct=True)
    assert fixed is not None and canonical(fixed) == fixed and "." not in fixed
    # disconnected pieces: raw keeps both fragments, corrected keeps the largest
    two = np.zeros((4, 4), int)
    two[0, 1] = two[1, 0] = 1
    assert "." in graph_to_smiles(["C", "C", "C", "O"], two)
    assert graph_to_smiles(["C", "C", "C", "O"], two, correct=True) == "CC"


def brute_posterior(model, x0, zt, t, s, m):
    """q(z_s | z_t, x0) by Bayes with explicit transition matrices."""
    K = len(m)
    eye = torch.eye(K)
    Qbar = lambda a: a * eye + (1 - a) * m.view(1, -1)  # noqa: E731
    Qts = Qbar(model.abar[t] / model.abar[s])
    num = Qbar(model.abar[s])[x0] * Qts[:, zt]
    return num / num.sum()


def test_diffusion_posterior_matches_bayes():
    gs = graphs()
    model = diffusion(meta_for(gs), hidden=16, heads=2, layers=1, diffusion_steps=50)
    m = model.node_m
    K = len(m)
    for t, s in ((50, 49), (30, 10), (5, 0)):
        for x0 in range(K):
            for zt in range(K):
                prob0 = torch.nn.functional.one_hot(torch.tensor([x0]), K).float()
                zt1 = torch.nn.functional.one_hot(torch.tensor([zt]), K).float()
                got = model._posterior(prob0, zt1, torch.tensor([t]), torch.tensor([s]), m)[0]
                assert torch.allclose(got, brute_posterior(model, x0, zt, t, s, m), atol=1e-5), (t, s, x0, zt)


def test_diffusion_is_permutation_equivariant():
    gs = graphs()
    meta = meta_for(gs)
    model = diffusion(meta, hidden=16, heads=2, layers=2, diffusion_steps=50).eval()
    X, E, mask = to_dense(Batch.from_data_list(gs), model.lut, model.max_nodes)
    t = torch.full((len(gs),), 20)
    c, has = torch.zeros(len(gs)), torch.ones(len(gs), dtype=torch.bool)
    lx, le = model._logits(X, E, mask, t, c, has)
    perm = torch.randperm(model.max_nodes, generator=torch.Generator().manual_seed(3))
    lx2, le2 = model._logits(X[:, perm], E[:, perm][:, :, perm], mask[:, perm], t, c, has)
    real = mask[:, perm]
    assert torch.allclose(lx[:, perm][real], lx2[real], atol=1e-4)
    pm = pair_mask(mask[:, perm])
    assert torch.allclose(le[:, perm][:, :, perm][pm], le2[pm], atol=1e-4)


def test_diffusion_learns_and_samples_valid_shapes():
    torch.manual_seed(0)
    gs = graphs() * 8
    meta = meta_for(gs)
    model = diffusion(meta, hidden=32, heads=4, layers=2, diffusion_steps=50)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = Batch.from_data_list(gs)
    losses = []
    for _ in range(60):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])
    model.eval()
    sizes = torch.tensor([3, 5, 7, 4])
    out = model.sample(sizes=sizes, target=6.0, guidance_scale=2.0, sample_steps=10,
                       generator=torch.Generator().manual_seed(0))
    assert out.atom_classes.shape == (4, model.max_nodes) and out.representation == "graph"
    assert ((out.atom_classes >= 0).sum(1) == sizes).all()
    assert torch.equal(out.bonds, out.bonds.transpose(1, 2))
    pad = out.atom_classes < 0
    assert (out.bonds[pad] == 0).all()
    with pytest.raises(ValueError, match="sample_steps"):
        model.sample(sizes=sizes, guidance_scale=0.0, sample_steps=51)
    df = decode(out, meta)
    assert len(df) == 4 and set(df.columns) >= {"smiles", "raw_valid"}


def test_ebm_energy_is_order_invariant_and_scores_candidates():
    gs = graphs()
    meta = meta_for(gs)
    model = ebm(meta, hidden=16, layers=2).eval()
    e1 = model.score_graphs(Batch.from_data_list(gs))
    from rdkit import Chem

    shuffled = []
    for s, g in zip(SMILES, gs):
        mol = Chem.MolFromSmiles(s)
        order = list(reversed(range(mol.GetNumAtoms())))
        shuffled.append(mol_to_graph(Chem.RenumberAtoms(mol, order), y=float(g.y)))
    e2 = model.score_graphs(Batch.from_data_list(shuffled))
    assert torch.allclose(e1, e2, atol=1e-5)
    # a molecule larger than anything seen in training is scored too (any graph size)
    big = graphs(["CCCCCCCCCCCC"], [5.0])
    assert torch.isfinite(model.score_graphs(Batch.from_data_list(big))).all()


def test_ebm_property_energy_pulls_toward_the_target():
    torch.manual_seed(0)
    gs = graphs() * 4
    meta = meta_for(gs)
    model = ebm(meta, hidden=32, layers=2, langevin_train_steps=3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = Batch.from_data_list(gs)
    for _ in range(40):
        loss, metrics = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    sizes = torch.full((64,), 6)
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    kw = {"steps": 30, "property_tolerance": 0.5}
    free = model.sample(sizes=sizes, target=None, guidance_scale=1.0, generator=gen(), **kw)
    lo = model.sample(sizes=sizes, target=4.0, guidance_scale=1.0, generator=gen(), **kw)
    hi = model.sample(sizes=sizes, target=8.0, guidance_scale=1.0, generator=gen(), **kw)
    err = lambda out, c: float((out.property_pred - c).abs().mean())  # noqa: E731
    assert err(lo, 4.0) < 0.5 and err(hi, 8.0) < 0.5
    assert err(lo, 4.0) < err(free, 4.0) and err(hi, 8.0) < err(free, 8.0)
    df = decode(hi, meta)
    assert df["smiles"].notna().mean() > 0.9  # valency correction makes a molecule of nearly every sample


def test_structural_alerts_reject_implausible_molecules():
    from invdesign.chem.molecules import check_molecules

    smiles = ["C1=C=C=C=C=1", "C=C=C=C=O", "COOC", "FN(C)C", "NN=NN=NC", "CC(=O)NC", "c1ccncc1", "C1CC#CCC1"]
    out = check_molecules(pd.DataFrame({"smiles": smiles}), ["CCO"], min_heavy_atoms=3, alerts=True)
    assert out["passes"].tolist() == [False, False, False, False, False, True, True, False]
    assert out["valid"].all() and out["novel"].all()
    assert out.loc[0, "alerts"].startswith("cumulene in a ring") and out.loc[2, "reject_reason"].startswith("structural alert")
    off = check_molecules(pd.DataFrame({"smiles": smiles}), ["CCO"], min_heavy_atoms=3, alerts=False)
    assert off["alerts"].eq("").all()
    # without alerts the 5-ring cumulene and cyclohexyne still fail: ETKDG finds them no 3D coordinates
    assert off["passes"].tolist() == [False, True, True, True, True, True, True, False]
    assert off.loc[7, "reject_reason"] == "no 3D coordinates: RDKit ETKDG embedding failed"


def test_classifier_free_guidance_moves_the_property_of_molecule_samples():
    """The molecule diffusion model conditioned on a property it can learn quickly (the share of heavy atoms that
    are not carbon, measured on the samples themselves, no predictor in between): asking for a low or a high value
    moves the samples' share the right way, guidance (w = 2) further than the plain conditional (w = 0), and the
    unconditional samples sit in between."""
    from invdesign.config.generators import TrainSettings
    from invdesign.domains import molecules as dom
    from invdesign.models.train import fit, seed_everything

    df = dom.load_source({"source": "qm9", "max_rows": 2000, "seed": 0}, mirror=None, cache_dir="data/cache")
    gs, meta = dom.featurize(df.assign(split="train"))
    carbon = ELEMENTS.index("C")
    share = np.array([float((g.atom_type != carbon).float().mean()) for g in gs])
    for g, v in zip(gs, share):
        g.y = torch.tensor([float(v)])
    meta.update(y_mean=float(share.mean()), y_std=float(share.std()))
    seed_everything(0)
    model = diffusion(meta, hidden=32, edge_hidden=16, global_hidden=16, heads=4, layers=2, diffusion_steps=100)
    fit(model, gs[:1800], gs[1800:], TrainSettings(epochs=8, batch_size=128, lr=3e-3),
        device=torch.device("cpu"), workers=0)
    model.eval()

    def hetero_share(target, w):
        out = model.sample(sizes=torch.full((200,), 8), target=target, guidance_scale=w, sample_steps=25,
                           generator=torch.Generator().manual_seed(0))
        real = out.atom_classes >= 0
        return float(((out.atom_classes != carbon) & real).float().sum() / real.float().sum())

    low, high = hetero_share(0.1, 0.0), hetero_share(0.5, 0.0)
    low_w, high_w = hetero_share(0.1, 2.0), hetero_share(0.5, 2.0)
    free = hetero_share(None, 0.0)
    assert high - low > 0.25, (low, high)
    assert low_w <= low and high_w > high, (low, low_w, high, high_w)
    assert low < free < high, (low, free, high)
