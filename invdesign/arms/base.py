"""The interface of a classical arm: built as ``Arm(sample_settings)``, ``Arm.propose(request) -> table``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ..config.target import target_bounds


@dataclass(frozen=True)
class Seeds:
    """What earlier campaigns' verified tables (the generator setting ``seeds_from``) tell an arm."""

    #: their confirmed molecules, best ranked first, in the form novelty is judged in
    molecules: list[str]
    #: every molecule their confirming tier checked (and every confirmed one), in that form: known answers
    answered: frozenset[str]
    #: how many tables they came from
    n_tables: int


@dataclass
class ArmRequest:
    #: the campaign target as a mapping (``window`` or ``min`` / ``max``), in the property's unit
    target: dict
    #: the campaign's data set (``data/dataset.parquet``: ``id``, the domain's structure columns, ``property``,
    #: ``split``)
    dataset: pd.DataFrame
    #: everything known (``data/known.parquet``, the novelty reference)
    known: pd.DataFrame
    #: the campaign's independent predictor on a table of candidates (the domain's structure columns): one value per
    #: row, NaN where it has no graph
    predict: Callable[[pd.DataFrame], np.ndarray]
    #: the confirmed hits of earlier campaigns to start from (None: the arm's settings name no ``seeds_from``)
    seeds: Seeds | None = None

    @property
    def train(self) -> pd.DataFrame:
        """The training rows of the data set."""
        return self.dataset[self.dataset["split"] == "train"]

    @property
    def aim(self) -> float:
        """The value an arm aims at (its rows' ``generator_pred``): the centre of a target window; for a one-sided
        target the median of the training values inside it (as the conditional samplers draw their conditions from
        them); NaN when none is."""
        lo, hi = target_bounds(self.target)
        if np.isfinite(lo) and np.isfinite(hi):
            return (lo + hi) / 2
        values = self.train["property"].to_numpy(float)
        inside = values[np.isfinite(values) & (values >= lo) & (values <= hi)]
        return float(np.median(inside)) if inside.size else float("nan")


class Arm(Protocol):
    """A classical arm (:attr:`~invdesign.config.generators.GeneratorPlugin.sampler_class` of a declaration that is
    not trained), built with its sample settings."""

    def __init__(self, sample_settings) -> None: ...

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        """One row per proposal: the domain's structure columns (``smiles``; ``formula``, ``structure``,
        ``num_sites``) and ``generator_pred`` (what the arm aimed at: :attr:`ArmRequest.aim`); more columns are
        kept in the candidate table."""
        ...
