"""Domain adapters (molecules, crystals): data sources, featurization, decoding and filters.

Each module exposes the same functions so that the workflow steps are generic:
``load_source``, ``featurize``, ``featurize_like``, ``decode`` and ``filter_candidates``.
These modules may import rdkit / pymatgen; ``invdesign.models`` never does.
"""

import importlib

DOMAINS = ("molecules", "crystals")


def get_domain(name: str):
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; expected one of {DOMAINS}")
    return importlib.import_module(f"invdesign.domains.{name}")
