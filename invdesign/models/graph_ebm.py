"""Energy-based model over molecular graphs (GraphEBM family), sampled with Langevin dynamics.

A graph is its dequantised one-hot atom classes ``X [B,N,dx]`` and bond classes ``A [B,N,N,4]``
(channel 0 = no bond). A relational message-passing network with a summed readout gives the
energy ``E(X, A)``, so the energy is invariant to atom order. Training is contrastive divergence:
data graphs are pushed down, short-run Langevin samples started from noise are pushed up, with a
square penalty on both energies that keeps their scale fixed.

Conditional sampling adds a property energy ``w * ((f(X, A) - c) / tol)^2`` where ``f`` is a
property head trained on the same dequantised inputs, so Langevin moves toward graphs that are
both likely and on target. The energy of any finished molecule (from any generator) compared with
the energies of the training molecules is an out-of-distribution score (``ood_z``: standard
deviations above the training mean; large = unlike the training data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .dense import NUM_BOND_CLASSES, DenseGraphGenerator, pair_mask, sample_sizes, to_dense
from .gnn import mlp
from .samples import MoleculeSamples
from .sampling import EnergyModelMixin, sample_in_batches

if TYPE_CHECKING:
    from ..config.generators import MolEBMModel


class RelationalEnergy(nn.Module):
    """Permutation-invariant scalar of a dense (continuous) graph."""

    def __init__(self, dx: int, hidden: int, layers: int):
        super().__init__()
        self.inp = nn.Linear(dx, hidden)
        self.rel = nn.ModuleList(nn.Linear(hidden, hidden * (NUM_BOND_CLASSES - 1), bias=False)
                                 for _ in range(layers))
        self.self_loop = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.out = mlp([hidden, hidden, 1])
        self.hidden = hidden

    def forward(self, X, A, mask):
        m = mask.unsqueeze(-1).float()
        Ab = A[..., 1:] * pair_mask(mask).unsqueeze(-1).float()          # bonded channels only
        h = self.inp(X) * m
        B, N, _ = X.shape
        for rel, loop in zip(self.rel, self.self_loop):
            msgs = rel(h).view(B, N, NUM_BOND_CLASSES - 1, self.hidden)  # one transform per bond class
            agg = torch.einsum("bijr,bjrh->bih", Ab, msgs)
            h = F.silu(agg + loop(h)) * m
        return self.out(h.sum(1)).squeeze(-1)


class GraphEBM(EnergyModelMixin, DenseGraphGenerator):
    def __init__(self, meta: dict, cfg: MolEBMModel):
        super().__init__(meta, cfg)
        # training-data energy statistics for the OOD score (running averages during training)
        self._ebm_settings(cfg)
        hidden, layers = cfg.hidden, cfg.layers
        self.energy = RelationalEnergy(self.dx, hidden, layers)
        self.property_net = RelationalEnergy(self.dx, hidden, layers)

    # ------------------------------------------------------------------ inputs
    def _dense(self, batch, max_nodes=None):
        n = int(torch.bincount(batch.batch).max()) if max_nodes is None else max_nodes
        return to_dense(batch, self.lut, n)

    def _dequantise(self, X, E, mask):
        pm = pair_mask(mask).unsqueeze(-1).float()
        noise_e = torch.rand_like(E)
        noise_e = (noise_e + noise_e.transpose(1, 2)) / 2
        return ((X + self.dequant * torch.rand_like(X)) * mask.unsqueeze(-1).float(),
                (E + self.dequant * noise_e) * pm)

    def _noise_init(self, mask, gen=None):
        B, N = mask.shape
        X = torch.rand(B, N, self.dx, generator=gen).to(mask.device) * (1 + self.dequant)
        E = torch.rand(B, N, N, NUM_BOND_CLASSES, generator=gen).to(mask.device) * (1 + self.dequant)
        E = (E + E.transpose(1, 2)) / 2
        return X * mask.unsqueeze(-1).float(), E * pair_mask(mask).unsqueeze(-1).float()

    def _langevin(self, X, E, mask, steps, target=None, weight=0.0, tolerance=1.0, create_graph=False):
        pm = pair_mask(mask).unsqueeze(-1).float()
        xm = mask.unsqueeze(-1).float()
        for _ in range(steps):
            X = X.detach().requires_grad_(True)
            E = E.detach().requires_grad_(True)
            with torch.enable_grad():
                energy = self.energy(X, E, mask)
                if target is not None and weight > 0:
                    pred = self.property_net(X, E, mask)
                    energy = energy + self._property_energy(pred, target, weight, tolerance)
                gx, ge = torch.autograd.grad(energy.sum(), [X, E], create_graph=create_graph)
            ge = (ge + ge.transpose(1, 2)) / 2
            nx = torch.randn_like(X) * self.noise
            ne = torch.randn_like(E) * self.noise
            ne = (ne + ne.transpose(1, 2)) / 2
            X = ((X - self.step_size * gx.clamp(-1e3, 1e3) / 2 + nx).clamp(0, 1 + self.dequant)) * xm
            E = ((E - self.step_size * ge.clamp(-1e3, 1e3) / 2 + ne).clamp(0, 1 + self.dequant)) * pm
        return X.detach(), E.detach()

    # ------------------------------------------------------------------ training
    def loss(self, batch):
        X, E, mask = self._dense(batch, self.max_nodes)
        Xp, Ep = self._dequantise(X, E, mask)
        Xn, En = self._noise_init(mask)
        was = self.training
        self.eval()  # Langevin chains see the current energy without dropout-like randomness
        Xn, En = self._langevin(Xn, En, mask, self.train_steps)
        self.train(was)
        e_pos = self.energy(Xp, Ep, mask)
        e_neg = self.energy(Xn, En, mask)
        return self._contrastive_loss(e_pos, e_neg, self.property_net(Xp, Ep, mask), batch.y)

    # ------------------------------------------------------------------ use
    @torch.no_grad()
    def score_graphs(self, batch) -> torch.Tensor:
        """Energy of finished molecules (one-hot at the dequantisation midpoint); lower = more typical."""
        X, E, mask = self._dense(batch)
        off = self.dequant / 2
        Xc = (X + off) * mask.unsqueeze(-1).float()
        Ec = (E + off) * pair_mask(mask).unsqueeze(-1).float()
        return self.energy(Xc, Ec, mask)

    @torch.no_grad()
    def sample(self, count: int | None = None, *, sizes=None, target=None, guidance_scale: float, steps: int,
               property_tolerance: float, generator: torch.Generator | None = None, batch_size: int = 1024,
               progress=None) -> dict:
        """``steps`` Langevin steps from noise. ``target`` (data units, one or one per graph) adds the property
        energy ``guidance_scale * ((f - c) / property_tolerance)^2``."""
        if sizes is None:
            sizes = sample_sizes(self.n_hist.cpu(), int(count), generator)
        sizes = sizes.long().cpu()
        w, tol = float(guidance_scale), float(property_tolerance)
        dev = self.n_hist.device

        def one_batch(sz, tgt):
            mask = (torch.arange(self.max_nodes).view(1, -1) < sz.view(-1, 1)).to(dev)
            X, E = self._noise_init(mask, generator)
            c = None if tgt is None else (tgt.to(dev) - self.y_mean) / self.y_std
            X, E = self._langevin(X, E, mask, int(steps), c, w, tol)
            pred = self.property_net(X, E, mask) * self.y_std + self.y_mean
            pm = pair_mask(mask)
            atoms = torch.where(mask, self.atom_classes(dev)[X.argmax(-1)],
                                torch.full_like(mask, -1, dtype=torch.long))
            Es = (E + E.transpose(1, 2)) / 2
            bonds = Es.argmax(-1) * pm.long()
            scores = (Es[..., 1:].max(-1).values - Es[..., 0]) * pm.float()
            return MoleculeSamples(atom_classes=atoms.cpu(), bonds=bonds.cpu(), bond_scores=scores.cpu(),
                                   valency_correction=True, property_pred=pred.cpu())

        return sample_in_batches(sizes, target, batch_size, one_batch, progress)
