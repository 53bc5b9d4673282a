"""Shared plumbing of the whole-graph and whole-cell generators: batched sampling (diffusion, EBM) and the
energy-based models' training and scoring."""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

from .samples import CrystalSamples, MoleculeSamples


def per_item_targets(target, n: int) -> torch.Tensor | None:
    """Property targets (data units) as one float per item: None stays None, a scalar is repeated."""
    if target is None:
        return None
    t = torch.as_tensor(target, dtype=torch.float32).view(-1).cpu()
    return t.expand(n) if t.numel() == 1 else t


def sample_in_batches(sizes: torch.Tensor, target, batch_size: int,
                      sample_batch: Callable[..., MoleculeSamples | CrystalSamples], progress=None,
                      fixed: torch.Tensor | None = None):
    """Run ``sample_batch(sizes, targets)`` over batches and concatenate the samples it returns; ``progress(done,
    total)`` is called after each batch. ``fixed`` (one row per item, e.g. given atom types) is sliced
    with the batch and passed on as a third argument."""
    tgt = per_item_targets(target, len(sizes))
    outs = []
    for start in range(0, len(sizes), batch_size):
        sl = slice(start, start + batch_size)
        args = (sizes[sl], None if tgt is None else tgt[sl]) + (() if fixed is None else (fixed[sl],))
        outs.append(sample_batch(*args))
        if progress:
            progress(min(start + batch_size, len(sizes)), len(sizes))
    return type(outs[0]).concat(outs)


class EnergyModelMixin:
    """Shared by the energy-based models (graph and crystal): the model settings, the property energy,
    the contrastive-divergence loss and the out-of-distribution z-score from the running mean/std of training
    energies. The host is an ``nn.Module`` with ``y_mean``/``y_std`` buffers."""

    energy_mean: torch.Tensor
    energy_std: torch.Tensor

    def _ebm_settings(self, cfg) -> None:
        """Take the training-side settings of an EBM model part (``MolEBMModel`` / ``CrystalEBMModel``)."""
        self.register_buffer("energy_mean", torch.tensor(0.0))
        self.register_buffer("energy_std", torch.tensor(1.0))
        self.dequant = cfg.dequantization
        self.alpha = cfg.energy_regularization
        self.train_steps = cfg.langevin_train_steps
        self.step_size = cfg.langevin_step_size
        self.noise = cfg.langevin_noise
        self.property_weight = cfg.property_weight

    def _property_energy(self, pred: torch.Tensor, target: torch.Tensor, weight: float,
                         tolerance: float) -> torch.Tensor:
        """``weight * ((f - c) / tolerance)^2`` with f and c standardised (tolerance in data units)."""
        return weight * ((pred - target) / (tolerance / float(self.y_std))) ** 2

    def _contrastive_loss(self, e_pos: torch.Tensor, e_neg: torch.Tensor, pred: torch.Tensor, y: torch.Tensor):
        """Contrastive divergence (data energies down, Langevin samples' up), a square penalty fixing the energy
        scale, and the property head's MSE against the labels ``y`` (data units, NaN = unknown; the head predicts
        standardised values). Tracks the training energies' mean/std for :meth:`ood_z`."""
        y = (y.view(-1) - self.y_mean) / self.y_std
        cd = e_pos.mean() - e_neg.mean()
        reg = self.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        known = torch.isfinite(y)
        prop = F.mse_loss(pred[known], y[known]) if known.any() else pred.sum() * 0
        if self.training:
            with torch.no_grad():
                self.energy_mean.mul_(0.95).add_(0.05 * e_pos.mean())
                self.energy_std.mul_(0.95).add_(0.05 * e_pos.std().clamp(min=1e-6))
        return cd + reg + self.property_weight * prop, {
            "e_pos": float(e_pos.mean().detach()), "e_neg": float(e_neg.mean().detach()),
            "prop_mse": float(prop.detach()),
            # selection: the property fit plus how well data and model samples are told apart
            "select": float((prop + reg).detach())}

    def ood_z(self, energies: torch.Tensor) -> torch.Tensor:
        return (energies - self.energy_mean) / self.energy_std.clamp(min=1e-6)
