"""Rules of the oracle check, the same for every oracle (:mod:`invdesign.oracles`), and the chemists' export:

* ``oracle_prepare``: what the oracle computes once per campaign (``oracle/prepared.json``);
* checkpoint ``oracle_batches``: the candidates the oracle checks, in ``oracle.batch_size`` files;
* ``oracle_batch``: one job per file (a cluster profile runs them side by side);
* ``verify``: the checked batches merged and ranked into ``candidates_verified``, with the oracle's metrics;
* ``export_structures``: the domain's file for chemists (SDF of molecules, zip of CIFs).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from ..artifacts import read_table
from ..config.oracles import ORACLE_SETTINGS
from ..config.settings import Target
from ..config.spec import variant
from ..io import write_json, write_table

log = logging.getLogger("invdesign")


def make_oracle(domain: str, oracle: dict, target: dict | None, property_column: str,
                property_kind: str | None = None):
    """The campaign's oracle from the rule params (``oracle``: its settings; ``type`` defaults to the domain's;
    ``target`` None for :meth:`Oracle.prepare`, which never depends on it)."""
    from ..oracles import get_oracle
    from ..properties import resolve

    kinds = ORACLE_SETTINGS[domain]
    settings = variant(oracle, kinds, "type", next(iter(kinds)), "oracle", "config", f"{domain} oracles")
    return get_oracle(settings, Target.parse(target).to_dict() if target is not None else None,
                      resolve(property_column, property_kind), property_column)


def oracle_prepare(*, domain: str, oracle: dict, property_column: str, property_kind: str | None, dataset: str,
                   prepared: str) -> dict:
    state = make_oracle(domain, oracle, None, property_column, property_kind).prepare(
        read_table(dataset, ["id", "property", "split"]))
    write_json(state, prepared)
    return state


def oracle_batches(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                   candidates: str, feedback: list, batches: str) -> int:
    """Split the candidates the oracle checks (:meth:`Oracle.select`) into ``batch_XXX.parquet`` files of
    ``oracle.batch_size`` rows; returns the number of batches (0 when nothing is to be checked)."""
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    top = o.select(read_table(candidates, ["rank", "passes"]))
    out = Path(batches)
    if out.exists():
        for old in out.glob("batch_*.parquet"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    size = o.settings.batch_size
    n = (len(top) + size - 1) // size
    for b in range(n):
        write_table(top.iloc[b * size:(b + 1) * size], str(out / f"batch_{b:03d}.parquet"))
    log.info("%d candidates in %d %s batches of up to %d", len(top), n, o.name, size)
    return n


def oracle_batch(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                 batch: str, dataset: str, prepared: str, checked: str) -> None:
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    rows = read_table(batch, ["rank"])
    t0 = time.monotonic()
    out = o.evaluate(rows, read_table(dataset, ["id"]), json.loads(Path(prepared).read_text()))
    missing = [c for c in o.columns if c not in out]
    if len(out) != len(rows) or missing:
        raise RuntimeError(f"oracle {o.name} returned {len(out)} rows for {len(rows)} (missing columns: {missing})")
    log.info("%s checked %d candidates in %.0fs (%d error rows)", o.name, len(out), time.monotonic() - t0,
             int((out["oracle_error"].fillna("") != "").sum()) if len(out) else 0)
    write_table(out, checked)


def verify(*, campaign: str, domain: str, oracle: dict, target: dict, property_column: str,
           property_kind: str | None, checked: list[str], candidates: str, dataset: str, prepared: str, csv: str,
           parquet: str, metrics: str) -> dict:
    """Merge the checked batches into ``candidates_verified`` (ranked by the oracle's verdicts) and its metrics."""
    t0 = time.monotonic()
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    cands = read_table(candidates, ["rank", "passes"])
    parts = [p for p in (read_table(path) for path in sorted(checked)) if len(p)]
    merged = pd.concat(parts, ignore_index=True) if parts else o.empty_result(cands.head(0))
    table, m = o.finalize(merged, cands, read_table(dataset, ["id"]), json.loads(Path(prepared).read_text()))
    m = {"campaign": campaign, **m, "n_batches": len(checked), "seconds_merge": time.monotonic() - t0}
    write_table(table, parquet)
    write_table(table.drop(columns=[c for c in ("structure", "relaxed_cif", "molblock", "xtb_homo_density",
                                                "xtb_lumo_density", "xtb_charges") if c in table]), csv)
    write_json(m, metrics)
    return m


def export_structures(*, domain: str, verified: str, candidates: str, export: str) -> None:
    from ..domains import get_domain

    dom = get_domain(domain)
    if not export.endswith(dom.export_suffix):
        from ..errors import InvdesignError

        raise InvdesignError(f"{export}: a {domain} campaign exports candidates{dom.export_suffix}; ask for that file")
    n = dom.write_export(read_table(verified), read_table(candidates, ["rank", "passes"]), export)
    log.info("wrote %d candidates to %s", n, export)
