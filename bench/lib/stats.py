"""Intervals and tests of the bench's hit counts, and the molecule oracle's DFT confirmation rule."""

from __future__ import annotations

import json

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (95% at the default ``z``); NaNs when ``n`` is 0."""
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]


def poisson_rate_ci(k: int, exposure: float, level: float = 0.95) -> list[float]:
    """Exact (Garwood) interval of a rate: ``k`` events over ``exposure`` (e.g. hits per CPU-hour)."""
    from scipy.stats import chi2

    if not exposure:
        return [float("nan"), float("nan")]
    a = 1 - level
    lo = chi2.ppf(a / 2, 2 * k) / 2 if k else 0.0
    hi = chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return [float(lo / exposure), float(hi / exposure)]


def fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value of k1 of n1 against k2 of n2 (two arms' hit counts)."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])


def compare_rates(n_t: int, k_t: int, n_s: int, k_s: int) -> dict:
    """A targeted arm's ``k_t`` hits of ``n_t`` against a screening arm's ``k_s`` of ``n_s``: the one-sided Fisher
    exact p-value (targeted better) and the rate ratio with its 90% two-sided interval (where both counts are
    above zero)."""
    from scipy.stats import fisher_exact
    from scipy.stats.contingency import relative_risk

    p = fisher_exact([[k_t, n_t - k_t], [k_s, n_s - k_s]], alternative="greater").pvalue
    out = {"targeted": [k_t, n_t], "screening": [k_s, n_s], "p_one_sided_fisher": float(p)}
    if k_s and k_t:
        rr = relative_risk(k_t, n_t, k_s, n_s)
        ci = rr.confidence_interval(confidence_level=0.90)
        out |= {"rate_ratio": float(rr.relative_risk), "ci90": [float(ci.low), float(ci.high)]}
    else:
        out["rate_ratio"] = None if not k_t else float("inf")
    return out


def confirmed_share(values, window, threshold: float) -> np.ndarray:
    """Per DFT value: at least ``threshold`` of the shipped protocol errors keep it in the window (the oracle's
    dft_confirmed rule)."""
    from importlib import resources

    from invdesign.oracles.xtb import target_probability

    e = np.asarray(json.loads(resources.files("invdesign.oracles").joinpath("dft_protocol_qm9.json").read_text())
                   ["errors"]["gap_ev"], float)
    return target_probability(values, {"residuals": (-e).tolist()}, {"window": list(window)}) >= threshold
