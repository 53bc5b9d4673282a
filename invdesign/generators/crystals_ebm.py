"""Energy-based model over periodic cells, clipped Langevin sampling with a property energy."""

from ..config.generators import CrystalEBMModel, EBMSample, GeneratorPlugin

GENERATOR = GeneratorPlugin(
    domain="crystals",
    type="ebm",
    doc="energy over periodic cells (same invariant message passing as crystal diffusion), contrastive divergence; "
        "clipped Langevin on types, wrapped coordinates and lattice",
    steering="the same property energy term",
    model=CrystalEBMModel,
    sample=EBMSample,
    model_class="invdesign.models.crystal_ebm:CrystalEBM",
    sampler_class="invdesign.sampling.conditional:LangevinSampler",
    scores_ood=True,
)
