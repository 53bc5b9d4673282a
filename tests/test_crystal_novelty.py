"""The two novelty verdicts of issue #34 on textbook cells."""

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from invdesign.chem.crystal_novelty import (AlloyOrderingRule, alloy_ordering, disorder_aware_known,
                                            elemental_values, novelty_verdicts, rule_of_mixtures, substitutable,
                                            substitution_groups)
from invdesign.chem.crystals import structure_to_record


def l10_irrh():
    """CuAu-type L1_0 IrRh, slightly tetragonal as a relaxed ordering would be."""
    return Structure(Lattice.tetragonal(2.71, 3.86), ["Ir", "Rh"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def l12_ni3al():
    return Structure(Lattice.cubic(3.57), ["Al", "Ni", "Ni", "Ni"],
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def wc():
    a, c = 2.91, 2.84
    return Structure(Lattice.hexagonal(a, c), ["W", "C"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]])


def rocksalt_tin():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.24), ["Ti", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def reference(*cells, ids=None):
    ids = ids or [f"mp-{i}" for i in range(len(cells))]
    return pd.DataFrame({"id": ids, "formula": [c.composition.reduced_formula for c in cells],
                         "structure": [structure_to_record(c) for c in cells]})


def test_substitution_rule():
    assert substitutable("Ir", "Rh") and substitutable("Ni", "Al") and substitutable("Os", "W")
    assert not substitutable("W", "C") and not substitutable("Ti", "N")
    assert substitution_groups(["W", "C", "Mo"]) == [("C",), ("Mo", "W")]


@pytest.mark.parametrize("cell, parent", [(l10_irrh, "fcc"), (l12_ni3al, "fcc")])
def test_orderings_of_fcc(cell, parent):
    assert alloy_ordering(cell()) == (True, parent)


def test_hcp_and_bcc_orderings():
    # B2 (CsCl-type) NiAl is an ordering of bcc; an hcp cell with two metals one on each site is one of hcp
    b2 = Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    a = 2.75
    hcp = Structure(Lattice.hexagonal(a, a * 1.6), ["Re", "Os"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    assert alloy_ordering(b2) == (True, "bcc")
    assert alloy_ordering(hcp) == (True, "hcp")


@pytest.mark.parametrize("cell", [wc, rocksalt_tin])
def test_compounds_are_not_orderings(cell):
    assert alloy_ordering(cell()) == (False, "")


def test_single_element_is_not_an_ordering():
    assert alloy_ordering(Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])) == (False, "")


def test_ordering_of_a_known_phase_of_its_system():
    # A15 (Cr3Si-type) lattice, not fcc/hcp/bcc: with a known A15 W cell in the reference, an Os-W ordering on it
    # is an ordering of that known lattice
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.5, 0], [0.75, 0.5, 0], [0, 0.25, 0.5], [0, 0.75, 0.5],
              [0.5, 0, 0.25], [0.5, 0, 0.75]]
    a15_w = Structure(Lattice.cubic(5.05), ["W"] * 8, coords)
    ordering = Structure(Lattice.cubic(5.0), ["Os", "Os"] + ["W"] * 6, coords)
    assert alloy_ordering(ordering) == (False, "")
    assert alloy_ordering(ordering, reference(a15_w)) == (True, "known:W")
    # a compound of the same system does not become an ordering by having a known lattice
    rule = AlloyOrderingRule(reference(a15_w))
    assert rule.parent(wc()) == ""


def test_swapped_substitutable_elements_are_not_novel():
    # a known Ir2Rh2 ordering (layers Ir Ir Rh Rh along c) and the same cell with one Ir and one Rh swapped: the
    # plain matcher tells them apart, the disorder-aware rule does not
    lat = Lattice.tetragonal(2.72, 4 * 1.92)
    coords = [[0, 0, 0], [0.5, 0.5, 0.25], [0, 0, 0.5], [0.5, 0.5, 0.75]]
    known = Structure(lat, ["Ir", "Ir", "Rh", "Rh"], coords)
    swapped = Structure(lat, ["Ir", "Rh", "Ir", "Rh"], coords)
    from invdesign.chem.crystals import known_matches

    ref = reference(known)
    assert known_matches([swapped], ref) == [None]
    assert disorder_aware_known([swapped], ref) == ["mp-0"]
    # a compound: W and C are not substitutable, so a WC cell with its sites swapped is itself, and an unrelated
    # formula is never matched
    assert disorder_aware_known([wc(), rocksalt_tin()], reference(wc())) == ["mp-0", None]


