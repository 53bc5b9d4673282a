"""The molecule VAE: graph encoder, SELFIES decoder, latent-space search toward the target."""

from ..config.generators import GeneratorPlugin, MolVAEModel, MolVAESample

GENERATOR = GeneratorPlugin(
    domain="molecules",
    type="vae",
    doc="graph encoder + autoregressive SELFIES decoder, ensemble of property heads on the latent",
    steering="gradient descent in latent space on the heads' mean, penalising their variance (`search:`)",
    model=MolVAEModel,
    sample=MolVAESample,
    model_class="invdesign.models.mol_vae:MolVAE",
    sampler_class="invdesign.sampling.latent:LatentSearchSampler",
    uses_search=True,
)
