"""Settings of the VAE's latent-space search toward the target (a campaign's ``search:``). Standard library
only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .spec import MAX_SAMPLES, ConfigError, Spec, setting


@dataclass(frozen=True, kw_only=True)
class LatentSearch(Spec):
    __doc_line__ = "vae: latent-space optimisation toward the target (the sampler that wraps the VAE)"
    method: Literal["gradient"] = setting("gradient", doc="Latent-space optimisation of the property head")
    n_starts: int = setting(2000, ge=1, le=MAX_SAMPLES, doc="Latent starting points")
    from_data: float = setting(0.5, ge=0, le=1, doc="Share of starts encoded from training examples closest to the "
                                                    "target (rest: prior samples)")
    steps: int = setting(100, ge=0)
    lr: float = setting(0.05, gt=0)
    prior_weight: float = setting(0.05, ge=0, doc="Pull toward the prior (keeps decodes on-manifold)")
    noise: float = setting(0.3, ge=0, doc="Gaussian jitter added to encoded starts")
    checkpoints: int = setting(4, ge=1, doc="Points along each trajectory that are decoded")
    uncertainty_weight: float = setting(1.0, ge=0, doc="Penalty on the property-head ensemble's variance (0 = plain "
                                                       "gradient descent on the mean)")
    seed: int = setting(0)

    def check(self, where, source):
        if self.steps and self.checkpoints > self.steps:
            raise ConfigError(f"{source}: {where}.checkpoints = {self.checkpoints} is more than steps = {self.steps} "
                              "(a trajectory has only that many points to decode); lower checkpoints or raise steps")
