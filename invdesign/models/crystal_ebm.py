"""Energy-based model over periodic crystals, sampled with Langevin dynamics on types, coordinates and cell.

A cell is its dequantised one-hot atom types ``A [B,M,T]``, fractional coordinates ``F [B,M,3]`` on the
unit torus and six standardised lattice parameters ``L [B,6]`` (log lengths, angles). The energy
network is the periodic message-passing stack of the crystal diffusion model (pair messages see
Fourier features of fractional *differences* and the lattice parameters), read out by a sum over
atoms, so the energy is invariant to rotation, to translation (by any vector, lattice vectors
included) and to atom order.

Training is contrastive divergence, as for the molecule EBM: data cells are pushed down and
short-run Langevin samples started from noise are pushed up, with a square penalty holding the energy
scale. Langevin moves wrap the coordinates back onto the torus. Conditional sampling adds a property
energy ``w * ((f(A, F, L) - c) / tol)^2`` from a property head trained on the same inputs. The energy
of a finished structure, against the training cells' energies, is its out-of-distribution score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .crystal_diffusion import CellGenerator, PeriodicLayer, allowed_elements, fourier
from .gnn import mlp
from .samples import CrystalSamples
from .sampling import EnergyModelMixin, sample_in_batches

if TYPE_CHECKING:
    from ..config.generators import CrystalEBMModel


class PeriodicEnergy(nn.Module):
    """Scalar of a (continuous) cell: invariant to rotation, translation and atom order."""

    def __init__(self, n_types: int, hidden: int, layers: int, n_fourier: int):
        super().__init__()
        self.inp = nn.Linear(n_types, hidden)
        self.ctx = mlp([6, hidden, hidden])
        self.layers = nn.ModuleList(PeriodicLayer(hidden, n_fourier) for _ in range(layers))
        self.out = mlp([hidden, hidden, 1])
        self.n_fourier = n_fourier

    def forward(self, A, Fr, L, mask):
        m = mask.unsqueeze(-1).float()
        h = (self.inp(A) + self.ctx(L).unsqueeze(1)) * m
        ff = fourier(Fr.unsqueeze(1) - Fr.unsqueeze(2), self.n_fourier)
        for layer in self.layers:
            h = layer(h, ff, L, mask)
        return self.out(h).mul(m).sum((1, 2))


class CrystalEBM(EnergyModelMixin, CellGenerator):
    score_inputs = ("types_t", "frac_t", "lat_t")  # graph attributes score_graphs reads

    def __init__(self, meta: dict, cfg: CrystalEBMModel):
        super().__init__(meta, cfg)
        hidden, layers, n_fourier = cfg.hidden, cfg.layers, cfg.fourier_features
        self.energy = PeriodicEnergy(self.n_types, hidden, layers, n_fourier)
        self.property_net = PeriodicEnergy(self.n_types, hidden, layers, n_fourier)
        self._ebm_settings(cfg)
        self.coord_step = cfg.coordinate_step_scale
        self.max_move = cfg.langevin_max_move

    # ------------------------------------------------------------------ inputs
    def _noise_init(self, mask, gen=None):
        B, M = mask.shape
        dev = mask.device
        A = torch.rand(B, M, self.n_types, generator=gen).to(dev) * (1 + self.dequant)
        Fr = torch.rand(B, M, 3, generator=gen).to(dev)
        L = torch.randn(B, 6, generator=gen).to(dev)
        return A * mask.unsqueeze(-1).float(), Fr, L

    def _total(self, A, Fr, L, mask, target, weight, tolerance):
        energy = self.energy(A, Fr, L, mask)
        if target is not None and weight > 0:
            pred = self.property_net(A, Fr, L, mask)
            energy = energy + self._property_energy(pred, target, weight, tolerance)
        return energy

    def _langevin(self, A, Fr, L, mask, steps, target=None, weight=0.0, tolerance=1.0, gen=None):
        m = mask.unsqueeze(-1).float()

        def randn(x):
            return torch.randn(x.shape, generator=gen).to(x.device) if gen is not None else torch.randn_like(x)

        for _ in range(steps):
            A, Fr, L = (v.detach().requires_grad_(True) for v in (A, Fr, L))
            with torch.enable_grad():
                e = self._total(A, Fr, L, mask, target, weight, tolerance)
                ga, gf, gl = torch.autograd.grad(e.sum(), [A, Fr, L])
            # clipped Langevin: no coordinate moves more than max_move per step, however steep the energy
            # (the property term with a tight tolerance is steep); coordinates move on the torus with a
            # smaller step, since one fractional unit spans the whole cell
            move = self.max_move
            A = ((A - (self.step_size * ga / 2).clamp(-move, move) + self.noise * randn(A))
                 .clamp(0, 1 + self.dequant)) * m
            Fr = (Fr - (self.coord_step * self.step_size * gf / 2).clamp(-self.coord_step * move, self.coord_step * move)
                  + self.coord_step * self.noise * randn(Fr)) % 1.0
            L = (L - (self.step_size * gl / 2).clamp(-move, move) + self.noise * randn(L)).clamp(-4, 4)
        return A.detach(), Fr.detach(), L.detach()

    # ------------------------------------------------------------------ training
    def loss(self, batch):
        A, Fr, L, mask = self._targets(batch)
        Ap = (A + self.dequant * torch.rand_like(A)) * mask.unsqueeze(-1).float()
        An, Fn, Ln = self._noise_init(mask)
        was = self.training
        self.eval()
        An, Fn, Ln = self._langevin(An, Fn, Ln, mask, self.train_steps)
        self.train(was)
        e_pos = self.energy(Ap, Fr, L, mask)
        e_neg = self.energy(An, Fn, Ln, mask)
        return self._contrastive_loss(e_pos, e_neg, self.property_net(Ap, Fr, L, mask), batch.y)

    # ------------------------------------------------------------------ use
    @torch.no_grad()
    def score_graphs(self, batch) -> torch.Tensor:
        """Energy of finished structures (one-hot types at the dequantisation midpoint); lower = more typical."""
        A, Fr, L, mask = self._targets(batch)
        return self.energy((A + self.dequant / 2) * mask.unsqueeze(-1).float(), Fr, L, mask)

    @torch.no_grad()
    def sample(self, count: int | None = None, *, sizes=None, target=None, guidance_scale: float, steps: int,
               property_tolerance: float, generator: torch.Generator | None = None, batch_size: int = 512,
               progress=None) -> dict:
        """``steps`` Langevin steps from noise; ``target`` (data units, one or one per cell) adds the property
        energy ``guidance_scale * ((f - c) / property_tolerance)^2``."""
        sizes = self._sizes(count, sizes, generator)
        w, tol = float(guidance_scale), float(property_tolerance)
        dev = self.y_mean.device

        def one_batch(sz, tgt):
            mask = (torch.arange(self.max_atoms).view(1, -1) < sz.view(-1, 1)).to(dev)
            A, Fr, L = self._noise_init(mask, generator)
            c = None if tgt is None else (tgt.to(dev) - self.y_mean) / self.y_std
            A, Fr, L = self._langevin(A, Fr, L, mask, int(steps), c, w, tol, generator)
            pred = self.property_net(A, Fr, L, mask) * self.y_std + self.y_mean
            allowed = allowed_elements(A - self.dequant / 2, mask, self.n_elements_range)
            types = torch.where(mask, A.masked_fill(~allowed.unsqueeze(1), -torch.inf).argmax(-1),
                                torch.full_like(mask, -1, dtype=torch.long))
            return CrystalSamples(types=types.cpu(), frac=Fr.cpu(), lattice=self._lattice(L).cpu(), num_atoms=sz,
                                  property_pred=pred.cpu())

        return sample_in_batches(sizes, target, batch_size, one_batch, progress)
