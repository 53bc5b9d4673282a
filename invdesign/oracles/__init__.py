"""Oracles: independent physics checks of the best candidates, one interface for all of them.

An :class:`Oracle` is built from its settings (its :attr:`Oracle.settings_class`), the campaign target and the
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

Declarations. An oracle declares its :attr:`Oracle.tiers` (first tier first): each :class:`Tier` says which
registered properties it measures (:class:`Measure`: property name -> column and unit, an estimate's raw quantity,
the tier's error model), the column of its failures, the fields and figures of its candidate card and its large
columns. Generic code (the property registry's ``measured_by``, the landing page, the report, the settings checks,
the feedback ranker) reads these declarations and never names an oracle's column. The oracle measures the
campaign's property only where its first tier declares a measure of it (:attr:`Oracle.measures`); otherwise its
table says, in one line, that the property was not measured, and no other quantity stands in for it.

Registration. A subclass that sets ``settings_class`` (its settings, a subclass of
:class:`invdesign.config.oracles.OracleSettings` whose ``type`` default is the oracle's name) and ``domain`` is
registered when the class is created; the modules of this package are imported on the first look-up
(:func:`registered`), so adding an oracle is one module here and one settings class. ``ORACLES`` and
``invdesign.config.oracles.ORACLE_SETTINGS`` are views of the registrations.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import properties as props

log = logging.getLogger("invdesign")

#: the column every oracle table has: "" when the oracle handled the candidate, else why not
ERROR_COLUMN = "oracle_error"


# ---------------------------------------------------------------------------------------------
# declarations
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measure:
    """How a tier measures one registered property: the column of its table and the unit that column holds (the
    property's unit: :func:`check_declarations`). ``raw``: for an estimate mapped from another quantity (the
    calibrated xTB value), the column of that raw quantity."""
    column: str
    unit: str
    raw: str | None = None


@dataclass(frozen=True)
class CardField:
    """One line of a candidate card: ``label`` and the table's ``column``; numbers with ``unit`` (``{unit}``: the
    campaign property's) and ``digits``,
    text as it is (``empty`` for an empty string); ``missing`` where there is no value (with the tier's failure
    where ``explain`` and the tier failed on the row)."""
    label: str
    column: str
    unit: str = ""
    digits: int = 2
    missing: str = "not run"
    explain: bool = True
    text: bool = False
    empty: str = "no"
    #: leave the line out where the row has no value (a field only some rows or campaigns have)
    optional: bool = False


@dataclass(frozen=True)
class CardFigure:
    """A picture of a candidate card: a drawing of :data:`invdesign.pipeline.figures.CARD_FIGURES` (``kind``), its
    caption ``label`` and the columns it draws ({the drawing's input: column})."""
    kind: str
    label: str
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NoveltyColumns:
    """The columns of a potential's verdicts on whether its relaxed cell is a new material
    (:mod:`invdesign.chem.crystal_novelty`): novel under substitutional disorder (boolean) and the known cell it
    matches so made, an ordering of its elements on a parent lattice (boolean) and that lattice, and the oracle's
    verdict that the cell is a new material (boolean; an alloy ordering is one only where the campaign counts
    orderings)."""
    disorder_aware: str
    disorder_match: str
    ordering: str
    parent_lattice: str
    new_material: str


@dataclass(frozen=True)
class Tier:
    """One tier of an oracle: who measures (``name``, as labels say it), what (``measures``: registered property
    name -> :class:`Measure`), the column saying why it failed on a row, the package file of its signed errors
    against the data's own values (``error_model``: ``{"errors": {property: [tier - data, ...]}}``), the columns
    with its chance of a value in the target (``probability``) and with why a row has no value (``note``), its
    candidate card's fields and figures, its columns too large for the CSV table, and for a potential of crystals
    the energies above the hull its stability is judged on (``hulls``: (column, the hull in words), first found
    first), the column naming the known phase its relaxed cell matches (``known_match``) and the columns of its
    verdicts on a new material (``novelty``; a potential without them says only whether a known phase matched)."""
    name: str
    measures: Mapping[str, Measure] = field(default_factory=dict)
    error: str = ERROR_COLUMN
    error_model: str | None = None
    probability: str | None = None
    note: str | None = None
    card: tuple[CardField, ...] = ()
    figures: tuple[CardFigure, ...] = ()
    large: tuple[str, ...] = ()
    hulls: tuple[tuple[str, str], ...] = ()
    known_match: str | None = None
    novelty: NoveltyColumns | None = None

    def measure(self, prop: str | None) -> Measure | None:
        """How this tier measures the registered property ``prop`` (None: it does not)."""
        return self.measures.get(prop) if prop else None

    def columns(self) -> set[str]:
        """Every column its measures name (raw quantities included)."""
        return {c for m in self.measures.values() for c in (m.column, m.raw) if c}


#: the ranked table's place for the columns that measure the campaign property (:meth:`Oracle.table_columns`)
MEASURED = "{measured}"


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------

#: oracle name -> its class, filled as oracle classes are created (:meth:`Oracle.__init_subclass__`)
_REGISTERED: dict[str, type[Oracle]] = {}
_discovered = False


def registered() -> dict[str, type[Oracle]]:
    """Every registered oracle: name -> class, the domains' defaults first; the first call imports the modules of
    this package (each registers the oracles it defines)."""
    global _discovered
    if not _discovered:
        _discovered = True
        for mod in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(_REGISTERED.items(), key=lambda kv: not kv[1].default))


def oracle_class(name: str) -> type[Oracle]:
    oracles = registered()
    if name not in oracles:
        raise KeyError(f"no oracle {name!r}; registered: {', '.join(sorted(oracles))}")
    return oracles[name]


def measured_by(prop: str) -> dict[str, str]:
    """The registered property ``prop``'s measures: oracle name -> the column of that oracle's first tier (the
    column an oracle's verdicts read) for every oracle whose first tier declares one."""
    out = {}
    for name, cls in registered().items():
        m = cls.tiers[0].measure(prop) if cls.tiers else None
        if m is not None:
            out[name] = m.column
    return out


def measure_columns() -> set[str]:
    """Every column any tier of any registered oracle declares as a measure (raw quantities included)."""
    return {c for cls in registered().values() for t in cls.tiers for c in t.columns()}


def check_declarations() -> list[str]:
    """What is wrong with the registered oracles' declarations: a measure of an unregistered property, of a
    property of another domain or in a unit other than the property's; empty when nothing is."""
    problems = []
    for name, cls in registered().items():
        for tier in cls.tiers:
            for prop, m in tier.measures.items():
                p = props.PROPERTIES.get(prop)
                where = f"oracle {name}, tier {tier.name}: {m.column}"
                if p is None:
                    problems.append(f"{where} measures {prop!r}, which the property registry does not know")
                elif p.domain != cls.domain:
                    problems.append(f"{where} measures {prop}, a {p.domain} property, on {cls.domain}")
                elif m.unit != p.unit:
                    problems.append(f"{where} is in {m.unit!r}; {prop} is in {p.unit!r}")
    return problems


class _Oracles(Mapping):
    """``ORACLES``: oracle name -> class, a view of the registrations."""

    def __getitem__(self, name):
        return registered()[name]

    def __iter__(self):
        return iter(registered())

    def __len__(self):
        return len(registered())


ORACLES: Mapping[str, type] = _Oracles()


class Oracle(ABC):
    #: settings ``oracle.type``: the ``type`` default of :attr:`settings_class`, set when the class is registered
    name: str = ""
    #: the settings class; a subclass that sets it (and :attr:`domain`) is registered
    settings_class: type | None = None
    #: the domain whose candidates it checks (molecules | crystals)
    domain: str = ""
    #: whether it is its domain's default oracle (``oracle.type`` left out)
    default: bool = False
    #: its tiers, first tier first (the confirming tier, where there is one, second)
    tiers: tuple[Tier, ...] = ()
    #: declared columns of :meth:`evaluate`'s table (beyond the batch's own): name -> meaning
    columns: dict[str, str] = {}
    #: declared columns of the confirming tier's table (:meth:`confirm`); empty: the oracle has no such tier
    confirm_columns: dict[str, str] = {}
    #: the report's columns (after the measured ones) of the best candidates' page
    report_columns: tuple[str, ...] = ()

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if "settings_class" not in cls.__dict__:
            return
        name = cls.settings_class.__dataclass_fields__["type"].default
        if not cls.domain or not cls.tiers:
            raise TypeError(f"oracle {cls.__name__}: declare its domain and tiers")
        if name in _REGISTERED and _REGISTERED[name].__qualname__ != cls.__qualname__:
            raise TypeError(f"oracle {name!r} is registered twice: {_REGISTERED[name].__qualname__} and "
                            f"{cls.__qualname__}")
        cls.name = name
        _REGISTERED[name] = cls

    def __init__(self, settings, target: dict, prop: props.Property | None, property_column: str = "") -> None:
        self.settings, self.target, self.property = settings, target, prop
        self.property_column = property_column or (prop.name if prop else "")
        m = self.tiers[0].measure(prop.name if prop else None) if self.tiers else None
        #: the column of this oracle's table that measures the campaign property (None: not measured)
        self.measures = m.column if m else None

    def tier_measure(self, tier: Tier) -> Measure | None:
        """How ``tier`` measures the campaign property (None: it does not, or the first tier does not)."""
        return tier.measure(self.property.name) if self.measures and self.property else None

    @property
    def large_columns(self) -> tuple[str, ...]:
        """Columns too large for the CSV table (geometries, JSON lists); they stay in the Parquet table."""
        return tuple(c for t in self.tiers for c in t.large)

    def table_columns(self) -> list[tuple[str, str]]:
        """(column, unit) of the landing page's ranked table after the rank and the candidate's identifier, those
        present shown; :data:`MEASURED` where the columns measuring the campaign property go, ``{unit}`` the
        property's unit. By default: the measured columns, each tier's card fields, the prediction, the generator
        and each tier's failures."""
        cards = [(f.column, f.unit) for t in reversed(self.tiers) for f in t.card]
        return [(MEASURED, ""), *cards, ("predicted_property", "{unit}"), ("generator", ""),
                *((t.error, "") for t in reversed(self.tiers))]

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

    @property
    def confirm_rounds(self) -> int:
        """Rounds the confirming tier's budget is spent over (each round a workflow step that sees the verdicts of
        the rounds before)."""
        return 1

    def confirm_select(self, checked: pd.DataFrame, earlier: pd.DataFrame | None = None, round_no: int = 1,
                       tier_metrics: dict | None = None) -> pd.DataFrame:
        """The rows of the first tier's table to confirm in round ``round_no`` (1 = the first), best first, given
        the confirming tier's rows of the ``earlier`` rounds and the first tier's metrics (none: the oracle has no
        confirming tier)."""
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
        """``table`` ordered by the confirming tier's verdicts ``first``, each True first, then not checked (NA),
        then False: a row the tier checked and did not confirm ranks below the rows it did not check, whose chance
        is still the first tier's. Then by the first tier's ``final_rank``, which is kept as ``first_tier_rank``; a
        new ``final_rank`` 1, 2, ..."""
        def key(column):
            v = table[column].astype("boolean")
            return np.where(v.isna(), 1, np.where(v.fillna(False).to_numpy(bool), 0, 2))

        keys = pd.DataFrame({f"_{i}": key(c) for i, c in enumerate(first)}, index=table.index)
        order = pd.concat([keys, table["final_rank"]], axis=1).sort_values([*keys, "final_rank"], kind="stable").index
        out = table.loc[order].reset_index(drop=True)
        out[first_tier_rank] = out.pop("final_rank")
        out.insert(0, "final_rank", np.arange(1, len(out) + 1))
        return out

    def empty_result(self, batch: pd.DataFrame) -> pd.DataFrame:
        """``batch`` with every declared column empty (a batch of no rows)."""
        return batch.assign(**{c: pd.Series(dtype=object) for c in self.columns})


def get_oracle(settings, target: dict, prop: props.Property | None, property_column: str = "") -> Oracle:
    """The oracle named by ``settings.type``."""
    return oracle_class(settings.type)(settings, target, prop, property_column)
