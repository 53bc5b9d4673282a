"""Shared sampling plumbing of the whole-graph and whole-cell generators (diffusion, EBM)."""

from __future__ import annotations

from typing import Callable

import torch


def per_item_targets(target, n: int) -> torch.Tensor | None:
    """Property targets (data units) as one float per item: None stays None, a scalar is repeated."""
    if target is None:
        return None
    t = torch.as_tensor(target, dtype=torch.float32).view(-1).cpu()
    return t.expand(n) if t.numel() == 1 else t


def sample_in_batches(sizes: torch.Tensor, target, batch_size: int,
                      sample_batch: Callable[[torch.Tensor, torch.Tensor | None], dict], progress=None) -> dict:
    """Run ``sample_batch(sizes, targets)`` over batches and concatenate its tensors; ``progress(done,
    total)`` is called after each batch."""
    tgt = per_item_targets(target, len(sizes))
    outs = []
    for start in range(0, len(sizes), batch_size):
        sl = slice(start, start + batch_size)
        outs.append(sample_batch(sizes[sl], None if tgt is None else tgt[sl]))
        if progress:
            progress(min(start + batch_size, len(sizes)), len(sizes))
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


class EnergyOODMixin:
    """Shared by the EBMs: Langevin settings from the config, and the out-of-distribution z-score from the
    running mean/std of training energies."""

    energy_mean: torch.Tensor
    energy_std: torch.Tensor

    def _langevin_settings(self, cfg: dict) -> None:
        self.dequant = float(cfg.get("dequantization", 0.5))
        self.alpha = float(cfg.get("energy_regularization", 1.0))
        self.train_steps = int(cfg.get("langevin_train_steps", 20))
        self.sample_steps = int(cfg.get("langevin_steps", 60))
        self.step_size = float(cfg.get("langevin_step_size", 0.05))
        self.noise = float(cfg.get("langevin_noise", 0.005))

    def ood_z(self, energies: torch.Tensor) -> torch.Tensor:
        return (energies - self.energy_mean) / self.energy_std.clamp(min=1e-6)
