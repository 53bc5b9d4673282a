"""Independent graph property predictor.

Trained on the featurized graphs (not on the generator's latent space) so that the
property it assigns to a candidate is an opinion independent of the guidance signal.
"""

from __future__ import annotations

import torch
from torch import nn

from typing import TYPE_CHECKING

from .gnn import GraphEncoder, mlp

if TYPE_CHECKING:
    from ..config.generators import PredictorModel


class GraphPropertyPredictor(nn.Module):
    def __init__(self, meta: dict, cfg: PredictorModel):
        super().__init__()
        self.meta = dict(meta)
        self.settings = cfg
        hidden = cfg.hidden
        self.encoder = GraphEncoder(meta["node_dim"], meta["edge_dim"], hidden=hidden, layers=cfg.layers,
                                    out_dim=hidden, dropout=cfg.dropout, edge_rbf=meta.get("edge_rbf"))
        self.head = mlp([hidden, hidden, 1])
        self.hidden_features = list(meta.get("sample_unavailable_node_features", []))
        self.register_buffer("y_mean", torch.tensor(float(meta.get("y_mean", 0.0))))
        self.register_buffer("y_std", torch.tensor(float(meta.get("y_std", 1.0))))

    def forward(self, batch) -> torch.Tensor:
        """Normalised prediction, one per graph."""
        x = batch.x
        if self.hidden_features:
            # features a generated sample does not have (e.g. Mulliken charges) are never used,
            # so that training and candidate scoring see the same inputs
            x = x.clone()
            x[:, self.hidden_features] = 0.0
        h = self.encoder(x, batch.edge_index, batch.edge_attr, batch.batch)
        return self.head(torch.nn.functional.silu(h)).squeeze(-1)

    def predict(self, batch) -> torch.Tensor:
        """Prediction in data units."""
        return self.forward(batch) * self.y_std + self.y_mean

    def loss(self, batch):
        y = (batch.y.view(-1) - self.y_mean) / self.y_std
        known = torch.isfinite(y)
        pred = self.forward(batch)
        mse = torch.mean((pred[known] - y[known]) ** 2) if known.any() else pred.sum() * 0.0
        mae = torch.mean(torch.abs(pred[known] - y[known])) * self.y_std if known.any() else mse.detach()
        return mse, {"mae": float(mae.detach())}


@torch.no_grad()
def predict_graphs(model: GraphPropertyPredictor, graphs: list, device, batch_size: int = 256):
    """Predictions (data units) for a list of graphs; returns a CPU tensor."""
    from torch_geometric.loader import DataLoader

    model.eval().to(device)
    out = []
    for batch in DataLoader(graphs, batch_size=batch_size):
        out.append(model.predict(batch.to(device)).cpu())
    return torch.cat(out) if out else torch.empty(0)
