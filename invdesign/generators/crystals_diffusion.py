"""Periodic lattice-coordinate-type diffusion over crystals with classifier-free guidance; also predicts
structures for given compositions."""

from ..config.generators import CrystalDiffusionModel, CrystalDiffusionSample, GeneratorPlugin

GENERATOR = GeneratorPlugin(
    domain="crystals",
    type="diffusion",
    doc="joint diffusion of lattice parameters (Gaussian), fractional coordinates (wrapped normal on the torus, score "
        "matching) and one-hot atom types, periodic invariant denoiser (DiffCSP / MatterGen family); late in "
        "sampling each cell keeps its k most abundant elements (`composition_projection`)",
    steering="classifier-free guidance on the property, scale `guidance_scale`",
    model=CrystalDiffusionModel,
    sample=CrystalDiffusionSample,
    model_class="invdesign.models.crystal_diffusion:CrystalDiffusion",
    sampler_class="invdesign.sampling.conditional:DiffusionSampler",
)
