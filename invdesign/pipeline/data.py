"""Rule ``prepare_dataset``: the campaign's source table, bad rows dropped, the target checked against the data's
range, and deterministic hash-based train / val / test splits."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..config.data import SOURCES, DataSettings, Split
from ..config.target import Target
from ..config.spec import variant
from ..errors import InvdesignError
from ..artifacts import read_table
from ..io import write_json, write_table

log = logging.getLogger("invdesign")


def prepare_dataset(*, campaign: str, domain: str, dataset: dict, split: dict, data: dict, out: str) -> None:
    """Write the campaign's dataset table (``id``, structure columns, ``property``, ``split``) to ``out``."""
    from ..domains import get_domain
    from ..splits import assign_splits

    ds = variant(dataset, SOURCES[domain], "source", None, f"campaigns.{campaign}.dataset", "config", "")
    sp = Split.parse(split)
    downloads = DataSettings.parse(data, "data")
    mirror = os.environ.get("INVDESIGN_DATA_MIRROR") or downloads.mirror
    log.info("campaign %s: loading %s data (source %s)", campaign, domain, ds.source)
    dom = get_domain(domain)
    df = dom.load_source(ds, mirror=mirror, cache_dir=downloads.cache)
    # errors name the user's file where there is one (its rows by id, or by line when the table has no id column)
    where = getattr(ds, "table", None) or getattr(ds, "path", None) or f"{ds.source} data of campaign {campaign}"
    df = check_rows(dom, df, ds, where)
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise InvdesignError(f"dataset of campaign {campaign} has duplicate id {dup!r}; make the id column unique")
    if len(df) < 10:
        raise InvdesignError(f"campaign {campaign}: only {len(df)} usable rows; a generator needs at least 10 "
                             "(check dataset.path and dataset.on_bad_rows)")
    df["split"] = assign_splits(df["id"], sp.val, sp.test, sp.seed)
    counts = df["split"].value_counts().to_dict()
    if not counts.get("train"):
        raise InvdesignError(f"campaign {campaign}: split.val + split.test leave no training rows of {len(df)}; "
                             "lower them")
    log.info("%d rows (train %d / val %d / test %d)", len(df), counts.get("train", 0), counts.get("val", 0),
             counts.get("test", 0))
    write_table(df, out)


def known_reference(*, campaign: str, domain: str, dataset: dict, known_library: list, data: dict, out: str) -> int:
    """Write everything the project knows for this campaign (:mod:`invdesign.data.known`): every entry of the source
    data set (whatever ``max_rows`` and size limits) and of each ``filters.known_library`` file; returns its size."""
    from ..data.known import known_table
    from ..domains import get_domain

    ds = variant(dataset, SOURCES[domain], "source", None, f"campaigns.{campaign}.dataset", "config", "")
    dom = get_domain(domain)
    downloads = DataSettings.parse(data, "data")
    mirror = os.environ.get("INVDESIGN_DATA_MIRROR") or downloads.mirror
    parts = [(getattr(ds, "path", None) or ds.source, dom.load_known(ds, mirror=mirror, cache_dir=downloads.cache))]
    parts += [(str(p), dom.read_library(p)) for p in known_library]
    table = known_table(parts, dom.identifier)
    log.info("campaign %s: %d known %s (novelty reference)", campaign, len(table), domain)
    write_table(table, out)
    return len(table)


def check_rows(dom, df, ds, where: str):
    """The data checks of :mod:`invdesign.data.checks` on every row (labels, the domain's structure checks,
    duplicates), applied with ``dataset.on_bad_rows``; the counts go to the log."""
    from ..data.checks import duplicate_problems, enforce, label_problems

    what = "molecule" if "smiles" in df else "cell"
    df = enforce(df, label_problems(df["property"], ds.outlier_z), what=what, where=where, on_bad_rows=ds.on_bad_rows)
    df = df.assign(property=df["property"].astype(float))
    df = enforce(df, dom.row_problems(df, ds), what=what, where=where, on_bad_rows=ds.on_bad_rows)
    reasons, merged = duplicate_problems(df, dom.duplicate_groups(df), ds.duplicate_tolerance)
    conflicts = [r if r and r.startswith("conflicting") else None for r in reasons]
    if merged:
        df.loc[list(merged), "property"] = list(merged.values())
        dropped = [i for i, r in enumerate(reasons) if r and r.startswith("duplicate")]
        log.info("%s: merged %d duplicate rows into %d %ss (median label)", where, len(dropped) + len(merged),
                 len(merged), what)
        keep = np.ones(len(df), bool)
        keep[dropped] = False
        df, conflicts = df[keep].reset_index(drop=True), [c for c, k in zip(conflicts, keep) if k]
    df = enforce(df, conflicts, what=what, where=where, on_bad_rows=ds.on_bad_rows)
    log.info("%s: %d %ss pass the data checks", where, len(df), what)
    return df


def check_target(*, campaign: str, target: dict, unit: str, dataset: str, stats: str) -> dict:
    """Stop with one line if the target lies outside the range of the data's property; write the statistics."""
    from ..targets import check_target_in_range

    tgt = Target.parse(target).to_dict()
    df = read_table(dataset, ["property", "split"])
    out = check_target_in_range(tgt, df["property"], f"campaigns.{campaign}", unit)
    log.info("target %s %s: %.1f%% of the %d rows inside it (data range %.3g to %.3g)", tgt, unit,
             100 * out["share_in_target"], out["n"], out["data_min"], out["data_max"])
    write_json(out, stats)
    return out


def campaign_data(camp, folder, data: dict | None = None):
    """``(dataset table, GraphSet)`` of a typed campaign (:class:`~invdesign.config.Campaign`), prepared and
    featurized into ``folder`` as the workflow's first two rules do (reused when ``folder`` holds them already):
    how bench scripts and notebooks get a campaign's data without the workflow."""
    from pathlib import Path

    from ..artifacts import load_graphs
    from .featurize import featurize

    folder = Path(folder)
    ds, gp = folder / "dataset.parquet", folder / "graphs.pt"
    if not ds.exists():
        prepare_dataset(campaign=camp.name, domain=camp.domain, dataset=camp.dataset.to_dict(),
                        split=camp.split.to_dict(), data=data or {}, out=str(ds))
    if not gp.exists():
        featurize(domain=camp.domain, settings=camp.featurize.to_dict(), property_column=camp.dataset.property_column,
                  dataset=str(ds), graphs=str(gp))
    return read_table(ds), load_graphs(gp)
