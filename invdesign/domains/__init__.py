"""Domains (molecules, crystals): everything the generic workflow steps need to know about one kind of object.

A :class:`Domain` owns the identifier of a candidate, loading its data sources, featurization into invariant
graphs, decoding generator samples, the validity / uniqueness / novelty filters, the files handed to chemists
and the candidate page of the report. The steps in :mod:`invdesign.pipeline` call these methods and never test
which domain they run. Domain modules may import rdkit / pymatgen; :mod:`invdesign.models` never does.

Adding a domain: subclass :class:`Domain` in ``invdesign/domains/<name>.py``, register it in ``DOMAINS``,
and give it settings classes (sources in :mod:`invdesign.config.data`, :mod:`~invdesign.config.featurize`,
:mod:`~invdesign.config.filters`) and an oracle.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: domain name -> (module, class); importing this package imports neither (the Snakefile reads these tables)
DOMAINS = {"molecules": ("invdesign.domains.molecules", "MoleculeDomain"),
           "crystals": ("invdesign.domains.crystals", "CrystalDomain")}
#: the file each domain hands chemists beside the tables: results/<campaign>/candidates<suffix>
EXPORT_SUFFIX = {"molecules": ".sdf", "crystals": "_cifs.zip"}
#: the files of checked structures each domain hands chemists after verify (rule export_relaxed), by the rule's
#: output names: results/<campaign>/<file>; molecules have none (candidates.sdf holds their xTB geometries)
RELAXED_EXPORTS = {"molecules": {}, "crystals": {"confirmed": "confirmed.zip", "checked": "checked.zip"}}


class Domain(ABC):
    #: config value of ``domain:``
    name: str = ""
    #: the candidate table's identifier column (canonical SMILES / reduced formula)
    identifier: str = ""
    #: the export handed to chemists beside the tables: results/<campaign>/candidates<export_suffix>
    export_suffix: str = ""
    #: the domain's columns of the report's candidate table; the oracle's measured and report columns go after
    #: ``unit`` (:func:`invdesign.pipeline.landing.campaign_columns`)
    report_columns: tuple[str, ...] = ()

    # The domain module's functions of the same names do the work (tests and bench call them directly too).
    @property
    def _functions(self):
        import sys

        return sys.modules[type(self).__module__]

    def load_source(self, dataset, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
        """The campaign's data as a table with ``id``, the domain's structure columns and ``property``."""
        return self._functions.load_source(dataset, mirror=mirror, cache_dir=cache_dir)

    def load_known(self, dataset, *, mirror: str | None, cache_dir: str) -> pd.DataFrame:
        """Every entry of the campaign's source, whatever ``max_rows`` and size limits (``id`` and the domain's
        structure columns): the part of the novelty reference the data set gives."""
        return self._functions.load_known(dataset, mirror=mirror, cache_dir=cache_dir)

    def read_library(self, path: str) -> pd.DataFrame:
        """A user's reference library (``filters.known_library``) as ``id`` and the domain's structure columns."""
        return self._functions.read_library(path)

    def featurize(self, df: pd.DataFrame, settings) -> tuple[list, dict]:
        """(graphs, meta) of every row of ``df`` (which has a ``split`` column); ``meta`` holds whatever the
        models need to be built (feature sizes, element lists, statistics of the training rows)."""
        return self._functions.featurize(df, settings)

    def featurize_like(self, df: pd.DataFrame, meta: dict) -> list:
        """Graphs of new candidates, featurized as the training data was (None where impossible)."""
        return self._functions.featurize_like(df, meta)

    def decode(self, structures, meta: dict) -> pd.DataFrame:
        """A table, one row per sample, from the domain's typed samples."""
        return self._functions.decode(structures, meta)

    def filter_candidates(self, samples: pd.DataFrame, reference: pd.DataFrame, filters,
                          known: pd.DataFrame | None = None) -> pd.DataFrame:
        """``samples`` with ``valid``, ``unique``, ``novel``, ``passes`` and ``reject_reason`` columns (and the
        domain's own checks); ``reference`` is the training data, novelty is judged against ``known`` (everything
        the project knows, :mod:`invdesign.data.known`; default ``reference``)."""
        return self._functions.filter_candidates(samples, reference, filters, known)

    def row_problems(self, df: pd.DataFrame, dataset) -> list:
        """What is wrong with each training row (None: nothing), for ``dataset.on_bad_rows``."""
        return self._functions.row_problems(df, dataset)

    def duplicate_groups(self, df: pd.DataFrame) -> list[list[int]]:
        """Groups of row positions that hold one molecule / structure (singletons may be left out)."""
        return self._functions.duplicate_groups(df)

    def n_unique(self, valid: pd.DataFrame) -> int:
        """Distinct candidates among valid samples of one generator."""
        return int(valid["unique"].sum())

    @abstractmethod
    def export_candidates(self, cands: pd.DataFrame, folder: Path) -> pd.DataFrame:
        """Write a file per passing candidate (or a list) into ``folder``; returns ``cands`` with any path columns."""

    @abstractmethod
    def write_export(self, verified: pd.DataFrame, candidates: pd.DataFrame, out_path: str) -> int:
        """Write ``candidates<export_suffix>`` (SDF / zip of CIFs); returns the number of records."""

    def write_relaxed_exports(self, verified: pd.DataFrame, confirmed_zip: str, checked_zip: str,
                              measured=()) -> tuple[int, int]:
        """Write the files of :data:`RELAXED_EXPORTS` (crystals: the confirmed hits and every checked cell, relaxed
        and symmetrised); ``measured``: (label, column, unit) of each tier measuring the campaign property.
        Returns the counts (confirmed, checked)."""
        from ..errors import InvdesignError

        raise InvdesignError(f"a {self.name} campaign has no files of relaxed structures (confirmed.zip, "
                             "checked.zip are crystal files)")

    @abstractmethod
    def top_candidates_html(self, candidates: pd.DataFrame, verified: pd.DataFrame | None, unit: str,
                            out_html: str, columns: list[str] | None = None) -> None:
        """The report's page of the best candidates, with ``columns`` (default :attr:`report_columns`; the report
        adds the oracle's declared columns, those measuring the campaign property first)."""


_cache: dict[str, Domain] = {}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; expected one of {sorted(DOMAINS)}")
    if name not in _cache:
        module, cls = DOMAINS[name]
        _cache[name] = getattr(importlib.import_module(module), cls)()
    return _cache[name]
