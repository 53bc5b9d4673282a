"""Discrete graph diffusion over molecules with classifier-free guidance."""

from ..config.generators import GeneratorPlugin, MolDiffusionModel, MolDiffusionSample

GENERATOR = GeneratorPlugin(
    domain="molecules",
    type="diffusion",
    doc="discrete diffusion over atom and bond types (marginal transitions, graph transformer; DiGress family)",
    steering="classifier-free guidance on the property, scale `guidance_scale`",
    model=MolDiffusionModel,
    sample=MolDiffusionSample,
    model_class="invdesign.models.graph_diffusion:GraphDiffusion",
    sampler_class="invdesign.sampling.conditional:DiffusionSampler",
)
