"""Oracle-feedback ranking: learn from the physics oracle's verdicts on checked candidates to rank the rest.

A property predictor trained on one label source (e.g. DFT bulk moduli) ranks generated candidates, but the
campaign is judged by an independent oracle (e.g. CHGNet relaxation, hull and EOS), whose scale and whose idea
of stability differ by chemistry. Once the oracle has judged some candidates, this module fits two small,
regularised models on those verdicts, with the composition (element fractions) and the predictor's value as
features:

* ``P(stable)``: L2-regularised logistic regression on the oracle's stable / not stable verdicts;
* ``K | stable``: ridge regression of the oracle's property on the stable candidates, with a Gaussian
  residual of the fitted spread.

The score of a new candidate is the probability that the oracle will call it stable *and* put its property
inside the target window: ``P(stable) * P(lo <= K <= hi | stable)``. Elements the oracle has not seen carry
no weight, so such candidates are scored by the predictor term alone.

:class:`OracleFeedbackRanker` is numpy/scipy only: compositions come in as ``{element: fraction}`` mappings.
:func:`feedback_ranker` and :func:`rank_by_feedback` read earlier campaigns' verified tables (pandas, pymatgen).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import norm

log = logging.getLogger("invdesign")


class OracleFeedbackRanker:
    """Scores candidates by the chance the oracle finds them stable and on target, learnt from its verdicts.

    ``target`` is ``(lo, hi)`` in the property's unit; either may be None (a threshold). ``l2`` is the
    penalty on the element and predictor weights of both models (features are element fractions in [0, 1]
    and the predictor value standardised by ``centre``/``scale``).
    """

    def __init__(self, target: tuple[float | None, float | None], *, l2: float = 1.0,
                 centre: float | None = None, scale: float = 50.0) -> None:
        lo, hi = target
        if lo is None and hi is None:
            raise ValueError("target needs a lower bound, an upper bound or both")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"target ({lo}, {hi}): the lower bound is above the upper bound")
        if scale <= 0 or l2 < 0:
            raise ValueError("scale must be > 0 and l2 >= 0")
        self.lo, self.hi, self.l2, self.scale = lo, hi, float(l2), float(scale)
        self.centre = centre if centre is not None else (lo if lo is not None else hi)
        self.elements: list[str] = []

    def _features(self, compositions: Sequence[Mapping[str, float]], predicted) -> np.ndarray:
        predicted = np.asarray(predicted, dtype=float)
        if len(compositions) != len(predicted):
            raise ValueError(f"{len(compositions)} compositions but {len(predicted)} predicted values")
        index = {el: i for i, el in enumerate(self.elements)}
        x = np.zeros((len(predicted), len(self.elements) + 2))
        for row, comp in enumerate(compositions):
            total = float(sum(comp.values()))
            if total <= 0:
                raise ValueError(f"composition {dict(comp)!r} has no atoms")
            for el, amount in comp.items():
                if el in index:  # unseen elements carry no weight
                    x[row, index[el]] = amount / total
        x[:, -2] = (predicted - self.centre) / self.scale
        x[:, -1] = 1.0
        return x

    def _penalty(self) -> np.ndarray:
        pen = np.full(len(self.elements) + 2, self.l2)
        pen[-1] = 1e-3  # the intercept is (almost) free; a little keeps it finite when all verdicts agree
        return pen

    def fit(self, compositions: Sequence[Mapping[str, float]], predicted, stable, measured) -> OracleFeedbackRanker:
        """``stable``: the oracle's verdicts (bool); ``measured``: its property value, NaN where not measured.
        Needs at least two stable candidates with a measured value."""
        stable = np.asarray(stable, dtype=bool)
        measured = np.asarray(measured, dtype=float)
        if not (len(compositions) == len(stable) == len(measured)):
            raise ValueError("compositions, predicted, stable and measured must have the same length")
        self.elements = sorted({el for comp in compositions for el in comp})
        self.element_verdicts = {el: sum(1 for comp in compositions if comp.get(el, 0) > 0) for el in self.elements}
        x = self._features(compositions, predicted)
        pen = self._penalty()
        y = stable.astype(float)

        def loss(w):
            z = x @ w
            return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(pen * w * w), \
                x.T @ (expit(z) - y) + pen * w

        self.w_stable = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
        rows = stable & np.isfinite(measured)
        if rows.sum() < 2:
            raise ValueError(f"need at least 2 stable candidates with a measured value, got {int(rows.sum())}")
        xs, ks = x[rows], measured[rows]
        self.w_value = np.linalg.solve(xs.T @ xs + np.diag(pen), xs.T @ ks)
        resid = xs @ self.w_value - ks
        self.sigma = max(float(np.sqrt(np.sum(resid**2) / max(len(ks) - 2, 1))), 1e-6)
        self.n_fit, self.n_stable = len(y), int(rows.sum())
        return self

    def score(self, compositions: Sequence[Mapping[str, float]], predicted) -> pd.DataFrame:
        """One row per candidate: ``p_stable``, ``expected`` (the property if stable), ``p_on_target``
        (given stable) and ``score`` = their product of probabilities, the ranking key (higher is better)."""
        if not self.elements:
            raise RuntimeError("fit the ranker on the oracle's verdicts first")
        x = self._features(compositions, predicted)
        p_stable = expit(x @ self.w_stable)
        mu = x @ self.w_value
        above = norm.sf((self.lo - mu) / self.sigma) if self.lo is not None else 1.0
        below = norm.sf((mu - self.hi) / self.sigma) if self.hi is not None else 1.0
        p_target = np.clip(above + below - 1.0, 0.0, 1.0)
        return pd.DataFrame({"p_stable": p_stable, "expected": mu, "p_on_target": p_target,
                             "score": p_stable * p_target})

    def raising_elements(self, min_verdicts: int) -> list[str]:
        """The elements the verdicts say raise the property: a positive fitted property weight, present in at
        least ``min_verdicts`` of the verdicts (one lucky cell is not evidence). Sorted by that weight."""
        if not self.elements:
            raise RuntimeError("fit the ranker on the oracle's verdicts first")
        w = self.weights()["value"].iloc[: len(self.elements)]
        keep = [el for el in self.elements if w[el] > 0 and self.element_verdicts.get(el, 0) >= min_verdicts]
        return sorted(keep, key=lambda el: -w[el])

    def weights(self) -> pd.DataFrame:
        """The fitted weights: per element, its log-odds of stability and its property contribution at a pure element
        (both relative to the intercept); then the predictor's weight and the intercept."""
        names = [*self.elements, "predicted", "intercept"]
        return pd.DataFrame({"stable_log_odds": self.w_stable, "value": self.w_value}, index=names)


