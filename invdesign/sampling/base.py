"""The sampling interface every generator's sampler implements: ``Sampler.sample(request) -> Samples``.

Kept apart from the package ``__init__`` (which picks a generator's sampler) so that the samplers import these
names without importing the package that imports them.
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
    """Built as ``Sampler(model, sample_settings, search=..., device=...)``: ``search`` is the campaign's
    :class:`~invdesign.config.search.LatentSearch` and ``device`` where to sample; a sampler that does not use
    them ignores them."""

    def __init__(self, model, sample_settings, *, search=None, device=None) -> None: ...

    def sample(self, request: SampleRequest) -> Samples: ...
