"""Core model pieces: invariance of the encoder, predictor training, latent search, device choice."""

import pytest
import torch
from torch_geometric.data import Batch, Data

from invdesign.device import resolve_device
from invdesign.errors import InvdesignError
from invdesign.models.gnn import GraphEncoder, mlp
from invdesign.models.predictor import GraphPropertyPredictor, predict_graphs
from invdesign.models.train import fit
from invdesign.models.vae import GraphVAE
from invdesign.config.generators import PredictorModel, TrainSettings, VAEModel
from invdesign.sampling.latent import optimise_latents, start_latents


def random_graph(n=7, node_dim=5, edge_dim=3, seed=0, y=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, node_dim, generator=g)
    src = torch.arange(n)
    dst = (src + 1) % n
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    ea = torch.randn(n, edge_dim, generator=g).repeat(2, 1)
    return Data(x=x, edge_index=ei, edge_attr=ea, y=torch.tensor([y if y is not None else float(x.sum())]))


def permute(d: Data, perm: torch.Tensor) -> Data:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    return Data(x=d.x[perm], edge_index=inv[d.edge_index], edge_attr=d.edge_attr, y=d.y)


def test_encoder_is_permutation_invariant():
    torch.manual_seed(0)
    enc = GraphEncoder(5, 3, hidden=16, layers=3, out_dim=8).eval()
    d = random_graph()
    perm = torch.randperm(d.num_nodes)
    b1, b2 = Batch.from_data_list([d]), Batch.from_data_list([permute(d, perm)])
    with torch.no_grad():
        h1 = enc(b1.x, b1.edge_index, b1.edge_attr, b1.batch)
        h2 = enc(b2.x, b2.edge_index, b2.edge_attr, b2.batch)
    assert torch.allclose(h1, h2, atol=1e-5)
    # and it does see the graph: changing a node feature changes the embedding
    d2 = random_graph()
    d2.x[0, 0] += 1.0
    b3 = Batch.from_data_list([d2])
    with torch.no_grad():
        assert not torch.allclose(h1, enc(b3.x, b3.edge_index, b3.edge_attr, b3.batch), atol=1e-4)


def test_encoder_handles_graph_without_edges():
    enc = GraphEncoder(5, 3, hidden=8, layers=2, out_dim=4)
    d = Data(x=torch.randn(1, 5), edge_index=torch.zeros(2, 0, dtype=torch.long), edge_attr=torch.zeros(0, 3))
    b = Batch.from_data_list([d, random_graph()])
    assert enc(b.x, b.edge_index, b.edge_attr, b.batch).shape == (2, 4)


def test_predictor_learns_a_graph_property():
    graphs = [random_graph(n=4 + i % 5, seed=i) for i in range(240)]
    ys = torch.tensor([float(g.y) for g in graphs])
    meta = {"node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}
    model = GraphPropertyPredictor(meta, PredictorModel.parse({"hidden": 32, "layers": 2}))
    before = (predict_graphs(model, graphs[200:], "cpu") - ys[200:]).abs().mean()
    fit(model, graphs[:200], graphs[200:], TrainSettings(epochs=25, batch_size=32, lr=3e-3),
        device=torch.device("cpu"), workers=0)
    after = (predict_graphs(model, graphs[200:], "cpu") - ys[200:]).abs().mean()
    assert after < 0.5 * before


class ToyVAE(GraphVAE):
    """Reconstructs the mean node feature: enough to exercise the base class."""

    def __init__(self, meta, cfg):
        super().__init__(meta, cfg)
        self.dec = mlp([self.latent_dim, 16, meta["node_dim"]])

    def reconstruction_loss(self, z, batch):
        from torch_geometric.nn import global_mean_pool

        target = global_mean_pool(batch.x, batch.batch)
        return torch.mean((self.dec(z) - target) ** 2), {}

    def decode(self, z):
        return {"mean_x": self.dec(z)}


def test_vae_base_and_latent_search_move_toward_target():
    graphs = [random_graph(n=5, seed=i) for i in range(300)]
    ys = torch.tensor([float(g.y) for g in graphs])
    meta = {"node_dim": 5, "edge_dim": 3, "y_mean": float(ys.mean()), "y_std": float(ys.std())}
    model = ToyVAE(meta, VAEModel.parse({"latent_dim": 8, "hidden": 32, "layers": 2, "beta": 0.001}))
    info = fit(model, graphs[:250], graphs[250:], TrainSettings(epochs=15, batch_size=50, lr=3e-3),
               device=torch.device("cpu"), workers=0)
    assert info["best_epoch"] >= 1 and info["history"][-1]["val_prop_mse"] < 0.6
    aim = (float(ys.mean() + 1.5 * ys.std()), float("inf"))
    gen = torch.Generator().manual_seed(0)
    z0, origin = start_latents(model, graphs, 200, 0.5, aim, 0.2, gen, "cpu")
    assert z0.shape == (200, 8) and origin.count("data") == 100
    traj = optimise_latents(model, z0, aim, steps=60, lr=0.05, prior_weight=0.01, checkpoints=3)
    assert [s for s, _, _ in traj] == [20, 40, 60]
    first, last = traj[0][2], traj[-1][2]
    assert (last >= aim[0]).float().mean() > (first >= aim[0]).float().mean()
    assert (last >= aim[0]).float().mean() > 0.5
    # predictions reported by the search are the model's own, in data units
    with torch.no_grad():
        assert torch.allclose(model.predict_property(traj[-1][1]), last)


def test_device_selection():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvdesignError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(InvdesignError, match="unknown device"):
        resolve_device("tpu")


def test_latent_search_uncertainty_term_keeps_heads_in_agreement():
    """With the ensemble-variance penalty, latents reach the target where the heads agree."""
    from torch import nn


    class TwoHeads(nn.Module):
        # head 1 reads z0; head 2 reads z0 + 3 z1: they agree only on the line z1 = 0
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([[1.0, 0.0], [1.0, 3.0]]))
            self.register_buffer("y_mean", torch.tensor(0.0))
            self.register_buffer("y_std", torch.tensor(1.0))

        def head_outputs(self, z):
            return self.w @ z.T

        def predict_property(self, z):
            return self.head_outputs(z).mean(0)

    z0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    runs = {}
    for w in (0.0, 1.0):
        (_, z, pred), = optimise_latents(TwoHeads(), z0, (2.0, 2.0), steps=300, lr=0.05, prior_weight=0.0,
                                         checkpoints=1, uncertainty_weight=w)
        runs[w] = (z, pred)
    for w, (z, pred) in runs.items():
        assert torch.allclose(pred, torch.full_like(pred, 2.0), atol=0.1), w
    spread = {w: TwoHeads().head_outputs(z).std(0).mean().item() for w, (z, _) in runs.items()}
    assert spread[1.0] < 0.1 < spread[0.0]