def test_verdict_table():
    out = novelty_verdicts([l10_irrh(), wc(), None], reference(wc()))
    assert out["novel_disorder_aware"].tolist() == [True, False, pd.NA]
    assert out["alloy_ordering"].tolist() == [True, False, pd.NA]
    assert out["parent_lattice"].tolist() == ["fcc", "", ""]
    assert out["disorder_match"].tolist() == ["", "mp-0", ""]


def test_rule_of_mixtures_from_the_data():
    data = pd.DataFrame({"formula": ["Ir", "Ir", "Rh", "IrRh", "W"], "k": [350.0, 360.0, 260.0, 999.0, np.nan]})
    el = elemental_values(data, "k")
    assert el == {"Ir": 355.0, "Rh": 260.0}
    assert rule_of_mixtures("IrRh3", el) == pytest.approx(0.25 * 355 + 0.75 * 260)
    assert np.isnan(rule_of_mixtures("IrW", el))


def _checked(**cols):
    base = {"rank": [1, 2, 3], "formula": ["IrRh", "WC", "OsW"], "predicted_property": [300.0] * 3,
            "stable": [True] * 3, "eos_bulk_modulus_gpa": [320.0, 310.0, 330.0], "novel_after_relaxation": [True] * 3,
            "novel_disorder_aware": [True, True, False], "alloy_ordering": [True, False, False],
            "parent_lattice": ["fcc", "", ""], "matches_known": ["", "", ""], "oracle_error": ["", "", ""]}
    return pd.DataFrame(base | cols)


@pytest.mark.parametrize("policy, hits", [("exclude", ["WC"]), ("count", ["IrRh", "WC"])])
def test_the_oracle_counts_new_materials_only(policy, hits):
    """A confirmed crystal hit is stable, in the target and a new material: novel under substitutional disorder
    and, unless oracle.alloy_orderings is count, not an alloy ordering; select skips flagged orderings."""
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.oracles.crystal import ChgnetOracle
    from invdesign.properties import PROPERTIES

    oracle = ChgnetOracle(ChgnetOracleSettings(alloy_orderings=policy), {"min": 250.0},
                          PROPERTIES["bulk_modulus_gpa"])
    out, metrics = oracle.finalize(_checked(), None, None, {})
    assert sorted(out.loc[oracle.confirmed(out), "formula"]) == hits
    assert metrics["n_confirmed"] == len(hits) and metrics["n_alloy_orderings"] == 1
    assert metrics["n_known_under_disorder"] == 1
    assert out["final_rank"].iloc[0] == 1 and out["formula"].iloc[0] in hits
    candidates = _checked().assign(passes=True)
    picked = oracle.select(candidates)["formula"].tolist()
    assert picked == (["WC", "OsW"] if policy == "exclude" else ["IrRh", "WC", "OsW"])


def test_rule_of_mixtures_column_where_orderings_count():
    from invdesign.config.oracles import ChgnetOracleSettings
    from invdesign.oracles.crystal import ChgnetOracle
    from invdesign.properties import PROPERTIES

    data = pd.DataFrame({"formula": ["Ir", "Rh", "IrRh"], "property": [350.0, 250.0, 999.0],
                         "structure": [structure_to_record(l10_irrh())] * 3})
    oracle = ChgnetOracle(ChgnetOracleSettings(alloy_orderings="count", rescale_volume=False), {"min": 250.0},
                          PROPERTIES["bulk_modulus_gpa"])
    prepared = oracle.prepare(data)
    assert prepared["elemental_property"] == {"Ir": 350.0, "Rh": 250.0}
    table = pd.DataFrame({"formula": ["IrRh", "WC"]})
    oracle._novelty_verdicts(table, [l10_irrh(), wc()], reference(wc()), prepared)
    assert table["rule_of_mixtures"].iloc[0] == pytest.approx(300.0) and np.isnan(table["rule_of_mixtures"].iloc[1])
    assert "rule_of_mixtures" in oracle.columns
    assert table["alloy_ordering"].tolist() == [True, False] and table["novel_disorder_aware"].tolist() == [True, False]
