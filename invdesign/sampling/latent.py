"""Property-guided latent-space optimisation, the VAE's sampler (torch only; runs on CPU or GPU).

Each latent vector descends a smooth penalty that is zero inside the (shrunk)
target range of the VAE's property head, plus a weak Gaussian-prior term that
keeps it where the decoder has seen data. Several points along every trajectory
are decoded, which yields more distinct candidates per start.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ..targets import aim_point
from .base import SampleRequest, Samples

log = logging.getLogger(__name__)


class LatentSearchSampler:
    """Samples from a VAE by latent-space optimisation toward the target (:class:`LatentSearch` settings), decoding
    ``checkpoints`` points along each trajectory with the decoder settings ``sample`` (the molecule VAE's
    ``decode_temperature``)."""

    def __init__(self, model, sample, *, search=None, device=None) -> None:
        if search is None:
            raise ValueError("the vae's sampler needs the campaign's search settings (search=LatentSearch(...))")
        self.model, self.search, self.decode_settings = model, search, sample
        self.device = device if device is not None else next(model.parameters()).device

    def _decode(self, z):
        kw = {"temperature": self.decode_settings.decode_temperature} \
            if hasattr(self.decode_settings, "decode_temperature") else {}
        with torch.no_grad():
            return self.model.decode(z, **kw).cpu()

    def sample(self, request: SampleRequest) -> Samples:
        if request.compositions is not None:
            raise ValueError("the VAE samples by latent search; structure prediction needs the crystal diffusion model")
        cfg, model = self.search, self.model
        aim = aim_point(request.target, float(model.y_std))
        gen = torch.Generator().manual_seed(cfg.seed if request.seed is None else request.seed)
        z0, origin = start_latents(model, request.train, cfg.n_starts, cfg.from_data, aim, cfg.noise, gen,
                                   self.device)
        log.info("latent search (%s) from %d starts (%d encoded near the target, rest from the prior) toward "
                 "[%g, %g]", cfg.method, len(z0), origin.count("data"), *aim)
        trajectory = optimise_latents(model, z0, aim, steps=cfg.steps, lr=cfg.lr, prior_weight=cfg.prior_weight,
                                      checkpoints=cfg.checkpoints, uncertainty_weight=cfg.uncertainty_weight)
        parts, columns = [], {k: [] for k in ("start", "search_step", "generator_pred", "generator_pred_std",
                                               "latent_norm")}
        for step, z, pred in trajectory:
            out = self._decode(z)
            with torch.no_grad():
                std = model.predict_property_std(z).cpu().numpy()
            parts.append(out)
            columns["start"].append(np.asarray(origin, dtype=object))
            columns["search_step"].append(np.full(len(z), step))
            columns["generator_pred"].append(pred.cpu().numpy())
            columns["generator_pred_std"].append(std)
            columns["latent_norm"].append(z.norm(dim=-1).cpu().numpy())
            if request.progress:
                request.progress(len(parts), len(trajectory))
        structures = type(parts[0]).concat(parts)
        structures.property_pred = torch.as_tensor(np.concatenate(columns["generator_pred"]))
        structures.property_pred_std = torch.as_tensor(np.concatenate(columns["generator_pred_std"]))
        return Samples(structures, {k: np.concatenate(v) for k, v in columns.items()})


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
