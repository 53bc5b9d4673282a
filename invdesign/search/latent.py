"""Property-guided latent-space optimisation (torch only; runs on CPU or GPU).

Each latent vector descends a smooth penalty that is zero inside the (shrunk)
target range of the VAE's property head, plus a weak Gaussian-prior term that
keeps it where the decoder has seen data. Several points along every trajectory
are decoded, which yields more distinct candidates per start.
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger(__name__)


def start_latents(model, graphs: list, n_starts: int, from_data: float, aim: tuple[float, float],
                  noise: float, generator: torch.Generator, device) -> tuple[torch.Tensor, list[str]]:
    """Mix of encodings of training graphs nearest the target (jittered) and prior samples."""
    from torch_geometric.loader import DataLoader

    n_data = min(int(round(n_starts * from_data)), len(graphs))
    starts, origin = [], []
    if n_data:
        y = torch.tensor([float(g.y.view(-1)[0]) for g in graphs])
        lo, hi = aim
        dist = torch.clamp(lo - y, min=0) + torch.clamp(y - hi, min=0)
        dist = torch.where(torch.isfinite(dist), dist, torch.full_like(dist, math.inf))
        # random tie-break so that in-target examples are sampled uniformly
        order = torch.argsort(dist + 1e-9 * torch.rand(len(dist), generator=generator))
        chosen = [graphs[int(i)] for i in order[:n_data]]
        mus = []
        with torch.no_grad():
            for batch in DataLoader(chosen, batch_size=512):
                mu, _ = model.encode(batch.to(device))
                mus.append(mu)
        mu = torch.cat(mus)
        starts.append(mu + noise * torch.randn(mu.shape, generator=generator).to(device))
        origin += ["data"] * len(mu)
    n_prior = n_starts - n_data
    if n_prior:
        starts.append(torch.randn(n_prior, model.latent_dim, generator=generator).to(device))
        origin += ["prior"] * n_prior
    return torch.cat(starts), origin


def optimise_latents(model, z0: torch.Tensor, aim: tuple[float, float], *, steps: int, lr: float,
                     prior_weight: float, checkpoints: int,
                     uncertainty_weight: float = 0.0) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Return ``[(step, z, predicted property in data units), ...]`` at the recorded steps.

    The penalty acts on the mean of the VAE's property-head ensemble; ``uncertainty_weight`` adds the
    ensemble variance, so latents are pulled toward the target only where the heads agree.
    """
    y_mean, y_std = float(model.y_mean), float(model.y_std)
    lo = (aim[0] - y_mean) / y_std
    hi = (aim[1] - y_mean) / y_std
    record = sorted({round(steps * k / checkpoints) for k in range(1, checkpoints + 1)}) if steps else [0]
    for p in model.parameters():
        p.requires_grad_(False)
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    out = []
    for step in range(steps + 1):
        if step in record:
            with torch.no_grad():
                out.append((step, z.detach().clone(), model.predict_property(z).detach()))
        if step == steps:
            break
        heads = model.head_outputs(z)
        pred = heads.mean(0)
        penalty = torch.clamp(lo - pred, min=0) ** 2 + torch.clamp(pred - hi, min=0) ** 2
        if uncertainty_weight and len(heads) > 1:
            penalty = penalty + uncertainty_weight * heads.var(0)
        prior = 0.5 * (z ** 2).mean(-1)
        loss = (penalty + prior_weight * prior).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if steps >= 10 and (step + 1) % max(1, steps // 5) == 0:
            with torch.no_grad():
                p = model.predict_property(z)
                a_lo, a_hi = torch.as_tensor(aim[0]).to(p), torch.as_tensor(aim[1]).to(p)
                if torch.equal(a_lo, a_hi):  # point targets (one per latent): how far the predictions are
                    log.info("latent search step %d/%d: mean |predicted - target| %.3g", step + 1, steps,
                             float((p - a_lo).abs().mean()))
                else:
                    log.info("latent search step %d/%d: %.1f%% of latents predicted inside the aim range",
                             step + 1, steps, 100 * float(((p >= a_lo) & (p <= a_hi)).float().mean()))
    return out
