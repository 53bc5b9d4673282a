"""Discrete denoising diffusion over molecular graphs (node and bond types), DiGress family.

Forward process: each atom and each atom pair is independently moved toward the training
marginals, ``q(x_t | x_0) = abar_t * onehot(x_0) + (1 - abar_t) * m`` (marginal transitions,
cosine schedule). A graph transformer whose attention is modulated by edge features and a global
vector (time, property condition, cycle counts) predicts the clean graph; sampling runs the exact
posterior ``sum_x0 q(x_{t-1} | x_t, x_0) p(x_0 | x_t)`` back to t = 0.

Property guidance is classifier-free: the condition (the normalised property) is dropped for a
fraction of training graphs, and at sampling time the clean-graph log-probabilities are
``(1 + w) log p(x0 | x_t, c) - w log p(x0 | x_t)`` with guidance scale ``w`` from the config.
Everything is permutation-equivariant (the graph it returns does not depend on node order).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .dense import (NUM_BOND_CLASSES, DenseGraphGenerator, pair_mask, sample_sizes, symmetrise_upper, to_dense,
                    walk_features)
from .gnn import mlp
from .samples import MoleculeSamples
from .sampling import sample_in_batches

if TYPE_CHECKING:
    from ..config.generators import MolDiffusionModel


class _Film(nn.Module):
    def __init__(self, dy: int, d: int):
        super().__init__()
        self.mul, self.add = nn.Linear(dy, d), nn.Linear(dy, d)

    def forward(self, h, y):
        shape = (y.size(0),) + (1,) * (h.dim() - 2) + (h.size(-1),)
        return self.add(y).view(shape) + (self.mul(y).view(shape) + 1) * h


class GraphTransformerLayer(nn.Module):
    """Node, edge and global updates; attention scores are per feature and modulated by edges."""

    def __init__(self, dx: int, de: int, dy: int, heads: int, dropout: float = 0.0):
        super().__init__()
        assert dx % heads == 0, "hidden size must be divisible by the number of heads"
        self.h, self.dk = heads, dx // heads
        self.q, self.k, self.v = nn.Linear(dx, dx), nn.Linear(dx, dx), nn.Linear(dx, dx)
        self.e_mul, self.e_add = nn.Linear(de, dx), nn.Linear(de, dx)
        self.film_e, self.film_x = _Film(dy, dx), _Film(dy, dx)
        self.e_out, self.x_out = nn.Linear(dx, de), nn.Linear(dx, dx)
        self.y_out = mlp([dy + dx + de, dy, dy])
        self.norm_x1, self.norm_e1, self.norm_y1 = nn.LayerNorm(dx), nn.LayerNorm(de), nn.LayerNorm(dy)
        self.ff_x, self.ff_e, self.ff_y = mlp([dx, 2 * dx, dx]), mlp([de, 2 * de, de]), mlp([dy, 2 * dy, dy])
        self.norm_x2, self.norm_e2, self.norm_y2 = nn.LayerNorm(dx), nn.LayerNorm(de), nn.LayerNorm(dy)
        self.drop = nn.Dropout(dropout)

    def forward(self, X, E, y, mask, pmask):
        B, N, _ = X.shape
        xm, em = mask.unsqueeze(-1).float(), pmask.unsqueeze(-1).float()
        Q = self.q(X).view(B, N, 1, self.h, self.dk)
        K = self.k(X).view(B, 1, N, self.h, self.dk)
        S = (Q * K / math.sqrt(self.dk)).view(B, N, N, -1)
        S = S * (self.e_mul(E) + 1) + self.e_add(E)
        newE = self.e_out(self.film_e(S, y)) * em
        logits = S.view(B, N, N, self.h, self.dk).masked_fill(~pmask.view(B, N, N, 1, 1), -1e9)
        attn = torch.softmax(logits, dim=2) * pmask.view(B, N, N, 1, 1).float()
        V = self.v(X).view(B, 1, N, self.h, self.dk)
        newX = self.x_out(self.film_x((attn * V).sum(2).reshape(B, N, -1), y)) * xm
        n = xm.sum(1).clamp(min=1)
        pooled_x = (X * xm).sum(1) / n
        pooled_e = (E * em).sum((1, 2)) / em.sum((1, 2)).clamp(min=1)
        newy = self.y_out(torch.cat([y, pooled_x, pooled_e], -1))
        X = self.norm_x1(X + self.drop(newX))
        E = self.norm_e1(E + self.drop(newE))
        y = self.norm_y1(y + self.drop(newy))
        X = self.norm_x2(X + self.drop(self.ff_x(X))) * xm
        E = self.norm_e2(E + self.drop(self.ff_e(E))) * em
        y = self.norm_y2(y + self.drop(self.ff_y(y)))
        return X, E, y


class GraphDenoiser(nn.Module):
    def __init__(self, dx_in: int, de_in: int, dx_out: int, de_out: int, dy_in: int, hidden: int, edge_hidden: int,
                 global_hidden: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.in_x = mlp([dx_in, hidden, hidden], final_act=True)
        self.in_e = mlp([de_in, edge_hidden, edge_hidden], final_act=True)
        self.in_y = mlp([dy_in, global_hidden, global_hidden], final_act=True)
        self.layers = nn.ModuleList(GraphTransformerLayer(hidden, edge_hidden, global_hidden, heads, dropout)
                                    for _ in range(layers))
        self.out_x = mlp([hidden, hidden, dx_out])
        self.out_e = mlp([edge_hidden, edge_hidden, de_out])

    def forward(self, X, E, y, mask):
        pmask = pair_mask(mask)
        h, e, g = self.in_x(X), self.in_e(E), self.in_y(y)
        e = (e + e.transpose(1, 2)) / 2
        for layer in self.layers:
            h, e, g = layer(h, e, g, mask, pmask)
            e = (e + e.transpose(1, 2)) / 2
        lx = self.out_x(h)
        le = self.out_e(e)
        return lx, (le + le.transpose(1, 2)) / 2


def cosine_alpha_bar(T: int, s: float = 0.008) -> torch.Tensor:
    t = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    abar = (f / f[0]).clamp(min=1e-6)
    alpha = torch.ones_like(abar)
    alpha[1:] = (abar[1:] / abar[:-1]).clamp(min=1e-4, max=1.0)
    return torch.cumprod(alpha, 0).float(), alpha.float()


class GraphDiffusion(DenseGraphGenerator):
    """Molecule generator: marginal-transition discrete diffusion with classifier-free guidance."""

    # the last transformer layer's global-feature update feeds nothing: DDP must look for unused parameters
    ddp_find_unused_parameters = True

    def __init__(self, meta: dict, cfg: MolDiffusionModel):
        super().__init__(meta, cfg)
        st = meta["dense"]
        self.register_buffer("node_m", torch.tensor(st["node_marginals"], dtype=torch.float32))
        self.register_buffer("edge_m", torch.tensor(st["edge_marginals"], dtype=torch.float32))
        self.de = NUM_BOND_CLASSES
        self.T = cfg.diffusion_steps
        abar, alpha = cosine_alpha_bar(self.T)
        self.register_buffer("abar", abar)
        self.register_buffer("alpha", alpha)
        self.cond_drop = cfg.condition_dropout
        self.edge_weight = cfg.edge_loss_weight
        self.net = GraphDenoiser(self.dx + 5, self.de, self.dx, self.de, 1 + 2 + 5, cfg.hidden, cfg.edge_hidden,
                                 cfg.global_hidden, cfg.layers, cfg.heads, cfg.dropout)

    # ------------------------------------------------------------------ network
    def _logits(self, Xt, Et, mask, t, cond, has_cond):
        A = 1.0 - Et[..., 0]
        node_f, graph_f = walk_features(A, mask, self.max_nodes)
        y = torch.cat([t.float().view(-1, 1) / self.T, cond.view(-1, 1) * has_cond.view(-1, 1),
                       has_cond.float().view(-1, 1), graph_f], -1)
        return self.net(torch.cat([Xt, node_f], -1), Et, y, mask)

    def _noisy(self, X, E, mask, t, gen=None):
        ab = self.abar[t].view(-1, 1, 1)
        px = ab * X + (1 - ab) * self.node_m
        xt = torch.multinomial(px.view(-1, self.dx), 1, generator=gen).view(X.shape[:2])
        ab = ab.view(-1, 1, 1, 1)
        pe = ab * E + (1 - ab) * self.edge_m
        et = torch.multinomial(pe.view(-1, self.de), 1, generator=gen).view(E.shape[:3])
        Xt = F.one_hot(xt, self.dx).float() * mask.unsqueeze(-1)
        Et = symmetrise_upper(F.one_hot(et, self.de).float()) * pair_mask(mask).unsqueeze(-1)
        return Xt, Et

    def _condition(self, batch, B, device):
        y = batch.y.view(-1)
        c = ((y - self.y_mean) / self.y_std).nan_to_num(0.0)
        has = torch.isfinite(y)
        if self.training and self.cond_drop > 0:
            has = has & (torch.rand(B, device=device) >= self.cond_drop)
        return c, has

    def loss(self, batch):
        X, E, mask = to_dense(batch, self.lut, self.max_nodes)
        B = X.size(0)
        t = torch.randint(1, self.T + 1, (B,), device=X.device)
        Xt, Et = self._noisy(X, E, mask, t)
        c, has = self._condition(batch, B, X.device)
        lx, le = self._logits(Xt, Et, mask, t, c, has)
        pm = pair_mask(mask)
        ce_x = F.cross_entropy(lx[mask], X[mask].argmax(-1))
        ce_e = F.cross_entropy(le[pm], E[pm].argmax(-1))
        loss = ce_x + self.edge_weight * ce_e
        return loss, {"ce_atoms": float(ce_x.detach()), "ce_bonds": float(ce_e.detach())}

    # ------------------------------------------------------------------ sampling
    def _posterior(self, prob0, zt_onehot, t, s, m):
        """p(z_s | z_t) = sum_x0 q(z_s | z_t, x0) p(x0 | z_t) for marginal transitions; shapes [..., K]."""
        # q(z_t | z_s) for s < t - 1 is again a marginal transition, with alpha_{t|s} = abar_t / abar_s,
        # so sampling can skip steps (``sample_steps`` < T) with the same exact posterior
        ab_s, ab_t = self.abar[s], self.abar[t]
        a_t = (ab_t / ab_s).clamp(max=1.0)
        shp = (-1,) + (1,) * (prob0.dim() - 1)
        a_t, ab_s, ab_t = a_t.view(shp), ab_s.view(shp), ab_t.view(shp)
        m_zt = (zt_onehot * m).sum(-1, keepdim=True)
        left = a_t * zt_onehot + (1 - a_t) * m_zt                     # q(z_t | z_s) over z_s
        qt0 = ab_t * zt_onehot + (1 - ab_t) * m_zt                    # q(z_t | x0) over x0
        w = prob0 / qt0.clamp(min=1e-12)
        # sum_x0 w(x0) * qbar_s(x0, z_s) = ab_s * w(z_s) + (1 - ab_s) * m(z_s) * sum(w)
        right = ab_s * w + (1 - ab_s) * m * w.sum(-1, keepdim=True)
        p = (left * right).clamp(min=0)
        return p / p.sum(-1, keepdim=True).clamp(min=1e-12)

    @torch.no_grad()
    def sample(self, count: int | None = None, *, sizes: torch.Tensor | None = None, target=None,
               guidance_scale: float, sample_steps: int, generator: torch.Generator | None = None,
               batch_size: int = 1024, progress=None) -> dict:
        """Sample graphs. ``target``: property values (data units), one per graph or one for all;
        ``guidance_scale`` w and ``sample_steps`` (at most ``diffusion_steps``) come from the sampling settings.

        Returns :class:`MoleculeSamples` graphs on the CPU (atom classes index ``meta['elements']``).
        """
        if sample_steps > self.T:
            raise ValueError(f"sample_steps {sample_steps} > diffusion_steps {self.T}")
        if sizes is None:
            sizes = sample_sizes(self.n_hist.cpu(), int(count), generator)
        sizes = sizes.long().cpu()
        w = float(guidance_scale)
        return sample_in_batches(sizes, target, batch_size,
                                 lambda sz, t: self._sample_batch(sz, t, w, int(sample_steps), generator), progress)

    def _sample_batch(self, sizes, target, w, n_steps, generator):
        dev = self.abar.device
        B, N = len(sizes), self.max_nodes
        mask = (torch.arange(N).view(1, -1) < sizes.view(-1, 1)).to(dev)
        pm = pair_mask(mask)
        xs = torch.multinomial(self.node_m.cpu().expand(B * N, -1), 1, generator=generator).view(B, N).to(dev)
        es = torch.multinomial(self.edge_m.cpu().expand(B * N * N, -1), 1, generator=generator).view(B, N, N).to(dev)
        Xt = F.one_hot(xs, self.dx).float() * mask.unsqueeze(-1)
        Et = symmetrise_upper(F.one_hot(es, self.de).float()) * pm.unsqueeze(-1)
        if target is not None:
            c = ((target.to(dev) - self.y_mean) / self.y_std)
            has = torch.ones(B, dtype=torch.bool, device=dev)
        else:
            c, has = torch.zeros(B, device=dev), torch.zeros(B, dtype=torch.bool, device=dev)
        grid = torch.linspace(self.T, 0, n_steps + 1).round().long().unique_consecutive().tolist()
        for step, prev in zip(grid[:-1], grid[1:]):
            t = torch.full((B,), step, device=dev, dtype=torch.long)
            lx, le = self._logits(Xt, Et, mask, t, c, has)
            lx, le = F.log_softmax(lx, -1), F.log_softmax(le, -1)
            if target is not None and w != 0:
                ux, ue = self._logits(Xt, Et, mask, t, c, torch.zeros_like(has))
                lx = (1 + w) * lx - w * F.log_softmax(ux, -1)
                le = (1 + w) * le - w * F.log_softmax(ue, -1)
            px, pe = torch.softmax(lx, -1), torch.softmax(le, -1)
            s = torch.full_like(t, prev)
            qx = self._posterior(px, Xt, t, s, self.node_m)
            qe = self._posterior(pe, Et, t, s, self.edge_m)
            # padding rows have all-zero one-hots; give them any valid distribution before sampling
            qx = torch.where(mask.unsqueeze(-1), qx, self.node_m)
            qe = torch.where(pm.unsqueeze(-1), qe, self.edge_m)
            xs = torch.multinomial(qx.view(-1, self.dx).cpu(), 1, generator=generator).view(B, N).to(dev)
            es = torch.multinomial(qe.view(-1, self.de).cpu(), 1, generator=generator).view(B, N, N).to(dev)
            Xt = F.one_hot(xs, self.dx).float() * mask.unsqueeze(-1)
            Et = symmetrise_upper(F.one_hot(es, self.de).float()) * pm.unsqueeze(-1)
        atoms = torch.where(mask, self.atom_classes(dev)[Xt.argmax(-1)], torch.full_like(xs, -1))
        bonds = Et.argmax(-1) * pm.long()
        return MoleculeSamples(atom_classes=atoms.cpu(), bonds=bonds.cpu())
