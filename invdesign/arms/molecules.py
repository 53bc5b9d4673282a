"""The classical molecule arms: the graph GA (``graph_ga``) and the virtual library of single graph edits
(``edit_library``) of :mod:`invdesign.chem.graph_ga`, both started from random training molecules of the campaign's
data set and within its chemistry (its elements, at most its largest molecule's heavy atoms). Known molecules
(the campaign's known table) are never proposed."""

from __future__ import annotations

import logging
import random

import numpy as np
import pandas as pd

from .base import ArmRequest

log = logging.getLogger("invdesign")


def _limits(request: ArmRequest):
    """The graph edits' :class:`~invdesign.chem.graph_ga.Limits` from the training molecules: their elements (those
    the edits know a valence of) and their largest size."""
    from rdkit import Chem

    from ..chem.graph_ga import VALENCE, Limits

    mols = [m for m in map(Chem.MolFromSmiles, request.train["smiles"]) if m is not None]
    elements = sorted({a.GetSymbol() for m in mols for a in m.GetAtoms()} & set(VALENCE))
    return Limits(elements=tuple(elements), max_heavy_atoms=max(m.GetNumAtoms() for m in mols))


def _known(request: ArmRequest) -> set[str]:
    """The known table's molecules, in the form novelty is judged in (:func:`invdesign.data.known.novelty_key`)."""
    return set(request.known["smiles"])


def _parents(request: ArmRequest, n: int, rng: np.random.Generator) -> list[str]:
    train = request.train["smiles"].tolist()
    return [str(s) for s in rng.choice(train, size=min(n, len(train)), replace=False)]


def _table(smiles: list[str], aim: float) -> pd.DataFrame:
    return pd.DataFrame({"smiles": smiles, "generator_pred": np.full(len(smiles), aim)})


class GraphGA:
    """Tournament-selection graph GA (:func:`invdesign.chem.graph_ga.run_ga`) seeded with ``population`` random
    training molecules; its fitness is minus the independent predictor's distance to the target and 0.1 x its
    distance to :attr:`~.base.ArmRequest.aim` (the window's centre: a gradient inside the target, where the
    distance is 0). Proposes every novel molecule it scored, best first."""

    def __init__(self, sample_settings) -> None:
        self.settings = sample_settings

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        from ..chem.graph_ga import run_ga
        from ..chem.molecules import novelty_key
        from ..targets import distance_to_target

        s, tgt, aim = self.settings, request.target, request.aim
        seeds = _parents(request, s.population, np.random.default_rng(s.seed))
        known = _known(request)

        def fitness(batch: list[str]) -> np.ndarray:
            pred = request.predict(pd.DataFrame({"smiles": batch}))
            return -(distance_to_target(pred, tgt) + (0.1 * np.abs(pred - aim) if np.isfinite(aim) else 0.0))

        scored = run_ga(fitness, seeds, generations=s.generations, population=s.population, offspring=s.offspring,
                        mutation_rate=s.mutation_rate, seed=s.seed, limits=_limits(request),
                        keep=lambda smi: novelty_key(smi) not in known,
                        progress=lambda g, best: log.info("graph_ga generation %d: best fitness %.3f", g, best))
        novel = [smi for smi, _ in sorted(scored.items(), key=lambda kv: -kv[1]) if novelty_key(smi) not in known]
        log.info("graph_ga: %d molecules scored, %d novel", len(scored), len(novel))
        return _table(novel, aim)


class EditLibrary:
    """``edits_per_parent`` random single graph edits (:func:`invdesign.chem.graph_ga.mutate`) of each of
    ``parents`` random training molecules: the distinct novel ones, a virtual library that the campaign's
    predictor screens in its ranking."""

    def __init__(self, sample_settings) -> None:
        self.settings = sample_settings

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        from ..chem.graph_ga import mutate
        from ..chem.molecules import novelty_key

        s = self.settings
        parents = _parents(request, s.parents, np.random.default_rng(s.seed))
        limits, edits, known = _limits(request), random.Random(s.seed), _known(request)
        made = {c for p in parents for c in (mutate(p, edits, limits) for _ in range(s.edits_per_parent)) if c}
        library = sorted(c for c in made if novelty_key(c) not in known)
        log.info("edit_library: %d distinct single-edit neighbours of %d training molecules, %d novel", len(made),
                 len(parents), len(library))
        return _table(library, request.aim)
