"""Dense (padded) molecular graphs for generators that output whole graphs.

A molecule is a node-type vector and a symmetric bond-type matrix: ``X[b, i]`` is an atom class,
``E[b, i, j]`` is 0 for no bond and 1/2/3 for a single/double/triple (Kekule) bond, padded to the
largest molecule with a node mask. The classes come from the shared featurization
(``Data.atom_type`` indexes ``meta["elements"]``, ``Data.bond_order`` holds Kekule orders), so the
diffusion model, the EBM and the VAE all read the same graphs. torch only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import to_dense_adj, to_dense_batch

NUM_BOND_CLASSES = 4  # none, single, double, triple


def dense_statistics(graphs: list) -> dict:
    """Marginals and size histogram of training graphs, stored in ``meta['dense']``.

    ``atom_classes``: indices into ``meta['elements']`` that occur (the model's node classes);
    ``node_marginals`` / ``edge_marginals``: class frequencies (edges over all atom pairs, bond-less
    pairs included) used as the limit distribution of the diffusion; ``n_hist``: molecules per size.
    """
    if not graphs or not hasattr(graphs[0], "atom_type") or not hasattr(graphs[0], "bond_order"):
        raise ValueError("graphs lack atom_type/bond_order; re-run the featurize rule with this version")
    atom_counts: dict[int, int] = {}
    bond_counts = torch.zeros(NUM_BOND_CLASSES, dtype=torch.float64)
    max_n = max(int(g.num_nodes) for g in graphs)
    n_hist = torch.zeros(max_n + 1, dtype=torch.float64)
    for g in graphs:
        n = int(g.num_nodes)
        n_hist[n] += 1
        for t in g.atom_type.tolist():
            atom_counts[t] = atom_counts.get(t, 0) + 1
        orders = torch.bincount(g.bond_order.view(-1), minlength=NUM_BOND_CLASSES).double()
        bond_counts += orders  # each bond appears twice (both directions), as do ordered pairs below
        bond_counts[0] += n * (n - 1) - int(g.bond_order.numel())
    classes = sorted(atom_counts)
    node_m = torch.tensor([atom_counts[c] for c in classes], dtype=torch.float64)
    return {"atom_classes": classes, "node_marginals": (node_m / node_m.sum()).tolist(),
            "edge_marginals": (bond_counts / bond_counts.sum()).tolist(),
            "n_hist": n_hist.tolist(), "max_nodes": max_n}


class DenseGraphGenerator(nn.Module):
    """Shared set-up of whole-graph generators: classes, size histogram and property scaling."""

    def __init__(self, meta: dict, cfg):
        super().__init__()
        if "dense" not in meta:
            raise ValueError("graph statistics (meta['dense']) missing; re-run the featurize rule")
        self.meta, self.settings = dict(meta), cfg
        st = meta["dense"]
        self.max_nodes = int(st["max_nodes"])
        self.dx = len(st["atom_classes"])
        self.register_buffer("lut", class_lookup(st, len(meta["elements"])))
        self.register_buffer("n_hist", torch.tensor(st["n_hist"], dtype=torch.float32))
        self.register_buffer("y_mean", torch.tensor(float(meta.get("y_mean", 0.0))))
        self.register_buffer("y_std", torch.tensor(float(meta.get("y_std", 1.0))))

    def atom_classes(self, device) -> torch.Tensor:
        """Model class -> element index."""
        return torch.tensor(self.meta["dense"]["atom_classes"], device=device)


def class_lookup(stats: dict, num_elements: int) -> torch.Tensor:
    """Map element index -> model class index (-1 for elements the training data did not have)."""
    lut = torch.full((num_elements,), -1, dtype=torch.long)
    for k, e in enumerate(stats["atom_classes"]):
        lut[e] = k
    return lut


def to_dense(batch, lut: torch.Tensor, max_nodes: int):
    """PyG batch -> (X one-hot [B,N,dx], E one-hot [B,N,N,4], node mask [B,N])."""
    cls = lut.to(batch.atom_type.device)[batch.atom_type]
    if bool((cls < 0).any()):
        raise ValueError("a graph has an element the generator was not trained on")
    x, mask = to_dense_batch(cls, batch.batch, fill_value=0, max_num_nodes=max_nodes)
    X = F.one_hot(x, len(lut[lut >= 0])).float() * mask.unsqueeze(-1)
    e = to_dense_adj(batch.edge_index, batch.batch, edge_attr=batch.bond_order.view(-1),
                     max_num_nodes=max_nodes).long()
    E = F.one_hot(e, NUM_BOND_CLASSES).float()
    return X, E, mask


def pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """[B,N,N] True for pairs of distinct real atoms."""
    m = mask.unsqueeze(1) & mask.unsqueeze(2)
    eye = torch.eye(mask.size(1), dtype=torch.bool, device=mask.device).unsqueeze(0)
    return m & ~eye


def symmetrise_upper(E: torch.Tensor) -> torch.Tensor:
    """Copy the strict upper triangle of E[B,N,N,...] onto the lower one (diagonal cleared to class 0)."""
    n = E.size(1)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=E.device), diagonal=1)
    shape = (1, n, n) + (1,) * (E.dim() - 3)
    up = upper.view(shape)
    E_up = torch.where(up, E, torch.zeros_like(E))
    return E_up + E_up.transpose(1, 2)


def sample_sizes(n_hist, count: int, generator=None) -> torch.Tensor:
    p = torch.as_tensor(n_hist, dtype=torch.float64)
    return torch.multinomial(p / p.sum(), count, replacement=True, generator=generator)


def walk_features(A: torch.Tensor, mask: torch.Tensor, max_nodes: int):
    """Cheap structural features of a (noisy) adjacency: degree and closed-walk counts of length 3-6.

    Per node: degree and diag(A^k); per graph: size and trace(A^k). Normalised by the size so they
    stay O(1). Permutation-equivariant (node) and invariant (graph).
    """
    A = A * pair_mask(mask).float()
    deg = A.sum(-1, keepdim=True)
    feats, traces = [deg / 4.0], []
    Ak = A
    for k in range(2, 7):
        Ak = Ak @ A
        if k >= 3:
            d = torch.diagonal(Ak, dim1=1, dim2=2)
            feats.append((d / (2.0 * k)).unsqueeze(-1) / 4.0)
            traces.append(d.sum(-1, keepdim=True) / (2.0 * k * max_nodes))
    n = mask.sum(-1, keepdim=True).float() / max_nodes
    return torch.cat(feats, -1) * mask.unsqueeze(-1), torch.cat([n] + traces, -1)