#: the columns of an earlier campaign's verified table the ranker reads, besides the oracle's measure
FEEDBACK_COLUMNS = ("formula", "predicted_property", "stable")


def feedback_ranker(paths: list[str], target: dict, measure: str):
    """(an :class:`~invdesign.search.feedback.OracleFeedbackRanker` fitted on the oracle's verdicts in the
    ``candidates_verified`` tables at ``paths``: stability and ``measure``, the column the oracle's declarations name
    for the campaign property; the set of reduced formulas those tables verified)."""
    from ..chem.crystals import element_fractions
    from ..errors import InvdesignError
    from ..targets import target_bounds

    tables = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise InvdesignError(f"oracle.feedback_from: {path} not found; give the candidates_verified.parquet "
                                 "(or .csv) of an earlier crystal campaign, relative to where snakemake runs")
        t = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        missing = [c for c in (*FEEDBACK_COLUMNS, measure) if c not in t.columns]
        if missing:
            raise InvdesignError(f"oracle.feedback_from: {path} lacks column(s) {', '.join(missing)}; it must be a "
                                 "candidates_verified table of a crystal campaign")
        tables.append(t[[*FEEDBACK_COLUMNS, measure]])
    seen = pd.concat(tables, ignore_index=True)
    verified_formulas = set(seen["formula"].dropna())
    seen = seen[seen["stable"].notna() & seen["predicted_property"].notna()]
    # a CSV may hold the verdicts as text; "False" must not read as true
    stable = seen["stable"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0")).to_numpy(bool)
    lo, hi = target_bounds(target)
    pred = seen["predicted_property"].to_numpy(float)
    ranker = OracleFeedbackRanker((lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None),
                                  scale=float(np.std(pred)) or 1.0)
    try:
        ranker.fit([element_fractions(f) for f in seen["formula"]], pred, stable,
                   pd.to_numeric(seen[measure], errors="coerce").to_numpy(float))
    except ValueError as err:
        raise InvdesignError(f"oracle.feedback_from ({', '.join(map(str, paths))}): {err}; verify more candidates "
                             "in those campaigns first or drop oracle.feedback_from") from None
    log.info("oracle feedback: ranker fitted on %d earlier verdicts (%d stable) from %d table(s)", len(seen),
             int(stable.sum()), len(paths))
    return ranker, verified_formulas


def rank_by_feedback(cands: pd.DataFrame, paths: list[str], target: dict, measure: str) -> pd.DataFrame:
    """Re-order crystal candidates by what the oracle said about earlier ones.

    ``paths`` are ``candidates_verified`` tables (Parquet or CSV) of earlier crystal campaigns. An
    :class:`~invdesign.search.feedback.OracleFeedbackRanker` fitted on their verdicts (stable or not, the oracle's
    ``measure`` column of the stable ones; element fractions and the predictor's value as features) scores each
    candidate by P(stable) x P(property in the target | stable); candidates come back best score first, with
    ``feedback_score``, ``feedback_p_stable`` and ``feedback_expected_gpa`` columns. Candidates whose reduced
    formula those tables verified already are left out: the oracle's budget goes to new chemistry."""
    from ..chem.crystals import element_fractions

    ranker, verified_formulas = feedback_ranker(paths, target, measure)
    again = cands["formula"].isin(verified_formulas)
    if again.any():
        log.info("oracle feedback: %d candidates skipped, their formulas were verified already", int(again.sum()))
        cands = cands[~again]
    if cands.empty:
        return cands
    score = ranker.score([element_fractions(f) for f in cands["formula"]], cands["predicted_property"].to_numpy(float))
    out = cands.reset_index(drop=True).assign(feedback_score=score["score"].to_numpy(),
                                              feedback_p_stable=score["p_stable"].to_numpy(),
                                              feedback_expected_gpa=score["expected"].to_numpy())
    return out.sort_values("feedback_score", ascending=False, kind="stable")
