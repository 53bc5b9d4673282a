"""Invariant graph encoder shared by generators and property predictors.

Node and edge features are scalars that do not change under rotation, translation
or atom re-ordering; message passing is permutation-equivariant and the readout
(mean + max pooling plus log atom count) is permutation-invariant, so graph
embeddings are invariant to all three.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GINEConv, global_max_pool, global_mean_pool


def mlp(sizes: list[int], act: type[nn.Module] = nn.SiLU, final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            layers.append(act())
    return nn.Sequential(*layers)


class GaussianExpansion(nn.Module):
    """Expand distances [E, 1] on ``num_gaussians`` evenly spaced centres in [0, cutoff]."""

    def __init__(self, cutoff: float, num_gaussians: int):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, float(cutoff), int(num_gaussians)))
        self.width = float(cutoff) / (int(num_gaussians) - 1)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((d.view(-1, 1) - self.centers) ** 2) / (2 * self.width ** 2))


class GraphEncoder(nn.Module):
    """GINE message passing with edge features, residual connections and pooled readout.

    ``forward(x, edge_index, edge_attr, batch)`` returns one ``out_dim`` vector per graph.
    """

    def __init__(self, node_dim: int, edge_dim: int, hidden: int = 128, layers: int = 3,
                 out_dim: int = 128, dropout: float = 0.0, edge_rbf: dict | None = None):
        super().__init__()
        # optional Gaussian expansion of a scalar edge distance, done here rather than on disk
        self.rbf = GaussianExpansion(edge_rbf["cutoff"], edge_rbf["num_gaussians"]) if edge_rbf else None
        self.node_in = nn.Linear(node_dim, hidden)
        self.edge_in = nn.Linear(max(edge_dim, 1), hidden)
        self.convs = nn.ModuleList(
            GINEConv(mlp([hidden, hidden, hidden]), edge_dim=hidden) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.readout = mlp([2 * hidden + 1, hidden, out_dim])

    def node_embeddings(self, x, edge_index, edge_attr):
        h = self.node_in(x)
        if edge_attr is None or edge_attr.numel() == 0:
            edge_attr = torch.zeros(edge_index.size(1), self.edge_in.in_features, device=x.device)
        if self.rbf is not None:
            edge_attr = self.rbf(edge_attr)
        e = self.edge_in(edge_attr)
        for conv, norm in zip(self.convs, self.norms):
            h = h + self.dropout(torch.nn.functional.silu(norm(conv(h, edge_index, e))))
        return h

    def forward(self, x, edge_index, edge_attr, batch):
        h = self.node_embeddings(x, edge_index, edge_attr)
        n_graphs = int(batch.max()) + 1 if batch.numel() else 0
        counts = torch.bincount(batch, minlength=n_graphs).clamp(min=1).to(h.dtype)
        pooled = torch.cat(
            [global_mean_pool(h, batch, n_graphs), global_max_pool(h, batch, n_graphs),
             torch.log(counts).unsqueeze(-1)],
            dim=-1,
        )
        return self.readout(pooled)
