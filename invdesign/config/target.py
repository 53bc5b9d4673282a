"""Settings of a campaign's target: a window or a threshold on the property (``target:``). Standard library
only."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import ConfigError, Spec, setting


@dataclass(frozen=True, kw_only=True)
class Target(Spec):
    __doc_line__ = "A window [low, high] or a threshold (min and/or max) on the property, in the data's unit."
    window: list[float] | None = setting(None, min_items=2, max_items=2)
    min: float | None = setting(None)
    max: float | None = setting(None)
    unit: str | None = setting(None, doc="for the record (eV, GPa); checked against the property's unit when known")

    def check(self, where, source):
        if self.window is None and self.min is None and self.max is None:
            raise ConfigError(f"{source}: {where} needs a window: [low, high] or a threshold min: / max:")
        if self.window is not None and (self.min is not None or self.max is not None):
            raise ConfigError(f"{source}: {where}: give either window or min/max, not both")
        lo, hi = self.bounds()
        if lo >= hi:
            raise ConfigError(f"{source}: {where}: lower bound {lo} must be below upper bound {hi}")

    def bounds(self) -> tuple[float, float]:
        return target_bounds(self.to_dict())

    def to_dict(self) -> dict:
        """The keys given (a window or min / max, and the unit if given), as the user wrote them."""
        return {k: v for k, v in super().to_dict().items() if v is not None}


def target_bounds(target: dict) -> tuple[float, float]:
    """(low, high) of the accepted property range of a target mapping; open ends are +-inf."""
    if target.get("window") is not None:
        lo, hi = target["window"]
        return float(lo), float(hi)
    lo, hi = target.get("min"), target.get("max")
    return (float(lo) if lo is not None else -math.inf), (float(hi) if hi is not None else math.inf)
