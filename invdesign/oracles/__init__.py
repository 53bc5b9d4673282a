"""Oracles: independent physics checks of the best candidates, one interface for all of them.

An :class:`Oracle` is built from its settings (:mod:`invdesign.config.oracles`), the campaign target and the
registered target property. The workflow runs it in four steps, the same for every oracle:

1. ``prepare(dataset) -> dict`` once per campaign (e.g. the xTB -> DFT calibration on training molecules);
2. ``select(candidates)``: which candidates to check, in order (``top_k`` of the passing ones by default);
   they are split into batches, one Snakemake job each (a checkpoint fan-out, so a cluster runs them in
   parallel);
3. ``evaluate(batch, known, prepared) -> table``: the batch's rows with the oracle's declared
   :attr:`Oracle.columns`; a candidate the oracle cannot handle is an error row (``oracle_error``), never a
   crashed job. ``known`` is everything the project knows (:mod:`invdesign.data.known`);
4. ``finalize(checked, candidates, known, prepared) -> (table, metrics)``: the checked table, ranked, and
   its metrics.

An oracle may have a second, confirming tier (molecules: DFT at the data's level of theory), run on the few
best rows of the first tier's ranking with the same fan-out:

5. ``confirm_select(checked)``: the rows to confirm, best first (none by default), in batches of
   :attr:`Oracle.confirm_batch_size`;
6. ``confirm(batch, known, prepared) -> table``: the batch with :attr:`Oracle.confirm_columns`;
7. ``merge_confirmed(checked, confirmed, metrics) -> (table, metrics)``: the final table, ranked by the highest
   tier that ran. Its metrics always hold ``confirmed_by`` (the tier whose verdicts count) and ``n_confirmed``
   (the candidates that tier confirms), which the summary leads with. The verified table then gets the verdict
   columns ``confirmed`` (:meth:`Oracle.confirmed`, computed once, where the oracle ran) and ``confirmed_by``.

The oracle measures the campaign's property only where the property registry says so
(:attr:`Oracle.measures`); otherwise its table says, in one line, that the property was not measured, and no
other quantity stands in for it.

Adding an oracle: a settings class in :mod:`invdesign.config.oracles` (registered in ``ORACLE_SETTINGS``), a
subclass of :class:`Oracle` here or in its own module (registered in ``ORACLES``), and the property registry's
``measured_by`` entries for what it measures.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from .. import properties as props

log = logging.getLogger("invdesign")

#: oracle type -> (module, class)
ORACLES = {"xtb": ("invdesign.oracles.xtb", "XtbOracle"),
           "chgnet": ("invdesign.oracles.crystal", "ChgnetOracle")}

#: the column every oracle table has: "" when the oracle handled the candidate, else why not
ERROR_COLUMN = "oracle_error"


class Oracle(ABC):
    #: settings ``oracle.type``
    name: str = ""
    #: declared columns of :meth:`evaluate`'s table (beyond the batch's own): name -> meaning
    columns: dict[str, str] = {}
    #: declared columns of the confirming tier's table (:meth:`confirm`); empty: the oracle has no such tier
    confirm_columns: dict[str, str] = {}
    #: columns too large for the CSV table (geometries, JSON lists); they stay in the Parquet table
    large_columns: tuple[str, ...] = ()

    def __init__(self, settings, target: dict, prop: props.Property | None, property_column: str = "") -> None:
        self.settings, self.target, self.property = settings, target, prop
        self.property_column = property_column or (prop.name if prop else "")
        #: the column of this oracle's table that measures the campaign property (None: not measured)
        self.measures = props.oracle_column(prop, self.name)

    @property
    def not_measured_note(self) -> str:
        return (f"not measured: the {self.name} oracle has no measure of {self.property_column}"
                + ("" if self.property else " (a user property; set dataset.property_kind if it is a registered one)"))

    # ------------------------------------------------------------------ the four steps
    def prepare(self, dataset: pd.DataFrame) -> dict:
        """State computed once per campaign (JSON-serialisable); nothing by default."""
        return {}

    def select(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """The candidates to check, best first: the ``top_k`` best passing ones (null = all)."""
        top = candidates[candidates["passes"].astype(bool)]
        k = self.settings.top_k
        return (top if k is None else top.head(k)).reset_index(drop=True)

    @abstractmethod
    def evaluate(self, batch: pd.DataFrame, known: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        """``batch`` with the declared columns added, one row per input row, same order."""

    @abstractmethod
    def finalize(self, checked: pd.DataFrame, candidates: pd.DataFrame, known: pd.DataFrame,
                 prepared: dict) -> tuple[pd.DataFrame, dict]:
        """(checked table with ``final_rank``, metrics) from every checked batch."""

    # ------------------------------------------------------------------ the confirming tier
    @property
    def confirm_batch_size(self) -> int:
        return 1

    def confirm_select(self, checked: pd.DataFrame) -> pd.DataFrame:
        """The rows of the first tier's table to confirm, best first (none: the oracle has no confirming tier)."""
        return checked.head(0)

    def confirm(self, batch: pd.DataFrame, known: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        """``batch`` with :attr:`confirm_columns` added, one row per input row, same order."""
        raise NotImplementedError(f"the {self.name} oracle has no confirming tier")

    def merge_confirmed(self, checked: pd.DataFrame, confirmed: pd.DataFrame,
                        metrics: dict) -> tuple[pd.DataFrame, dict]:
        """(final table, metrics) from the first tier's table and the confirming tier's rows; without a
        confirming tier the first tier's table and metrics as they are (its metrics name ``confirmed_by`` and
        ``n_confirmed`` themselves)."""
        return checked, metrics

    def confirmed(self, verified: pd.DataFrame) -> pd.Series:
        """Which rows of the final table count as confirmed: the rows ``n_confirmed`` of the metrics counts."""
        return pd.Series(False, index=verified.index)

    def confirm_ran(self, verified: pd.DataFrame) -> pd.Series:
        """Which rows the confirming tier (or, without one, the first tier) checked."""
        return verified.get(ERROR_COLUMN, pd.Series(index=verified.index, dtype=object)).notna()

    def first_tier_checked(self, verified: pd.DataFrame) -> pd.Series:
        """Which rows the first tier checked without an error."""
        return verified.get(ERROR_COLUMN, pd.Series(index=verified.index, dtype=object)).eq("")

    def report_extras(self, verified: pd.DataFrame) -> tuple[dict, dict]:
        """({histogram label: values}, {funnel stage: count}) the report adds for this oracle's verdicts."""
        return {}, {}

    # ------------------------------------------------------------------ helpers
    def in_target(self, values) -> np.ndarray:
        from ..targets import in_target

        return in_target(values, self.target)

    def with_confirmations(self, checked: pd.DataFrame, confirmed: pd.DataFrame, extra=()) -> pd.DataFrame:
        """``checked`` with the confirming tier's columns (and ``extra`` ones) joined on ``final_rank``; empty
        columns when the tier checked nothing."""
        if not len(confirmed):
            return checked.assign(**{c: pd.Series(dtype=object) for c in self.confirm_columns})
        cols = [c for c in [*self.confirm_columns, *extra] if c in confirmed]
        return checked.merge(confirmed[["final_rank", *cols]], on="final_rank", how="left")

    @staticmethod
    def rerank(table: pd.DataFrame, first: list[str], first_tier_rank: str) -> pd.DataFrame:
        """``table`` ordered by the confirming tier's verdicts ``first`` (True first, unknown last), then by the
        first tier's ``final_rank``, which is kept as ``first_tier_rank``; a new ``final_rank`` 1, 2, ..."""
        out = table.sort_values([*first, "final_rank"], ascending=[False] * len(first) + [True], na_position="last",
                                kind="stable").reset_index(drop=True)
        out[first_tier_rank] = out.pop("final_rank")
        out.insert(0, "final_rank", np.arange(1, len(out) + 1))
        return out

    def empty_result(self, batch: pd.DataFrame) -> pd.DataFrame:
        """``batch`` with every declared column empty (a batch of no rows)."""
        return batch.assign(**{c: pd.Series(dtype=object) for c in self.columns})


def get_oracle(settings, target: dict, prop: props.Property | None, property_column: str = "") -> Oracle:
    """The oracle named by ``settings.type``."""
    module, cls = ORACLES[settings.type]
    return getattr(importlib.import_module(module), cls)(settings, target, prop, property_column)
