"""Classical arms: proposal methods that need no training (a graph GA, a virtual library of single edits, element
substitution into known cells), declared as generator types like the trained generators
(:mod:`invdesign.generators`, ``GeneratorPlugin.trained`` False) and run by the same search step
(:mod:`invdesign.pipeline.search`). Their proposals go through the same filters, predictor, ranking and oracle.

They read the campaign's data set, its known table and its independent predictor (:class:`~.base.ArmRequest`), and
need RDKit or pymatgen, so they live here, not in the torch-only :mod:`invdesign.sampling`.
"""
