"""The graph genetic algorithm as a generator type: a classical arm that needs no training."""

from ..config.generators import GeneratorPlugin, GraphGASample

GENERATOR = GeneratorPlugin(
    domain="molecules",
    type="graph_ga",
    doc="classical arm, no training: graph genetic algorithm (GB-GA family; crossover of fragments, atom and bond "
        "mutations) started from the confirmed molecules of earlier campaigns (seeds_from), then random training "
        "molecules; known molecules are never kept",
    steering="fitness: minus the independent predictor's distance to the target and 0.1 x its distance to the "
             "window's centre (a gradient inside the target)",
    sample=GraphGASample,
    sampler_class="invdesign.arms.molecules:GraphGA",
    train=None,
    steered_by_predictor=True,
)
