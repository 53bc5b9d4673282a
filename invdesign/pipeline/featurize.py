"""Rule ``featurize``: invariant graphs of every dataset row and the meta the models are built from."""

from __future__ import annotations

import logging
import time

import numpy as np

from ..artifacts import read_table, save_graphs
from ..config.featurize import FEATURIZE

log = logging.getLogger("invdesign")


def featurize(*, domain: str, settings: dict, property_column: str, dataset: str, graphs: str) -> None:
    from ..domains import get_domain

    df = read_table(dataset, ["id", "property", "split"])
    t0 = time.monotonic()
    out, meta = get_domain(domain).featurize(df, FEATURIZE[domain].parse(settings, "featurize"))
    if len(out) != len(df):
        raise RuntimeError(f"featurize returned {len(out)} graphs for {len(df)} rows")
    train_y = df.loc[df["split"] == "train", "property"].to_numpy(float)
    meta.update(domain=domain, property_column=property_column, y_mean=float(np.mean(train_y)),
                y_std=float(np.std(train_y) or 1.0))
    log.info("featurized %d %s in %.1fs: %d node features, %d edge features", len(out), domain,
             time.monotonic() - t0, meta["node_dim"], meta["edge_dim"])
    save_graphs(out, meta, df["split"], df["id"], graphs)
