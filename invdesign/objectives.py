"""Objectives beside the target property (``filters.objectives``), and how candidates are ranked by all of them.

A campaign's target says where its property should be (a window or a threshold); users also ask for ranges and
trade-offs single-target guidance cannot express: a gap window *and* drug-likeness, a stiff crystal that is also
cheap. Each objective is computed for every valid candidate:

======================  =========  ===========================================================================
name                    domain     value
======================  =========  ===========================================================================
``qed``                 molecules  RDKit QED drug-likeness, 0-1, higher is better
``sa_score``            molecules  synthetic accessibility (Ertl & Schuffenhauer 2009, RDKit contrib), 1 easy -
                                   10 hard, lower is better
``cost_usd_per_kg``     crystals   element cost of the composition, USD/kg (pymatgen's ``CostDBElements``),
                                   lower is better
======================  =========  ===========================================================================

``min`` / ``max`` of an objective are hard bounds: a candidate outside one does not pass (its ``reject_reason``
names the objective). Among the passing candidates the ranking (``filters.ranking``) is:

* ``pareto`` (default): candidates predicted inside the target first; then by Pareto front over the distance to
  the target and every objective (front 1: no other candidate is at least as good in all of them and better in
  one); then by the distance to the target;
* ``weighted``: inside the target first; then by the weighted sum of each objective's rank-normalised badness
  (0 best, 1 worst among the passing candidates; weights ``weight``) plus the distance's.

The oracle then checks the best of this ranking (``oracle.top_k``). An E_hull bound for crystals is the oracle's
``e_hull_max``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: name -> (domain, "higher" | "lower" is better, column of the candidate table)
OBJECTIVES = {
    "qed": ("molecules", "higher", "qed"),
    "sa_score": ("molecules", "lower", "sa_score"),
    "cost_usd_per_kg": ("crystals", "lower", "cost_usd_per_kg"),
}


def objective_values(name: str, table: pd.DataFrame) -> np.ndarray:
    """The objective of every row (NaN where it cannot be computed)."""
    if name in ("qed", "sa_score"):
        from .chem.descriptors import qed_and_sa

        qed, sa = qed_and_sa(table["smiles"])
        return qed if name == "qed" else sa
    if name == "cost_usd_per_kg":
        import warnings

        from pymatgen.analysis.cost import CostAnalyzer, CostDBElements

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = CostAnalyzer(CostDBElements())
            out = []
            for f in table["formula"]:
                try:
                    out.append(float(analyzer.get_cost_per_kg(f)))
                except Exception:  # noqa: BLE001  (an element without a price: no value)
                    out.append(np.nan)
        return np.array(out, dtype=float)
    raise KeyError(name)


def pareto_fronts(costs: np.ndarray) -> np.ndarray:
    """Front index (1 = non-dominated) of each row of ``costs`` (rows: candidates, columns: criteria to minimise;
    NaN counts as worst). Repeated peeling of the non-dominated set; O(n^2) per front, fine for thousands."""
    c = np.where(np.isfinite(costs), costs, np.inf)
    front = np.zeros(len(c), dtype=int)
    left = np.arange(len(c))
    k = 0
    while left.size:
        k += 1
        sub = c[left]
        # row i is dominated when some j is <= in every criterion and < in one
        le = (sub[None, :, :] <= sub[:, None, :]).all(axis=2)
        lt = (sub[None, :, :] < sub[:, None, :]).any(axis=2)
        dominated = (le & lt).any(axis=1)
        front[left[~dominated]] = k
        left = left[dominated]
    return front


def apply_objectives(keep: pd.DataFrame, objectives, ranking: str) -> pd.DataFrame:
    """``keep`` (valid, unique candidates with ``passes``, ``distance_to_target``) with one column per objective,
    the bounds applied to ``passes`` / ``reject_reason``, and the ranking key ``objective_rank`` (lower first)."""
    if not objectives:
        return keep
    keep = keep.copy()
    criteria = [keep["distance_to_target"].to_numpy(float)]
    weights = [1.0]
    for obj in objectives:
        _, better, column = OBJECTIVES[obj.name]
        v = objective_values(obj.name, keep)
        keep[column] = v
        for bound, bad in ((obj.min, v < (obj.min if obj.min is not None else -np.inf)),
                           (obj.max, v > (obj.max if obj.max is not None else np.inf))):
            if bound is None:
                continue
            bad = bad | ~np.isfinite(v)
            newly = bad & keep["passes"].to_numpy(bool)
            side = "below min" if bound is obj.min else "above max"
            keep.loc[newly, "reject_reason"] = [f"objective {obj.name} {x:.3g} {side} {bound:g}" for x in v[newly]]
            keep.loc[bad, "passes"] = False
        criteria.append(-v if better == "higher" else v)
        weights.append(obj.weight)
    costs = np.column_stack(criteria)
    passing = keep["passes"].to_numpy(bool)
    key = np.full(len(keep), np.inf)
    if passing.any():
        if ranking == "pareto":
            key[passing] = pareto_fronts(costs[passing])
        else:
            sub = pd.DataFrame(costs[passing])
            badness = sub.rank(pct=True, na_option="bottom").to_numpy()  # 0+ best, 1 worst, per criterion
            key[passing] = badness @ np.asarray(weights) / sum(weights)
    keep["objective_rank"] = key
    return keep
