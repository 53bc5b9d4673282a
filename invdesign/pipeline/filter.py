"""Rules ``filter_rank`` and ``summary``: every generator's samples merged, checked (validity, uniqueness,
novelty, the domain's filters), scored by the independent predictor (and, with an EBM generator, for being out
of distribution), ranked and exported as the candidate tables handed to chemists."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import load_model, read_table
from ..config.filters import FILTERS
from ..config.target import Target
from ..io import write_json, write_table

log = logging.getLogger("invdesign")


def merge_samples(paths: list[str]) -> pd.DataFrame:
    """The samples of every generator of a campaign, one table (each row names its ``generator``)."""
    return pd.concat([read_table(p, ["generator"]) for p in paths], ignore_index=True)


def predict(predictor, graphs: list, device) -> np.ndarray:
    """The independent predictor's value for each graph (NaN where the candidate has no graph)."""
    from ..models.predictor import predict_graphs

    ok = [i for i, g in enumerate(graphs) if g is not None]
    pred = np.full(len(graphs), np.nan)
    if ok:
        pred[ok] = predict_graphs(predictor, [graphs[i] for i in ok], device).numpy()
    return pred


def ood_scores(ebm_path: str, graphs: list, device) -> tuple[np.ndarray, np.ndarray]:
    """EBM energy and its z-score against the training data for each graph (NaN where no graph)."""
    import torch
    from torch_geometric.loader import DataLoader

    ebm, _ = load_model(ebm_path)
    ebm.to(device)
    energy = np.full(len(graphs), np.nan)
    needs = getattr(ebm, "score_inputs", ())  # crystal EBM: cell targets (absent for oversized cells)
    ok = [i for i, g in enumerate(graphs) if g is not None and all(hasattr(g, a) for a in needs)]
    vals = [ebm.score_graphs(batch.to(device)).cpu() for batch in DataLoader([graphs[i] for i in ok], batch_size=512)]
    if vals:
        energy[ok] = torch.cat(vals).numpy()
    z = (energy - float(ebm.energy_mean)) / max(float(ebm.energy_std), 1e-6)
    return energy, z


def rank(keep: pd.DataFrame) -> pd.DataFrame:
    """Passing candidates first, then predicted inside the target, then (with ``filters.objectives``) by the
    objectives' ranking key, then by distance to the target, then by how far the predictor is from what the
    generator aimed at; ``rank`` 1, 2, ..."""
    by = ["passes", "in_target", *(["objective_rank"] if "objective_rank" in keep else []), "distance_to_target",
          "generator_disagreement"]
    keep = keep.sort_values(by, ascending=[False, False] + [True] * (len(by) - 2), kind="stable").reset_index(
        drop=True)
    keep.insert(0, "rank", np.arange(1, len(keep) + 1))
    return keep


def funnel_metrics(domain, checked: pd.DataFrame, keep: pd.DataFrame) -> dict:
    """The filter funnel for all generators together and, under ``by_generator``, for each one."""
    passing = keep[keep["passes"]]
    n, n_valid = len(checked), int(checked["valid"].sum())
    out = {"n_samples": n, "validity": n_valid / max(n, 1), "uniqueness": len(keep) / max(n_valid, 1),
           "novelty": float(keep["novel"].mean()) if len(keep) else 0.0,
           "n_valid_unique_novel": int(keep["novel"].sum()), "n_candidates": int(len(passing)),
           "candidates_in_target_share": float(passing["in_target"].mean()) if len(passing) else 0.0,
           "n_candidates_in_target": int(passing["in_target"].sum()),
           "funnel": {"sampled": n, "valid": n_valid, "unique": len(keep), "novel": int(keep["novel"].sum()),
                      "passes": int(len(passing)), "in_target": int(passing["in_target"].sum())}}
    by = {}
    for gen, part in checked.groupby("generator", sort=True):
        valid = part[part["valid"]]
        mine = keep[keep["generator"] == gen]
        mine_pass = mine[mine["passes"]]
        by[str(gen)] = {"n_samples": len(part), "validity": len(valid) / max(len(part), 1),
                        "raw_validity": float(part["raw_valid"].mean()) if "raw_valid" in part else None,
                        "uniqueness": domain.n_unique(valid) / max(len(valid), 1),
                        "novelty": float(mine["novel"].mean()) if len(mine) else 0.0,
                        "n_candidates": int(len(mine_pass)),
                        "n_candidates_in_target": int(mine_pass["in_target"].sum()),
                        "candidates_in_target_share": float(mine_pass["in_target"].mean()) if len(mine_pass) else 0.0}
    out["by_generator"] = by
    return out


