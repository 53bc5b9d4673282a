"""Conditional samplers of the whole-graph and whole-cell generators: classifier-free guided diffusion and
Langevin sampling with a property energy. Each sample is conditioned on one (size, property) pair drawn from
the training examples inside the target, as in the EDM protocol, so the requested values are attainable for
structures of that size. Torch and numpy only."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ..targets import aim_point, target_bounds
from .base import SampleRequest, Samples

log = logging.getLogger("invdesign")


def condition_pairs(train: list, target: dict, y_std: float, count: int, seed: int):
    """(sizes, property values) to condition on, drawn from training graphs inside the aim range.

    Falls back to the whole target range, then to uniform values inside the range clipped to the data.
    """
    y = np.array([float(g.y.view(-1)[0]) for g in train])
    n = np.array([int(g.num_nodes) for g in train])
    rng = np.random.default_rng(seed)
    for lo, hi in (aim_point(target, y_std), target_bounds(target)):
        pick = np.flatnonzero((y >= lo) & (y <= hi))
        if len(pick):
            idx = rng.choice(pick, size=count, replace=True)
            return torch.as_tensor(n[idx]), torch.as_tensor(y[idx], dtype=torch.float32)
    lo, hi = target_bounds(target)
    lo, hi = max(lo, y.min()), min(hi, y.max())
    idx = rng.choice(len(y), size=count, replace=True)
    return torch.as_tensor(n[idx]), torch.as_tensor(rng.uniform(lo, hi, count), dtype=torch.float32)


def logged_progress(what: str):
    """A ``progress(done, total)`` that logs elapsed time and an ETA."""
    t0 = time.monotonic()

    def progress(done, total):
        el = time.monotonic() - t0
        log.info("%s: %d/%d [%.0fs elapsed, ETA %.0fs]", what, done, total, el, el / max(done, 1) * (total - done))

    return progress


class ConditionalSampler:
    """Shared by the diffusion and Langevin samplers: conditions, seeding, and the per-sample columns."""

    #: generator type, for the log
    kind = ""

    def __init__(self, model, settings, *, search=None, device=None) -> None:
        """``search`` (the VAE's latent search) does not apply; sampling runs where the model's parameters are,
        so ``device`` is not needed either."""
        self.model, self.settings = model, settings

    def model_kwargs(self) -> dict:
        """The sampling settings in the model's ``sample()`` keywords."""
        raise NotImplementedError

    def sample(self, request: SampleRequest) -> Samples:
        s = self.settings
        seed = s.sample_seed if request.seed is None else request.seed
        sizes, values = condition_pairs(request.train, request.target, float(self.model.y_std), s.n_samples, seed)
        gen = torch.Generator().manual_seed(seed)
        progress = request.progress or logged_progress(f"{self.kind} sampling")
        columns = {}
        if request.compositions is not None:  # structure prediction for given formulas
            if not getattr(self.model, "supports_given_types", False):
                raise ValueError(f"{type(self.model).__name__} cannot predict structures for given compositions")
            values = values[torch.randint(len(values), (len(request.compositions),), generator=gen)]
            log.info("structure prediction for %d formulas (%d cells) conditioned on [%.3g, %.3g]",
                     len(set(request.composition_formulas or [])), len(request.compositions), float(values.min()),
                     float(values.max()))
            out = self.model.sample(types=request.compositions, target=values, generator=gen, progress=progress,
                                    **self.model_kwargs())
            columns["requested_formula"] = np.asarray(request.composition_formulas, dtype=object)
        else:
            log.info("%s sampling of %d graphs conditioned on values in [%.3g, %.3g] (%s)", self.kind, len(sizes),
                     float(values.min()), float(values.max()),
                     ", ".join(f"{k} {v}" for k, v in self.model_kwargs().items()))
            out = self.model.sample(sizes=sizes, target=values, generator=gen, progress=progress,
                                    **self.model_kwargs())
        return Samples(out, columns | self._columns(out, values))

    def sample_for(self, sizes, values, *, seed: int | None = None, progress=None) -> Samples:
        """One sample per given (size, property value) pair, with the sampling settings: for protocols that choose
        their own conditions (e.g. the EDM benchmark) instead of drawing them from the training data. ``values``
        None samples unconditionally."""
        s = self.settings
        gen = torch.Generator().manual_seed(s.sample_seed if seed is None else seed)
        values = None if values is None else torch.as_tensor(values, dtype=torch.float32).view(-1)
        out = self.model.sample(sizes=torch.as_tensor(sizes).long(), target=values, generator=gen,
                                progress=progress or logged_progress(f"{self.kind} sampling"), **self.model_kwargs())
        return Samples(out, self._columns(out, values) if values is not None else {})

    @staticmethod
    def _columns(out, values) -> dict:
        return {"requested_property": values.numpy(),
                "generator_pred": (out.property_pred if out.property_pred is not None else values).numpy(),
                "search_step": np.zeros(len(values), dtype=np.int64)}


class DiffusionSampler(ConditionalSampler):
    kind = "diffusion"

    def model_kwargs(self) -> dict:
        kw = {"guidance_scale": self.settings.guidance_scale, "sample_steps": self.settings.sample_steps}
        if hasattr(self.settings, "composition_projection"):
            kw["composition_projection"] = self.settings.composition_projection
        return kw


class LangevinSampler(ConditionalSampler):
    kind = "ebm"

    def model_kwargs(self) -> dict:
        return {"guidance_scale": self.settings.guidance_scale, "steps": self.settings.langevin_steps,
                "property_tolerance": self.settings.property_tolerance}
