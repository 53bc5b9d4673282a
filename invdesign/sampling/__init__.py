"""One sampling interface for every generator: ``Sampler.sample(request) -> Samples``.

* :class:`SampleRequest`: what to sample toward (the target, the training graphs that conditions and latent
  starts are drawn from, a seed, and for structure prediction the compositions of the cells to predict);
* :class:`Samples`: the structures in the domain's one typed shape
  (:class:`~invdesign.models.samples.MoleculeSamples` / :class:`~invdesign.models.samples.CrystalSamples`)
  plus per-sample columns for the candidate table (``generator_pred``, ``requested_property``, ...);
* :func:`make_sampler`: the sampler of a trained generator from its sampling settings
  (:mod:`invdesign.config.generators`): latent-space optimisation wrapping a VAE
  (:class:`~invdesign.sampling.latent.LatentSearchSampler`), classifier-free guided diffusion or Langevin
  sampling with a property energy (:mod:`invdesign.sampling.conditional`).

Torch and numpy only, so sampling runs on GPU nodes without chemistry packages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..models.samples import CrystalSamples, MoleculeSamples


@dataclass
class SampleRequest:
    #: the campaign target as a mapping (``window`` or ``min`` / ``max``), in the property's unit
    target: dict
    #: training graphs: conditions are drawn from those inside the target, latent starts are encoded from them
    train: list
    #: None: the sampling settings' seed
    seed: int | None = None
    #: structure prediction (crystal diffusion): one list of element indices per cell, and each cell's formula
    compositions: list[list[int]] | None = None
    composition_formulas: list[str] | None = None
    #: ``progress(done, total)``
    progress: Callable[[int, int], None] | None = None


@dataclass
class Samples:
    structures: MoleculeSamples | CrystalSamples
    #: one array per column, one value per sample (e.g. generator_pred, requested_property, search_step)
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.structures)


class Sampler(Protocol):
    def sample(self, request: SampleRequest) -> Samples: ...


def make_sampler(kind: str, model, sample_settings, search_settings=None, device=None) -> Sampler:
    """The sampler of a trained ``kind`` generator ("vae", "diffusion", "ebm") with its current sampling
    settings; ``search_settings`` (:class:`~invdesign.config.settings.LatentSearch`) drives the VAE's search."""
    if kind == "vae":
        from .latent import LatentSearchSampler

        if search_settings is None:
            raise ValueError("the vae's sampler needs the campaign's search settings")
        return LatentSearchSampler(model, search_settings, sample_settings, device)
    from .conditional import DiffusionSampler, LangevinSampler

    cls = {"diffusion": DiffusionSampler, "ebm": LangevinSampler}.get(kind)
    if cls is None:
        raise ValueError(f"no sampler for generator type {kind!r}")
    return cls(model, sample_settings)