def _reason_key(reason) -> str:
    """A reject reason without its particulars (numbers as N, listed elements as [...]), so that like reasons count
    together: 'invalid: fewer than N heavy atoms', 'objective sa_score N > N'."""
    if not isinstance(reason, str) or not reason.strip():
        return "no reason given"
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "N", re.sub(r"\[[^\]]*\]", "[...]", reason.strip()))


def empty_run_note(checked: pd.DataFrame, keep: pd.DataFrame) -> str:
    """'' when a candidate passes every filter; else one line: no valid (or no passing) candidate, and how many
    samples each reject reason removed."""
    if len(keep) and keep["passes"].astype(bool).any():
        return ""
    what = "no passing candidate" if len(checked) and checked["valid"].astype(bool).any() else "no valid candidate"
    dropped = checked.loc[~(checked["valid"].astype(bool) & checked["unique"].astype(bool)), "reject_reason"]
    counts = pd.concat([dropped, keep.get("reject_reason", pd.Series(dtype=object))]).map(_reason_key).value_counts()
    return (f"{what}: {len(checked)} samples, {int(checked['valid'].sum()) if len(checked) else 0} valid; "
            + ("reject reasons: " + ", ".join(f"{k} {n}" for k, n in counts.items()) if len(counts) else
               "no samples"))


def filter_rank(*, campaign: str, domain: str, filters: dict, target: dict, property_column: str, unit: str,
                runtime: dict, samples: list[str], dataset: str, known: str, predictor: str, ebm: list[str],
                csv: str, parquet: str, metrics: str, structures: str) -> dict:
    """Write the ranked candidate tables (``csv``, ``parquet``), the per-candidate files in ``structures`` and
    the funnel ``metrics``. Novelty is judged against ``known`` (everything the project knows:
    :func:`invdesign.pipeline.data.known_reference`), validity against the training ``dataset``. ``ebm``: the campaign's EBM generator, if it has one (its energy scores every
    candidate, whichever generator made it, for being out of distribution: ``ood_z``)."""
    from ..device import resolve_device
    from ..domains import get_domain
    from ..targets import distance_to_target, in_target

    t0 = time.monotonic()
    dom = get_domain(domain)
    tgt = Target.parse(target).to_dict()
    device = resolve_device(runtime.get("device"))
    fsettings = FILTERS[domain].parse(filters, "filters")
    checked = dom.filter_candidates(merge_samples(samples), read_table(dataset, [dom.identifier]), fsettings,
                                    read_table(known, [dom.identifier]))
    keep = checked[checked["valid"] & checked["unique"]].copy()
    log.info("%d samples: %d valid, %d valid+unique, %d pass every filter", len(checked),
             int(checked["valid"].sum()), len(keep), int(checked["passes"].sum()))
    model, pckpt = load_model(predictor)
    graphs = dom.featurize_like(keep, pckpt["meta"])
    pred = predict(model, graphs, device)
    keep["predicted_property"] = pred
    keep["distance_to_target"] = distance_to_target(pred, tgt)
    keep["in_target"] = in_target(pred, tgt)
    if ebm:
        keep["ebm_energy"], keep["ood_z"] = ood_scores(ebm[0], graphs, device)
    # how far the independent predictor is from what the generator aimed at / believed
    keep["generator_disagreement"] = np.abs(keep["generator_pred"].to_numpy(float) - pred)
    if fsettings.objectives:
        from ..objectives import apply_objectives

        keep = apply_objectives(keep, fsettings.objectives, fsettings.ranking)
        log.info("objectives %s (%s ranking): %d candidates pass every bound",
                 ", ".join(o.name for o in fsettings.objectives), fsettings.ranking, int(keep["passes"].sum()))
    keep = rank(keep)
    keep.insert(1, "campaign", campaign)
    keep["property_column"], keep["unit"] = property_column, unit
    keep = dom.export_candidates(keep, Path(structures))
    first = ["rank", "campaign", dom.identifier, "predicted_property", "unit", "distance_to_target", "in_target",
             "passes", "reject_reason"]
    keep = keep[[c for c in first if c in keep] + [c for c in keep.columns if c not in first]]
    write_table(keep, parquet)
    write_table(keep.drop(columns=[c for c in ("structure",) if c in keep]), csv)
    out = {"campaign": campaign, "domain": domain, "target": tgt, "property": property_column,
           **funnel_metrics(dom, checked, keep), "empty_run": empty_run_note(checked, keep),
           "filter_seconds": time.monotonic() - t0}
    if out["empty_run"]:
        log.warning("campaign %s: %s", campaign, out["empty_run"])
    log.info("%d candidates pass all filters; %d (%.0f%%) predicted inside the target", out["n_candidates"],
             out["n_candidates_in_target"], 100 * out["candidates_in_target_share"])
    write_json(out, metrics)
    return out


