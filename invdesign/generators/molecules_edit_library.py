"""A virtual library of single graph edits of training molecules: a classical arm that needs no training."""

from ..config.generators import EditLibrarySample, GeneratorPlugin

GENERATOR = GeneratorPlugin(
    domain="molecules",
    type="edit_library",
    doc="classical arm, no training: a virtual library of random single graph edits (atom, bond, ring) of the "
        "confirmed molecules of earlier campaigns (seeds_from), then random training molecules",
    steering="none of its own: the independent predictor screens the library in the campaign's ranking",
    sample=EditLibrarySample,
    sampler_class="invdesign.arms.molecules:EditLibrary",
    train=None,
)
