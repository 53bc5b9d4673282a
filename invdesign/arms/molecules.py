"""The classical molecule arms: the graph GA (``graph_ga``) and the virtual library of single graph edits
(``edit_library``) of :mod:`invdesign.chem.graph_ga`, both started from random training molecules of the campaign's
data set and within its chemistry (its elements, at most its largest molecule's heavy atoms). Known molecules
(the campaign's known table) are never proposed.

Steered by earlier campaigns (``seeds_from``, :func:`read_seeds`): their confirmed molecules come first among the
starting molecules, and the molecules they checked already are not proposed again; the proposals then carry an
``n_seeds`` column (how many confirmed molecules the arm started from)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvdesignError
from .base import ArmRequest, Seeds

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


def _starts(request: ArmRequest, n: int, limits, rng: np.random.Generator, arm: str) -> tuple[list[str], int]:
    """The ``n`` molecules an arm starts from: the seeds within the campaign's chemistry (best ranked first, at most
    ``n``), then random training molecules; and how many seeds there are among them."""
    from ..chem.graph_ga import accept

    seeds = []
    if request.seeds is not None:
        fit = list(dict.fromkeys(s for s in (accept(m, limits) for m in request.seeds.molecules) if s))
        seeds = fit[:n]
        log.info("%s: %d seeds, the confirmed molecules of %d seeds_from table(s) (%d of %d within the campaign's "
                 "elements and size)", arm, len(seeds), request.seeds.n_tables, len(fit),
                 len(request.seeds.molecules))
    taken = set(seeds)
    return seeds + [m for m in _parents(request, n - len(seeds), rng) if m not in taken], len(seeds)


def _table(request: ArmRequest, smiles: list[str], n_seeds: int, arm: str) -> pd.DataFrame:
    """The proposals; when the arm is seeded, without the molecules the seeds' tables checked already and with an
    ``n_seeds`` column."""
    from ..chem.molecules import novelty_key

    table = pd.DataFrame({"smiles": smiles, "generator_pred": np.full(len(smiles), request.aim)})
    if request.seeds is None:
        return table
    again = table["smiles"].map(novelty_key).isin(request.seeds.answered)
    log.info("%s: %d proposals left out, the seeds_from tables checked them already", arm, int(again.sum()))
    return table[~again].reset_index(drop=True).assign(n_seeds=n_seeds)


def _truth(values: pd.Series) -> pd.Series:
    """A verdict column as booleans (a CSV holds them as text: "False" must not read as true; missing is false)."""
    return values.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))


def read_seeds(paths: list[str]) -> Seeds:
    """The :class:`~.base.Seeds` of earlier molecule campaigns' ``candidates_verified`` tables (Parquet or CSV): the
    molecules whose ``confirmed`` column (``dft_confirmed`` where there is none) is true, in table order; and as
    known answers every molecule their DFT tier ran on (``dft_ok`` set) and every confirmed one. A table that is
    missing, unreadable or without those columns is a one-line :class:`InvdesignError`."""
    from ..chem.molecules import novelty_key

    fix = ("give seeds_from the candidates_verified.parquet (or .csv) of an earlier molecule campaign, relative to "
           "where snakemake runs")
    molecules, answered = [], set()
    for path in paths:
        p = Path(path)
        try:
            table = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        except FileNotFoundError:
            raise InvdesignError(f"seeds_from: {path} not found; {fix}") from None
        except Exception as exc:  # noqa: BLE001  (pyarrow and the CSV parser raise many types)
            raise InvdesignError(f"seeds_from: {path} cannot be read as a table ({type(exc).__name__}); "
                                 f"{fix}") from None
        verdict = next((c for c in ("confirmed", "dft_confirmed") if c in table), None)
        if "smiles" not in table or verdict is None:
            lacks = "a smiles column" if "smiles" not in table else "a confirmed (or dft_confirmed) column"
            raise InvdesignError(f"seeds_from: {path} lacks {lacks}; {fix}, written by its verify step")
        confirmed = _truth(table[verdict])
        checked = (confirmed | table["dft_ok"].notna()) if "dft_ok" in table else confirmed
        keys = table["smiles"].map(novelty_key)
        molecules += [k for k in keys[confirmed] if k]
        answered |= {k for k in keys[checked] if k}
    seeds = Seeds(list(dict.fromkeys(molecules)), frozenset(answered), len(paths))
    log.info("seeds_from: %d confirmed molecules, %d checked ones in %d table(s)", len(seeds.molecules),
             len(seeds.answered), len(paths))
    return seeds


class GraphGA:
    """Tournament-selection graph GA (:func:`invdesign.chem.graph_ga.run_ga`) started from ``population``
    molecules: the seeds (``seeds_from``), then random training molecules; its fitness is minus the independent
    predictor's distance to the target and 0.1 x its distance to :attr:`~.base.ArmRequest.aim` (the window's centre:
    a gradient inside the target, where the distance is 0). Proposes every novel molecule it scored, best first."""

    def __init__(self, sample_settings) -> None:
        self.settings = sample_settings

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        from ..chem.graph_ga import run_ga
        from ..chem.molecules import novelty_key
        from ..targets import distance_to_target

        s, tgt, aim = self.settings, request.target, request.aim
        limits = _limits(request)
        start, n_seeds = _starts(request, s.population, limits, np.random.default_rng(s.seed), "graph_ga")
        known = _known(request)

        def fitness(batch: list[str]) -> np.ndarray:
            pred = request.predict(pd.DataFrame({"smiles": batch}))
            return -(distance_to_target(pred, tgt) + (0.1 * np.abs(pred - aim) if np.isfinite(aim) else 0.0))

        scored = run_ga(fitness, start, generations=s.generations, population=s.population, offspring=s.offspring,
                        mutation_rate=s.mutation_rate, seed=s.seed, limits=limits,
                        keep=lambda smi: novelty_key(smi) not in known,
                        progress=lambda g, best: log.info("graph_ga generation %d: best fitness %.3f", g, best))
        novel = [smi for smi, _ in sorted(scored.items(), key=lambda kv: -kv[1]) if novelty_key(smi) not in known]
        log.info("graph_ga: %d molecules scored, %d novel", len(scored), len(novel))
        return _table(request, novel, n_seeds, "graph_ga")


class EditLibrary:
    """``edits_per_parent`` random single graph edits (:func:`invdesign.chem.graph_ga.mutate`) of each of
    ``parents`` molecules (the seeds of ``seeds_from``, then random training molecules): the distinct novel ones, a
    virtual library that the campaign's predictor screens in its ranking."""

    def __init__(self, sample_settings) -> None:
        self.settings = sample_settings

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        from ..chem.graph_ga import mutate
        from ..chem.molecules import novelty_key

        s = self.settings
        limits, edits, known = _limits(request), random.Random(s.seed), _known(request)
        parents, n_seeds = _starts(request, s.parents, limits, np.random.default_rng(s.seed), "edit_library")
        made = {c for p in parents for c in (mutate(p, edits, limits) for _ in range(s.edits_per_parent)) if c}
        library = sorted(c for c in made if novelty_key(c) not in known)
        log.info("edit_library: %d distinct single-edit neighbours of %d molecules, %d novel", len(made),
                 len(parents), len(library))
        return _table(request, library, n_seeds, "edit_library")
