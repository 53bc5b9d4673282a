"""The graph GA baseline: its edits give valid molecules within the limits, and selection climbs a score."""

import random

from rdkit import Chem

from invdesign.chem.graph_ga import Limits, accept, crossover, mutate, run_ga

SEEDS = ["CCO", "CC(=O)N", "c1ccoc1", "CC1CC1", "OCC#N", "CN(C)C=O", "FC(F)CO", "C1CCNC1", "CC(C)CC", "O=C1CCC1"]


def test_mutations_and_crossovers_stay_valid_and_within_the_limits():
    rng = random.Random(0)
    limits = Limits()
    children = [mutate(s, rng, limits) for s in SEEDS * 10] + \
        [crossover(rng.choice(SEEDS), rng.choice(SEEDS), rng, limits) for _ in range(100)]
    made = [c for c in children if c]
    assert len(made) >= 140 and len(set(made)) > 60  # edits mostly succeed and are diverse
    for c in made:
        mol = Chem.MolFromSmiles(c)
        assert mol is not None and 3 <= mol.GetNumAtoms() <= 9 and "." not in c
        assert {a.GetSymbol() for a in mol.GetAtoms()} <= {"C", "N", "O", "F"}
        assert accept(c, limits) == c
    assert accept("[Na+].[Cl-]", limits) is None and accept("C" * 12, limits) is None
    assert accept("C[CH2]", limits) is None  # a radical


def test_selection_climbs_the_score():
    """Score = number of nitrogens (a stand-in for the predictor's closeness to a target): the GA finds molecules
    with far more N than any seed has (the seeds have at most 1)."""
    def score(batch):
        return [sum(a.GetSymbol() == "N" for a in Chem.MolFromSmiles(s).GetAtoms()) for s in batch]

    scored = run_ga(score, SEEDS, generations=6, population=20, offspring=40, seed=1)
    assert max(score(SEEDS)) == 1 and max(scored.values()) >= 4
    again = run_ga(score, SEEDS, generations=6, population=20, offspring=40, seed=1)
    assert again == scored  # seeded: the same run twice
