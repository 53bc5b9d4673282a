"""Which candidates a confirming tier spends its budget on: the chance that each is confirmed, from everything known
about it (issue #35).

Two estimates of a molecule's data-scale value are at hand when the DFT tier chooses: the calibrated xTB value
(with the calibration's held-out residual spread ``s_x``) and the independent predictor's value. The predictor's
error on generated molecules is larger than on its own test split, so it is estimated from the campaign's own
checked molecules, where the two estimates meet (empirical Bayes): the mean square of ``predicted - calibrated``
less ``s_x^2`` (errors taken as independent).

Each molecule's value is then the precision-weighted mean of the two, and where they disagree by more than their
spreads allow, the variance is widened by the squared disagreement in standard units (the Birge ratio), so two
estimates in conflict give a wide, honest interval rather than a confident middle.

:func:`confirmation_probability` is the chance that the confirming tier's verdict is "confirmed": the tier's own
measurement is the value plus one of its measured protocol errors, and it confirms when at least ``threshold`` of
those errors keep the data-scale value in the target. Numpy and scipy.
"""

from __future__ import annotations

import numpy as np



def predictor_spread(calibrated, predicted, s_x: float, *, min_rows: int = 5) -> float:
    """The predictor's error spread on these molecules, from its differences to their calibrated xTB values: the
    mean square difference less the calibration's ``s_x^2`` (at least a quarter of ``s_x``). With fewer than
    ``min_rows`` molecules holding both, too few to tell the two spreads apart, the differences' root mean square
    (at least ``s_x``): the predictor then gives way to the calibrated value where they disagree. A mean offset
    between the two counts as the predictor's error, not as a bias to correct: which of the two is off on
    generated molecules is not known before DFT."""
    c, p = np.asarray(calibrated, float), np.asarray(predicted, float)
    ok = np.isfinite(c) & np.isfinite(p)
    floor = 0.25 * s_x
    if ok.sum() < min_rows:
        return float(max(s_x, np.sqrt(np.mean((p[ok] - c[ok]) ** 2)) if ok.any() else s_x))
    return float(np.sqrt(max(np.mean((p[ok] - c[ok]) ** 2) - s_x ** 2, floor ** 2)))


def combine(calibrated, s_x: float, predicted, s_p: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) of each molecule's value from its calibrated xTB value (spread ``s_x``) and the
    predictor's value (spread ``s_p``); the variance widened by the Birge ratio where the two disagree beyond their
    spreads. A molecule with one estimate only keeps that one; with none, NaN."""
    c = np.asarray(calibrated, float)
    p = np.asarray(predicted, float)
    wx, wp = 1.0 / s_x ** 2, 1.0 / s_p ** 2
    both = np.isfinite(c) & np.isfinite(p)
    mean = np.where(both, (wx * np.nan_to_num(c) + wp * np.nan_to_num(p)) / (wx + wp),
                    np.where(np.isfinite(c), c, p))
    var = np.where(both, 1.0 / (wx + wp), np.where(np.isfinite(c), s_x ** 2, s_p ** 2))
    birge = np.where(both, (np.nan_to_num(c) - np.nan_to_num(p)) ** 2 / (s_x ** 2 + s_p ** 2), 1.0)
    return mean, np.sqrt(var * np.maximum(birge, 1.0))


def confirmed_intervals(bounds: tuple[float, float], protocol_errors, threshold: float) -> list[tuple[float, float]]:
    """The measured values v that the confirming tier confirms: at least ``threshold`` of the errors e put v - e
    inside ``bounds``. Whether it does changes only where v - e crosses a bound, so the set is exact: intervals
    between consecutive breakpoints lo + e, hi + e."""
    lo, hi = bounds
    e = np.sort(np.asarray(protocol_errors, float)[np.isfinite(protocol_errors)])
    edges = np.unique(np.concatenate([lo + e, hi + e]))
    edges = edges[np.isfinite(edges)]
    if not len(edges):  # a bound at infinity on both sides: everything
        return [(-np.inf, np.inf)] if np.isinf(lo) and np.isinf(hi) else []
    cuts = np.concatenate([[-np.inf], edges, [np.inf]])
    mids = np.concatenate([[edges[0] - 1.0], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 1.0]])
    share = (np.searchsorted(e, mids - lo, side="right") - np.searchsorted(e, mids - hi, side="left")) / len(e)
    ok = share >= threshold
    out, i = [], 0
    while i < len(ok):
        if ok[i]:
            j = i
            while j + 1 < len(ok) and ok[j + 1]:
                j += 1
            out.append((float(cuts[i]), float(cuts[j + 1])))
            i = j + 1
        else:
            i += 1
    return out


def confirmation_probability(mean, sd, bounds: tuple[float, float], protocol_errors, threshold: float) -> np.ndarray:
    """P(the confirming tier confirms the molecule): its measurement is value + e (value ~ N(mean, sd), e one of
    ``protocol_errors``, measured minus data-scale, each equally likely), and a measurement is confirmed when it
    lies in :func:`confirmed_intervals`. Exact normal probabilities, NaN where the mean is NaN."""
    from scipy.special import ndtr

    mean, sd = np.asarray(mean, float), np.maximum(np.asarray(sd, float), 1e-12)
    e = np.asarray(protocol_errors, float)
    e = e[np.isfinite(e)]
    centre = np.nan_to_num(mean)[:, None] + e[None, :]  # (rows, errors): the measurement's mean for each error
    p = np.zeros(len(mean))
    for a, b in confirmed_intervals(bounds, e, threshold):
        p += (ndtr((b - centre) / sd[:, None]) - ndtr((a - centre) / sd[:, None])).mean(axis=1)
    return np.where(np.isfinite(mean) & np.isfinite(sd), p, np.nan)


def refit(calibrated, predicted, measured, s_x: float, s_p: float, protocol_mean: float = 0.0,
          prior_rows: float = 2.0) -> dict:
    """The choice model after DFT: offsets of the calibrated xTB value and of the predictor from the data-scale
    value (``measured`` less the protocol's mean error) on the molecules DFT checked (NaN elsewhere), and their
    spreads; each shrunk toward no offset and the prior spread (``s_x``, ``s_p``) with ``prior_rows``
    pseudo-molecules. Returns ``{offset_x, offset_p, s_x, s_p, n}`` for :func:`combine` on ``calibrated - offset_x``
    and ``predicted - offset_p``."""
    c, p = np.asarray(calibrated, float), np.asarray(predicted, float)
    y = np.asarray(measured, float) - protocol_mean
    out = {"n": 0, "offset_x": 0.0, "offset_p": 0.0, "s_x": float(s_x), "s_p": float(s_p)}
    for key, est, prior in (("x", c, s_x), ("p", p, s_p)):
        d = (est - y)[np.isfinite(est) & np.isfinite(y)]
        offset = float(d.sum() / (len(d) + prior_rows))
        out[f"offset_{key}"] = offset
        out[f"s_{key}"] = float(np.sqrt((prior_rows * prior ** 2 + np.sum((d - offset) ** 2)) / (prior_rows + len(d))))
        out["n"] = max(out["n"], int(len(d)))
    return out
