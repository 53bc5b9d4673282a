"""Distance of a property value to the campaign target (window or threshold)."""

from __future__ import annotations

import numpy as np

from .config.target import target_bounds  # noqa: F401  (re-exported)
from .errors import InvdesignError


def distance_to_target(values, target: dict) -> np.ndarray:
    """0 inside the target range, else the distance (data units) to its nearest edge."""
    lo, hi = target_bounds(target)
    v = np.asarray(values, dtype=float)
    return np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0)


def in_target(values, target: dict) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.isfinite(v) & (distance_to_target(v, target) == 0.0)


def aim_point(target: dict, y_std: float) -> tuple[float, float]:
    """Bounds shrunk by a margin so that search aims safely inside the range.

    Windows shrink by 20% of their width on each side; thresholds move inward by half a
    standard deviation of the data (or stay put if the window is narrower than that).
    """
    lo, hi = target_bounds(target)
    if np.isfinite(lo) and np.isfinite(hi):
        m = 0.2 * (hi - lo)
        return lo + m, hi - m
    m = 0.5 * y_std
    return (lo + m if np.isfinite(lo) else lo), (hi - m if np.isfinite(hi) else hi)


def check_target_in_range(target: dict, values, where: str, unit: str = "") -> dict:
    """Raise if no data point could ever inform the target; return simple stats."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise InvdesignError(f"{where}: the dataset has no finite property values; check dataset.property_column")
    lo, hi = target_bounds(target)
    dmin, dmax = float(v.min()), float(v.max())
    if lo > dmax or hi < dmin:
        p = _digits_apart((lo, dmax) if lo > dmax else (hi, dmin))
        raise InvdesignError(
            f"{where}.target [{lo:.{p}g}, {hi:.{p}g}] {unit} lies outside the data's range [{dmin:.{p}g}, "
            f"{dmax:.{p}g}] {unit}; the generator cannot learn that region: move the target into the data range")
    share = float(np.mean((v >= lo) & (v <= hi)))
    return {"data_min": dmin, "data_max": dmax, "share_in_target": share, "n": int(v.size)}


def _digits_apart(pair: tuple[float, float]) -> int:
    """Significant digits (at least 3) that print the two numbers differently: a target just outside the data
    must not read as inside it (13.57 against a maximum of 13.5649 printed as 13.6 did)."""
    a, b = pair
    return next((p for p in range(3, 18) if f"{a:.{p}g}" != f"{b:.{p}g}"), 17)


def describe_target(target: dict, unit: str = "") -> str:
    """The target in words: 'in 4-5 eV', 'in -7 to -6 eV' (a negative bound), '>= 250 GPa', '<= 3 eV'; a min with a
    max is the range between them."""
    u = f" {unit}" if unit else ""
    lo, hi = target_bounds(target)
    if np.isfinite(lo) and np.isfinite(hi):
        return f"in {lo:g}{' to ' if min(lo, hi) < 0 else '-'}{hi:g}{u}"
    if np.isfinite(lo):
        return f">= {lo:g}{u}"
    if np.isfinite(hi):
        return f"<= {hi:g}{u}"
    return "the target"
