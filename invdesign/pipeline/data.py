"""Rule ``prepare_dataset``: the campaign's source table, bad rows dropped, the target checked against the data's
range, and deterministic hash-based train / val / test splits."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..config.settings import SOURCES, Split, Target
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
    mirror = os.environ.get("INVDESIGN_DATA_MIRROR") or data.get("mirror")
    log.info("campaign %s: loading %s data (source %s)", campaign, domain, ds.source)
    df = get_domain(domain).load_source(ds, mirror=mirror, cache_dir=data.get("cache", "data/cache"))
    n0 = len(df)
    df = df[np.isfinite(df["property"].astype(float))].reset_index(drop=True)
    if len(df) < n0:
        log.warning("dropped %d rows without a finite %s", n0 - len(df), ds.property_column)
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
    data = dict(data or {"mirror": "../shared/data", "cache": "data/cache"})
    if not ds.exists():
        prepare_dataset(campaign=camp.name, domain=camp.domain, dataset=camp.dataset.to_dict(),
                        split=camp.split.to_dict(), data=data, out=str(ds))
    if not gp.exists():
        featurize(domain=camp.domain, settings=camp.featurize.to_dict(), property_column=camp.dataset.property_column,
                  dataset=str(ds), graphs=str(gp))
    return read_table(ds), load_graphs(gp)
