"""Rules of the oracle check, the same for every oracle (:mod:`invdesign.oracles`), and the chemists' export:

* ``oracle_prepare``: what the oracle computes once per campaign (``oracle/prepared.json``);
* checkpoint ``oracle_batches``: the candidates the oracle checks, in ``oracle.batch_size`` files;
* ``oracle_batch``: one job per file (a cluster profile runs them side by side);
* ``oracle_merge``: the checked batches merged and ranked by the first tier (``oracle/checked.parquet``);
* checkpoint ``confirm_batches`` and ``confirm_batch``: the oracle's confirming tier (molecules: DFT) on the best
  rows of that ranking, fanned out the same way;
* ``verify``: both tiers merged and ranked by the highest one into ``candidates_verified``, with the metrics;
* ``export_structures``: the domain's file for chemists (SDF of molecules, zip of CIFs).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from ..artifacts import BATCH_MANIFEST, read_table
from ..config.oracles import ORACLE_SETTINGS
from ..config.target import Target
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
    return _write_batches(o.select(read_table(candidates, ["rank", "passes"])), batches, o.settings.batch_size,
                          o.name)


def _write_batches(top: pd.DataFrame, batches: str, size: int, what: str) -> int:
    """``top`` in ``batch_XXX.parquet`` files of ``size`` rows in the folder ``batches`` (emptied first)."""
    out = Path(batches)
    if out.exists():
        for old in out.glob("batch_*.parquet"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    n = (len(top) + size - 1) // size
    for b in range(n):
        write_table(top.iloc[b * size:(b + 1) * size], str(out / f"batch_{b:03d}.parquet"))
    write_json({"n_batches": n}, out / BATCH_MANIFEST)  # a batch deleted later stops the plan (batch_ids)
    log.info("%d candidates in %d %s batches of up to %d", len(top), n, what, size)
    return n


def _run_batch(o, what: str, run, columns: dict, rows: pd.DataFrame, out_path: str) -> None:
    t0 = time.monotonic()
    out = run(rows)
    missing = [c for c in columns if c not in out]
    if len(out) != len(rows) or missing:
        raise RuntimeError(f"oracle {o.name} ({what}) returned {len(out)} rows for {len(rows)} (missing columns: "
                           f"{missing})")
    log.info("%s %s: %d candidates in %.0fs (%d error rows)", o.name, what, len(out), time.monotonic() - t0,
             int((out["oracle_error"].fillna("") != "").sum()) if len(out) and "oracle_error" in out else 0)
    write_table(out, out_path)


def oracle_batch(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                 batch: str, known: str, prepared: str, checked: str) -> None:
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    state = json.loads(Path(prepared).read_text())
    _run_batch(o, "check", lambda rows: o.evaluate(rows, read_table(known, ["id"]), state), o.columns,
               read_table(batch, ["rank"]), checked)


def _merge_parts(paths: list[str], empty: pd.DataFrame) -> pd.DataFrame:
    parts = [p for p in (read_table(path) for path in sorted(paths)) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty


def oracle_merge(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                 checked: list[str], candidates: str, known: str, prepared: str, table: str,
                 tier_metrics: str) -> dict:
    """The first tier's checked batches merged and ranked (``oracle.finalize``), with its metrics."""
    t0 = time.monotonic()
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    cands = read_table(candidates, ["rank", "passes"])
    merged = _merge_parts(checked, o.empty_result(cands.head(0)))
    out, m = o.finalize(merged, cands, read_table(known, ["id"]), json.loads(Path(prepared).read_text()))
    m = {**m, "n_batches": len(checked), "seconds_merge": time.monotonic() - t0}
    write_table(out, table)
    write_json(m, tier_metrics)
    return m


def confirm_batches(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                    table: str, batches: str, earlier: list[str] = (), tier_metrics: str | None = None,
                    round_no: int = 1) -> int:
    """The rows of the first tier's table that the confirming tier checks in round ``round_no``
    (:meth:`Oracle.confirm_select`, given the confirmed batches of the ``earlier`` rounds and the first tier's
    metrics), in batches; none when the oracle has no confirming tier."""
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    checked = read_table(table, ["final_rank"])
    done = _merge_parts(list(earlier), checked.head(0)) if earlier else None
    metrics = json.loads(Path(tier_metrics).read_text()) if tier_metrics else None
    return _write_batches(o.confirm_select(checked, done, int(round_no), metrics), batches, o.confirm_batch_size,
                          f"{o.name} confirming (round {round_no})")


def confirm_batch(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                  batch: str, known: str, prepared: str, confirmed: str) -> None:
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    state = json.loads(Path(prepared).read_text())
    _run_batch(o, "confirm", lambda rows: o.confirm(rows, read_table(known, ["id"]), state), o.confirm_columns,
               read_table(batch, ["final_rank"]), confirmed)


