"""Graph VAE skeleton shared by the molecule and crystal VAEs.

Encoder: invariant :class:`GraphEncoder` -> (mu, logvar). A property head on the
latent mean is trained jointly so that the latent space is organised by the
target property, which is what latent-space optimisation climbs. Subclasses add
a domain decoder by implementing ``reconstruction_loss(z, batch)`` and ``decode(z)``.
"""

from __future__ import annotations

import torch
from torch import nn

from typing import TYPE_CHECKING

from .gnn import GraphEncoder, mlp

if TYPE_CHECKING:
    from ..config.generators import VAEModel


class GraphVAE(nn.Module):
    def __init__(self, meta: dict, cfg: VAEModel):
        super().__init__()
        self.meta = dict(meta)
        self.settings = cfg
        hidden = cfg.hidden
        self.latent_dim = cfg.latent_dim
        self.encoder = GraphEncoder(meta["node_dim"], meta["edge_dim"], hidden=hidden, layers=cfg.layers,
                                    out_dim=2 * self.latent_dim, dropout=cfg.dropout, edge_rbf=meta.get("edge_rbf"))
        # an ensemble of property heads: their spread tells latent search where the heads disagree
        # (regions the data does not cover), which plain gradient ascent on one head happily exploits
        self.property_head = mlp([self.latent_dim, hidden, hidden, 1])
        self.extra_heads = nn.ModuleList(mlp([self.latent_dim, hidden, hidden, 1])
                                         for _ in range(cfg.property_heads - 1))
        self.beta_max = cfg.beta
        self.property_weight = cfg.property_weight
        self.register_buffer("y_mean", torch.tensor(float(meta.get("y_mean", 0.0))))
        self.register_buffer("y_std", torch.tensor(float(meta.get("y_std", 1.0))))
        self.beta = self.beta_max

    # KL annealing: ramp beta over the first half of training
    def set_epoch(self, epoch: int, epochs: int) -> None:
        self.beta = self.beta_max * min(1.0, epoch / max(1.0, 0.5 * epochs))

    def encode(self, batch):
        h = self.encoder(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 10)

    def head_outputs(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised predictions of every property head, [heads, batch]."""
        return torch.stack([h(z).squeeze(-1) for h in (self.property_head, *self.extra_heads)])

    def predict_property(self, z: torch.Tensor) -> torch.Tensor:
        """Property in data units (e.g. eV, GPa) predicted from latent vectors (ensemble mean)."""
        return self.head_outputs(z).mean(0) * self.y_std + self.y_mean

    def predict_property_std(self, z: torch.Tensor) -> torch.Tensor:
        """Spread of the ensemble (data units); zero with a single head."""
        out = self.head_outputs(z)
        return (out.std(0) if len(out) > 1 else torch.zeros_like(out[0])) * self.y_std

    def reconstruction_loss(self, z, batch) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> dict:
        raise NotImplementedError

    def loss(self, batch):
        mu, logvar = self.encode(batch)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon, metrics = self.reconstruction_loss(z, batch)
        kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))
        y = batch.y.view(-1)
        known = torch.isfinite(y)
        if known.any():
            target = (y[known] - self.y_mean) / self.y_std
            heads = self.head_outputs(mu)[:, known]
            if self.training and len(heads) > 1:
                # each head sees its own random 80% of the batch (bootstrap-like), so they disagree
                # off the data instead of collapsing onto one function
                keep = (torch.rand(heads.shape, device=heads.device) < 0.8).float()
                prop = torch.sum(keep * (heads - target) ** 2) / keep.sum().clamp(min=1)
            else:
                prop = torch.mean((heads - target) ** 2)
        else:  # no labels in this batch: the heads stay in the graph with zero gradient (DDP expects every one)
            prop = self.head_outputs(mu).sum() * 0.0
        total = recon + self.beta * kl + self.property_weight * prop
        metrics.update(recon=float(recon.detach()), kl=float(kl.detach()), prop_mse=float(prop.detach()))
        # model selection uses the beta-independent objective so annealing does not bias it
        metrics["select"] = float((recon + self.beta_max * kl + self.property_weight * prop).detach())
        return total, metrics
