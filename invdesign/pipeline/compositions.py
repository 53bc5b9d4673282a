"""Structure prediction for a crystal diffusion generator's ``generator.compositions``: which formulas to predict
cells for (listed, or chosen from earlier campaigns' oracle verdicts) and the element lists of those cells. Runs in
the sampling rule (chemistry environment: pymatgen), never in training."""

from __future__ import annotations

import logging

import numpy as np
from pymatgen.core import Composition

from ..chem.crystals import binary_formulas, element_fractions, formula_counts
from ..errors import InvdesignError

log = logging.getLogger("invdesign")


def structure_prediction_formulas(cfg, meta: dict, feedback: list[str], target: dict,
                                  feedback_measure: str | None) -> list[str]:
    """The formulas of a crystal diffusion generator's ``compositions:`` settings (:class:`Compositions`): those
    listed, then (``from_feedback``) every binary of the elements the verdicts in the ``feedback`` tables say
    raise the property toward ``target`` that no earlier campaign verified, best composition score first (the
    predictor term neutral), at most ``max_formulas``."""
    where = "generator.compositions.formulas"
    known = set(meta["elements"])
    formulas = []
    for f in cfg.formulas:
        try:
            counts = formula_counts(f)
        except ValueError as err:
            raise InvdesignError(f"{where}: {err}") from None
        unknown = sorted(set(counts) - known)
        if unknown:
            raise InvdesignError(f"{where}: {f} has {', '.join(unknown)}, which the generator never saw in its "
                                 "training cells; drop that formula or train on data with those elements")
        if sum(counts.values()) > int(meta["max_atoms"]):
            raise InvdesignError(f"{where}: {f} needs {sum(counts.values())} atoms per cell, more than the "
                                 f"generator's {meta['max_atoms']} (dataset.max_atoms); give a smaller formula")
        reduced = Composition(counts).reduced_formula  # "Ir6Re2" and "ReIr3" are one formula
        if reduced not in formulas:
            formulas.append(reduced)
    if cfg.from_feedback:
        from ..search.feedback import feedback_ranker

        ranker, verified = feedback_ranker(feedback, target, feedback_measure)
        verified = {Composition(f).reduced_formula for f in verified}
        elements = [el for el in ranker.raising_elements(cfg.min_verdicts) if el in known]
        if len(elements) < 2:
            raise InvdesignError(f"generator.compositions.from_feedback: the verdicts in {feedback}"
                                 f" name {len(elements)} element(s) that raise the property ({', '.join(elements)});"
                                 " verify more candidates first or list formulas under compositions.formulas")
        space = {f: c for f, c in binary_formulas(elements, cfg.max_reduced_atoms).items()
                 if f not in verified and sum(c.values()) <= int(meta["max_atoms"])}
        names = list(space)
        if names:
            score = ranker.score([element_fractions(f) for f in names], np.full(len(names), ranker.centre))
            names = [names[i] for i in np.argsort(-score["score"].to_numpy(), kind="stable")]
        log.info("structure prediction from feedback: elements %s, %d unverified binaries, the %d best-scored taken",
                 " ".join(elements), len(names), min(len(names), cfg.max_formulas))
        formulas += [f for f in names[: cfg.max_formulas] if f not in formulas]
    if not formulas:
        raise InvdesignError("generator.compositions: no formula to predict structures for; list some under "
                             "formulas: or set from_feedback: true with oracle.feedback_from")
    return formulas


def composition_cells(formulas: list[str], meta: dict, cells_per_formula: int):
    """(element-index lists, one per cell, the reduced formula of each cell) for structure prediction: cells of one,
    two, ... ``cells_per_formula`` formula units, each the smallest multiple that fits ``meta['max_atoms']``
    when a larger one does not."""
    index = {el: i for i, el in enumerate(meta["elements"])}
    types, owner = [], []
    for f in formulas:
        counts = formula_counts(f)
        f = Composition(counts).reduced_formula  # as the decoded cells name it
        per_unit = sum(counts.values())
        for z in range(1, int(cells_per_formula) + 1):
            z_cell = z if z * per_unit <= int(meta["max_atoms"]) else 1
            types.append([index[el] for el, n in counts.items() for _ in range(n * z_cell)])
            owner.append(f)
    return types, owner