def verify(*, campaign: str, domain: str, oracle: dict, target: dict, property_column: str,
           property_kind: str | None, table: str, tier_metrics: str, confirmed: list[str], csv: str, parquet: str,
           metrics: str) -> dict:
    """``candidates_verified`` and the oracle's metrics: the first tier's table with the confirming tier's verdicts,
    ranked by the highest tier that ran (:meth:`Oracle.merge_confirmed`)."""
    o = make_oracle(domain, oracle, target, property_column, property_kind)
    checked = read_table(table, ["final_rank"])
    rows = _merge_parts(confirmed, checked.head(0).assign(**{c: pd.Series(dtype=object) for c in o.confirm_columns}))
    out, m = o.merge_confirmed(checked, rows, json.loads(Path(tier_metrics).read_text()))
    m = {"campaign": campaign, "confirmed_by": m.pop("confirmed_by"), "n_confirmed": m.pop("n_confirmed"), **m,
         "n_confirm_batches": len(confirmed)}
    log.info("%d candidates confirmed by %s", m["n_confirmed"], m["confirmed_by"])
    # the verdicts, computed once here where the oracle ran: the report and the summaries read these columns
    out["confirmed"] = o.confirmed(out).fillna(False).astype(bool).to_numpy() if len(out) else pd.Series(dtype=bool)
    out["confirmed_by"] = m["confirmed_by"]
    if int(out["confirmed"].sum()) != m["n_confirmed"]:
        raise RuntimeError(f"the {o.name} oracle counts {m['n_confirmed']} confirmed but marks "
                           f"{int(out['confirmed'].sum())} rows confirmed")
    m["by_generator"] = generator_verdicts(o, out)
    write_table(out, parquet)
    write_table(out.drop(columns=[c for c in ("structure", *o.large_columns) if c in out]), csv)
    write_json(m, metrics)
    return m


def generator_verdicts(o, verified: pd.DataFrame) -> dict:
    """For each generator of the verified table's rows: how many its first tier and its highest tier that ran
    checked, how many are confirmed, and the confirmed share of those the highest tier checked (None where it
    checked none)."""
    from ..oracles import ERROR_COLUMN

    out = {}
    if "generator" not in verified:
        return out
    for gen, part in verified.groupby("generator", sort=True):
        checked = int(o.confirm_ran(part).fillna(False).sum())
        confirmed = int(part["confirmed"].sum())
        out[str(gen)] = {"n_checked_by_first_tier": int(part[ERROR_COLUMN].notna().sum()) if ERROR_COLUMN in part
                         else 0, "n_checked_by_confirming_tier": checked, "n_confirmed": confirmed,
                         "confirmed_per_check": confirmed / checked if checked else None}
    return out


def export_structures(*, domain: str, verified: str, candidates: str, export: str) -> None:
    from ..domains import get_domain

    dom = get_domain(domain)
    if not export.endswith(dom.export_suffix):
        from ..errors import InvdesignError

        raise InvdesignError(f"{export}: a {domain} campaign exports candidates{dom.export_suffix}; ask for that file")
    n = dom.write_export(read_table(verified), read_table(candidates, ["rank", "passes"]), export)
    log.info("wrote %d candidates to %s", n, export)


def export_relaxed(*, domain: str, oracle: dict, target: dict, property_column: str, property_kind: str | None,
                   verified: str, confirmed: str, checked: str) -> tuple[int, int]:
    """The relaxed, symmetrised structures of the verified table (crystals: ``confirmed.zip`` and ``checked.zip``),
    each file's README naming the oracle's columns that measured the campaign property."""
    from ..domains import get_domain

    o = make_oracle(domain, oracle, target, property_column, property_kind)
    measured = [(f"{tier.name} {property_column}", m.column, m.unit)
                for tier in o.tiers if (m := o.tier_measure(tier)) is not None]
    n = get_domain(domain).write_relaxed_exports(read_table(verified, ["final_rank", "confirmed"]), confirmed, checked, measured)
    log.info("wrote %d confirmed and %d checked structures to %s and %s", *n, confirmed, checked)
    return n


def run_oracle_chain(*, campaign: str, domain: str, oracle: dict, target: dict, property_column: str,
                     property_kind: str | None, candidates: str, known: str, prepared: str, folder: str) -> dict:
    """Every oracle rule after ``oracle_prepare``, in one process, as the workflow chains them (batches -> checked
    -> merged -> confirming batches -> confirmed, round after round -> verified), with the workflow's file names
    under ``folder``: how tests, bench scripts and notebooks run a campaign's oracle without Snakemake. Returns the
    metrics."""
    out = Path(folder)
    p = {"domain": domain, "oracle": oracle, "target": target, "property_column": property_column,
         "property_kind": property_kind}
    n = oracle_batches(**p, candidates=candidates, feedback=[], batches=str(out / "batches"))
    checked = [str(out / "checked" / f"batch_{b:03d}.parquet") for b in range(n)]
    for b, path in enumerate(checked):
        oracle_batch(**p, batch=str(out / "batches" / f"batch_{b:03d}.parquet"), known=known, prepared=prepared,
                     checked=path)
    oracle_merge(**p, checked=checked, candidates=candidates, known=known, prepared=prepared,
                 table=str(out / "checked.parquet"), tier_metrics=str(out / "checked_metrics.json"))
    confirmed: list[str] = []
    rounds = make_oracle(domain, oracle, target, property_column, property_kind).confirm_rounds
    for r in range(1, rounds + 1):
        folder = out / "confirm" / (f"round_{r}" if r > 1 else "")
        n = confirm_batches(**p, table=str(out / "checked.parquet"), batches=str(folder / "batches"),
                            earlier=list(confirmed), tier_metrics=str(out / "checked_metrics.json"), round_no=r)
        for b in range(n):
            path = str(folder / "checked" / f"batch_{b:03d}.parquet")
            confirm_batch(**p, batch=str(folder / "batches" / f"batch_{b:03d}.parquet"), known=known,
                          prepared=prepared, confirmed=path)
            confirmed.append(path)
    return verify(campaign=campaign, **p, table=str(out / "checked.parquet"),
                  tier_metrics=str(out / "checked_metrics.json"), confirmed=confirmed,
                  csv=str(out / "candidates_verified.csv"), parquet=str(out / "candidates_verified.parquet"),
                  metrics=str(out / "metrics.json"))
