"""Energy-based model over molecular graphs, Langevin sampling with a property energy."""

from ..config.generators import EBMSample, GeneratorPlugin, MolEBMModel

GENERATOR = GeneratorPlugin(
    domain="molecules",
    type="ebm",
    doc="energy over graphs, trained by contrastive divergence; Langevin sampling with valency correction",
    steering="a property energy `guidance_scale * ((f(G) - c) / property_tolerance)^2` added to the energy",
    model=MolEBMModel,
    sample=EBMSample,
    model_class="invdesign.models.graph_ebm:GraphEBM",
    sampler_class="invdesign.sampling.conditional:LangevinSampler",
    scores_ood=True,
)
