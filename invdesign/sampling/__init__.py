"""One sampling interface for every generator: ``Sampler.sample(request) -> Samples``.

* :class:`SampleRequest`: what to sample toward (the target, the training graphs that conditions and latent
  starts are drawn from, a seed, and for structure prediction the compositions of the cells to predict);
* :class:`Samples`: the structures in the domain's one typed shape
  (:class:`~invdesign.models.samples.MoleculeSamples` / :class:`~invdesign.models.samples.CrystalSamples`)
  plus per-sample columns for the candidate table (``generator_pred``, ``requested_property``, ...);
* :func:`make_sampler`: the sampler of a trained generator, the one its declaration names
  (:mod:`invdesign.generators`): latent-space optimisation wrapping a VAE
  (:class:`~invdesign.sampling.latent.LatentSearchSampler`), classifier-free guided diffusion or Langevin
  sampling with a property energy (:mod:`invdesign.sampling.conditional`).

The interface lives in :mod:`invdesign.sampling.base`. Torch and numpy only, so sampling runs on GPU nodes without
chemistry packages.
"""

from __future__ import annotations

from ..config.generators import get_generator
from .base import SampleRequest, Sampler, Samples

__all__ = ["SampleRequest", "Sampler", "Samples", "make_sampler"]


def make_sampler(kind: str, model, sample_settings, *, search=None, device=None) -> Sampler:
    """The sampler of a trained ``kind`` generator (of the model's ``meta["domain"]``) with its current sampling
    settings; ``search`` (:class:`~invdesign.config.search.LatentSearch`) drives the samplers that declare
    ``uses_search`` (the VAE's latent search) and is ignored by the others; ``device``: where the latent search
    runs (default: the model's; the other samplers sample where the model is)."""
    plugin = get_generator(model.meta["domain"], kind)
    if not plugin.trained:
        raise ValueError(f"the {plugin.domain} {kind} generator is a classical arm: it proposes without a model "
                         "(invdesign.arms), it has no sampler")
    return plugin.load_sampler_class()(model, sample_settings, search=search, device=device)
