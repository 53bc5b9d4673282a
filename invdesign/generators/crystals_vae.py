"""The crystal VAE: periodic graph encoder, lattice + composition + coordinate decoder, latent-space search."""

from ..config.generators import CrystalVAEModel, CrystalVAESample, GeneratorPlugin

GENERATOR = GeneratorPlugin(
    domain="crystals",
    type="vae",
    doc="periodic graph encoder + decoder of lattice, atom slots (element and fractional coordinates), ensemble of "
        "property heads on the latent",
    steering="gradient descent in latent space on the heads' mean, penalising their variance (`search:`)",
    model=CrystalVAEModel,
    sample=CrystalVAESample,
    model_class="invdesign.models.crystal_vae:CrystalVAE",
    sampler_class="invdesign.sampling.latent:LatentSearchSampler",
    uses_search=True,
)
