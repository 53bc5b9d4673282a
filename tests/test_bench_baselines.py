"""The crystal baselines' prototype substitution (bench/crystal_baselines.py, issue #24; the substitution itself is
invdesign.chem.substitution, also the workflow's substitution generator type)."""

import numpy as np
import pandas as pd
import pytest

from bench.crystal_baselines import ELEMENTS, binary_of_set
from invdesign.chem.substitution import binary_prototypes, substitutions


def _dataset():
    from pymatgen.core import Lattice, Structure

    from invdesign.chem.crystals import structure_to_record

    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return pd.DataFrame({"id": ["p1", "p2"], "structure": [structure_to_record(rocksalt), structure_to_record(cscl)]})


def test_substitutions_swap_both_elements_for_two_of_the_set_at_the_additive_volume():
    from invdesign.chem.crystals import structure_from_record

    volumes = {e: 10.0 + i for i, e in enumerate(ELEMENTS)}
    data = _dataset()
    protos = binary_prototypes(data["id"], [structure_from_record(r) for r in data["structure"]])
    subs = substitutions(protos, ELEMENTS, volumes, 20, np.random.default_rng(0))
    assert len(subs) == 20 and subs["sample_id"].is_unique
    for rec, proto in zip(subs["structure"], subs["prototype"]):
        s = structure_from_record(rec)
        assert binary_of_set(s)
        assert len(s) == (8 if proto == "p1" else 2)  # the prototype's sites, species replaced
        assert s.volume == pytest.approx(sum(n * volumes[el.symbol] for el, n in s.composition.items()))


def test_binary_of_set_rejects_other_elements_and_unaries():
    from pymatgen.core import Lattice, Structure

    assert not binary_of_set(Structure(Lattice.cubic(3), ["W", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert not binary_of_set(Structure(Lattice.cubic(3), ["W", "W"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert binary_of_set(Structure(Lattice.cubic(3), ["W", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