#: the oracle's entries the summary leads with: what the highest tier that ran confirms, then what it checked
SUMMARY_LEAD = ("campaign", "confirmed_by", "n_confirmed", "n_checked_by_confirming_tier")
#: the per-generator summary's funnel counts (``metrics.json``) and oracle counts (``oracle/metrics.json``)
GENERATOR_FUNNEL = ("n_samples", "validity", "n_candidates", "n_candidates_in_target")
GENERATOR_VERDICTS = ("n_checked_by_first_tier", "n_checked_by_confirming_tier", "n_confirmed")


def summary(*, metrics: list[str], oracle: list[str], csv: str, by_generator: str) -> None:
    """One row per campaign: the confirmed count of the oracle's highest tier first (``oracle/metrics.json``), why
    the run produced no passing candidate where it did not (``empty_run``), then the scalar entries of the funnel
    (``metrics.json``: predicted counts). ``by_generator``: one row per campaign and generator (trained or classical
    arm), its funnel counts and its oracle verdicts: checked by each tier, confirmed, confirmed per check."""
    rows, per_gen = [], []
    for p, q in zip(metrics, oracle):
        m, o = json.loads(Path(p).read_text()), json.loads(Path(q).read_text())
        lead = {k: o.get(k) for k in SUMMARY_LEAD} | {"campaign": m["campaign"], "empty_run": m.get("empty_run", "")}
        funnel = {k: v for k, v in m.items() if not isinstance(v, dict) and k not in lead}
        rows.append(lead | funnel | {"target": json.dumps(m["target"])})
        verdicts = o.get("by_generator", {})
        for gen, f in m.get("by_generator", {}).items():
            v = verdicts.get(gen, {})
            per_gen.append({"campaign": m["campaign"], "generator": gen, "confirmed_by": o.get("confirmed_by"),
                            **{k: f.get(k) for k in GENERATOR_FUNNEL},
                            **{k: v.get(k, 0) for k in GENERATOR_VERDICTS},
                            "confirmed_per_check": v.get("confirmed_per_check")})
    write_table(pd.DataFrame(rows), csv)
    write_table(pd.DataFrame(per_gen, columns=["campaign", "generator", "confirmed_by", *GENERATOR_FUNNEL,
                                               *GENERATOR_VERDICTS, "confirmed_per_check"]), by_generator)
