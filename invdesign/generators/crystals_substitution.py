"""Element substitution into the data set's binary cells: a classical arm that needs no training."""

from ..config.generators import GeneratorPlugin, SubstitutionSample

GENERATOR = GeneratorPlugin(
    domain="crystals",
    type="substitution",
    doc="classical arm, no training: a binary cell of the data set with its two elements replaced by two others "
        "(random draws), rescaled to the volume of its atoms' fitted volumes",
    steering="none of its own: the independent predictor screens the substitutions in the campaign's ranking",
    sample=SubstitutionSample,
    sampler_class="invdesign.arms.crystals:Substitution",
    train=None,
)
