"""Verification and export steps: GFN2-xTB for molecules (calibrated to the data's DFT scale),
chemist-facing descriptors, SDF with 3D coordinates, and a zip of CIFs for crystals."""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, write_json, write_table

log = logging.getLogger("invdesign")

# the xTB quantity that estimates each QM9 property
XTB_COUNTERPART = {"gap_ev": "xtb_gap_ev", "homo_ev": "xtb_homo_ev", "lumo_ev": "xtb_lumo_ev"}


def _run_xtb(smiles_list, oracle: dict, what: str) -> list[dict]:
    from ..oracles.xtb import xtb_verify

    out, t0 = [], time.monotonic()
    for i, smi in enumerate(smiles_list, start=1):
        out.append(xtb_verify(smi, seed=oracle["seed"], fmax=oracle["fmax"], max_steps=oracle["max_steps"]))
        if i % 10 == 0 or i == len(smiles_list):
            el = time.monotonic() - t0
            log.info("GFN2-xTB %s: %d/%d molecules [%.0fs elapsed, ETA %.0fs]", what, i, len(smiles_list), el,
                     el / i * (len(smiles_list) - i))
    return out


def calibrate_xtb(name: str, camp: dict, dataset_path: str, out_json: str) -> dict:
    """Fit the campaign property ~ slope * xTB counterpart + intercept on training molecules."""
    from ..oracles.xtb import fit_calibration

    prop = camp["dataset"]["property_column"]
    oracle = camp["oracle"]
    xtb_key = XTB_COUNTERPART.get(prop)
    if xtb_key is None:
        result = {"applicable": False, "property": prop,
                  "reason": f"no xTB counterpart for {prop}; xTB gaps are reported uncalibrated"}
        write_json(result, out_json)
        return result
    df = pd.read_parquet(dataset_path)
    train = df[df["split"] == "train"]
    sample = train.sample(n=min(oracle["calibration_size"], len(train)), random_state=oracle["seed"])
    runs = _run_xtb(sample["smiles"].tolist(), oracle, "calibration")
    ok = [r.get("xtb_ok") and r.get("xtb_connectivity_ok") for r in runs]
    x = np.array([r[xtb_key] if good else np.nan for r, good in zip(runs, ok)])
    y = sample["property"].to_numpy(float)
    fit = fit_calibration(x, y)
    result = {"applicable": True, "property": prop, "xtb_quantity": xtb_key, **fit,
              "n_failed": int(len(runs) - sum(ok)),
              "points": [{"id": i, "xtb": float(a), "reference": float(b)} for i, a, b in zip(sample["id"], x, y)
                         if np.isfinite(a)]}
    log.info("calibration on %d training molecules: %s = %.3f * %s + %.3f eV (r %.3f, residual %.3f eV)", fit["n"],
             prop, fit["slope"], xtb_key, fit["intercept"], fit["r"], fit["residual_std_ev"])
    write_json(result, out_json)
    return result


def verify_molecules(name: str, camp: dict, candidates_path: str, dataset_path: str, calibration_path: str,
                     out_csv: str, out_parquet: str, out_sdf: str, metrics_path: str) -> dict:
    from ..chem.descriptors import nearest_neighbours, qed_and_sa
    from ..oracles.xtb import apply_calibration, embed
    from ..targets import distance_to_target, in_target

    cands = pd.read_parquet(candidates_path)
    cands = cands[cands["passes"].astype(bool)].reset_index(drop=True)
    reference = pd.read_parquet(dataset_path)
    calib = json.loads(Path(calibration_path).read_text())
    oracle = camp["oracle"]
    t0 = time.monotonic()
    cands["qed"], cands["sa_score"] = qed_and_sa(cands["smiles"])
    cands["nearest_known"], cands["nearest_known_similarity"] = nearest_neighbours(cands["smiles"],
                                                                                 reference["smiles"])
    log.info("QED, SA score and nearest known molecule for %d candidates in %.1fs", len(cands),
             time.monotonic() - t0)
    top = cands if oracle["top_k"] is None else cands.head(oracle["top_k"])
    runs = _run_xtb(top["smiles"].tolist(), oracle, "verification")
    for key in ("xtb_ok", "xtb_converged", "xtb_connectivity_ok", "xtb_gap_ev", "xtb_homo_ev", "xtb_lumo_ev",
                "xtb_error", "xtb_homo_density", "xtb_lumo_density", "xtb_charges", "molblock"):
        values = [r.get(key) for r in runs] + [None] * (len(cands) - len(runs))
        if key.endswith(("density", "charges")):
            values = [json.dumps([round(v, 4) for v in x]) if x is not None else None for x in values]
        cands[key] = values
    cands["xtb_verified"] = cands["xtb_ok"].eq(True) & cands["xtb_connectivity_ok"].eq(True)  # None: not run
    if calib.get("applicable"):
        est = apply_calibration(pd.to_numeric(cands[calib["xtb_quantity"]], errors="coerce"), calib)
        est = np.where(cands["xtb_verified"], est, np.nan)
        cands["xtb_calibrated"] = est
        cands["xtb_in_target"] = in_target(est, camp["target"])
        cands["xtb_distance_to_target"] = distance_to_target(est, camp["target"])
        cands["predictor_vs_xtb"] = np.abs(cands["predicted_property"].to_numpy(float) - est)
        # a linear calibration is a conditional mean with a residual spread: report the chance that the
        # DFT-scale value lies in the target, not only whether the point estimate does
        cands["xtb_target_probability"] = target_probability(est, calib["residual_std_ev"], camp["target"])
    else:
        cands["xtb_in_target"] = False
        cands["xtb_target_probability"] = np.nan
    cands = cands.sort_values(["xtb_verified", "xtb_target_probability", "rank"], ascending=[False, False, True],
                              kind="stable", na_position="last").reset_index(drop=True)
    cands.insert(0, "final_rank", np.arange(1, len(cands) + 1))
    _write_sdf(cands, out_sdf, embed)
    write_table(cands.drop(columns=["molblock"]), out_parquet)
    write_table(cands.drop(columns=["molblock", "xtb_homo_density", "xtb_lumo_density", "xtb_charges"]), out_csv)
    verified = cands[cands["xtb_verified"]]
    metrics = {"campaign": name, "n_candidates": int(len(cands)), "n_xtb_run": int(len(runs)),
               "n_xtb_verified": int(len(verified)),
               "n_xtb_broken_connectivity": int(sum(r.get("xtb_ok", False) and not r.get("xtb_connectivity_ok")
                                                    for r in runs)),
               "n_xtb_in_target": int(cands["xtb_in_target"].sum()),
               "expected_xtb_hits": float(np.nansum(cands["xtb_target_probability"])),
               "xtb_in_target_share": float(cands["xtb_in_target"].sum() / max(len(verified), 1)),
               "predictor_vs_xtb_mae": float(np.nanmean(cands["predictor_vs_xtb"])) if "predictor_vs_xtb" in cands
               and cands["predictor_vs_xtb"].notna().any() else None,
               "calibration": {k: v for k, v in calib.items() if k != "points"},
               "seconds": time.monotonic() - t0}
    log.info("xTB verified %d of %d top candidates (connectivity kept); %d inside the target by calibrated xTB, "
             "%.1f expected from the calibration's spread", metrics["n_xtb_verified"], len(runs),
             metrics["n_xtb_in_target"], metrics["expected_xtb_hits"])
    write_json(metrics, metrics_path)
    return metrics


def target_probability(mean, sigma: float, target: dict) -> np.ndarray:
    """P(low <= value <= high) for a normal with the given mean (array) and spread."""
    from scipy.stats import norm

    from ..config import target_bounds

    lo, hi = target_bounds(target)
    mean = np.asarray(mean, float)
    return norm.cdf((hi - mean) / sigma) - norm.cdf((lo - mean) / sigma)


def _write_sdf(cands: pd.DataFrame, out_sdf: str, embed) -> None:
    """SDF of all candidates: xTB geometry where verified, else an MMFF-relaxed ETKDG conformer, else 2D."""
    from rdkit import Chem

    scalar = [c for c in cands.columns if c not in ("molblock", "xtb_homo_density", "xtb_lumo_density",
                                                    "xtb_charges", "structure")]
    with atomic_path(out_sdf) as tmp:
        writer = Chem.SDWriter(str(tmp))
        for row in cands.itertuples(index=False):
            mb = getattr(row, "molblock")
            mol = Chem.MolFromMolBlock(mb, removeHs=False) if isinstance(mb, str) else embed(row.smiles)
            geometry = "3D"
            if mol is None:  # no 3D conformer (e.g. a strained ring): keep the record with 2D coordinates
                from rdkit.Chem import AllChem

                mol = Chem.MolFromSmiles(row.smiles)
                if mol is None:
                    continue
                AllChem.Compute2DCoords(mol)
                geometry = "2D (3D embedding failed)"
            mol.SetProp("geometry", geometry)
            mol.SetProp("_Name", f"{row.campaign} rank {row.final_rank}")
            for col in scalar + ["xtb_homo_density", "xtb_lumo_density"]:
                value = getattr(row, col)
                if value is None or (isinstance(value, float) and not np.isfinite(value)):
                    continue
                mol.SetProp(col, str(value))
            writer.write(mol)
        writer.close()


def package_crystals(candidates_path: str, out_zip: str) -> int:
    """Zip the CIF of every passing crystal candidate, named by rank and formula."""
    from ..chem.crystals import structure_from_record

    cands = pd.read_parquet(candidates_path)
    cands = cands[cands["passes"].astype(bool)]
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for row in cands.itertuples(index=False):
                cif = structure_from_record(row.structure).to(fmt="cif")
                zf.writestr(f"{row.rank:04d}_{row.formula}.cif", cif)
    return len(cands)


FEEDBACK_COLUMNS = ("formula", "predicted_property", "stable", "eos_bulk_modulus_gpa")


def feedback_ranker(paths: list[str], target: dict):
    """(an :class:`~invdesign.search.feedback.OracleFeedbackRanker` fitted on the CHGNet verdicts of the
    ``candidates_verified`` tables at ``paths``, the set of reduced formulas those tables verified)."""
    from ..chem.crystals import element_fractions
    from ..config import target_bounds
    from ..errors import InvdesignError
    from ..search.feedback import OracleFeedbackRanker

    tables = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise InvdesignError(f"oracle.feedback_from: {path} not found; give the candidates_verified.parquet "
                                 "(or .csv) of an earlier crystal campaign, relative to where snakemake runs")
        t = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        missing = [c for c in FEEDBACK_COLUMNS if c not in t.columns]
        if missing:
            raise InvdesignError(f"oracle.feedback_from: {path} lacks column(s) {', '.join(missing)}; it must be a "
                                 "candidates_verified table of a crystal campaign")
        tables.append(t[list(FEEDBACK_COLUMNS)])
    seen = pd.concat(tables, ignore_index=True)
    verified_formulas = set(seen["formula"].dropna())
    seen = seen[seen["stable"].notna() & seen["predicted_property"].notna()]
    # a CSV may hold the verdicts as text; "False" must not read as true
    stable = seen["stable"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0")).to_numpy(bool)
    lo, hi = target_bounds(target)
    pred = seen["predicted_property"].to_numpy(float)
    ranker = OracleFeedbackRanker((lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None),
                                  scale=float(np.std(pred)) or 1.0)
    try:
        ranker.fit([element_fractions(f) for f in seen["formula"]], pred, stable,
                   seen["eos_bulk_modulus_gpa"].to_numpy(float))
    except ValueError as err:
        raise InvdesignError(f"oracle.feedback_from ({', '.join(map(str, paths))}): {err}; verify more candidates "
                             "in those campaigns first or drop oracle.feedback_from") from None
    log.info("oracle feedback: ranker fitted on %d earlier verdicts (%d stable) from %d table(s)", len(seen),
             int(stable.sum()), len(paths))
    return ranker, verified_formulas


def rank_by_feedback(cands: pd.DataFrame, paths: list[str], target: dict) -> pd.DataFrame:
    """Re-order crystal candidates by what the CHGNet oracle said about earlier ones.

    ``paths`` are ``candidates_verified`` tables (Parquet or CSV) of earlier crystal campaigns. An
    :class:`~invdesign.search.feedback.OracleFeedbackRanker` fitted on their verdicts (stable or not, EOS
    bulk modulus of the stable ones; element fractions and the predictor's value as features) scores each
    candidate by P(stable) x P(modulus in the target | stable); candidates come back best score first, with
    ``feedback_score``, ``feedback_p_stable`` and ``feedback_expected_gpa`` columns. Candidates whose reduced
    formula those tables verified already are left out: the oracle's budget goes to new chemistry."""
    from ..chem.crystals import element_fractions

    ranker, verified_formulas = feedback_ranker(paths, target)
    again = cands["formula"].isin(verified_formulas)
    if again.any():
        log.info("oracle feedback: %d candidates skipped, their formulas were verified already", int(again.sum()))
        cands = cands[~again]
    if cands.empty:
        return cands
    score = ranker.score([element_fractions(f) for f in cands["formula"]], cands["predicted_property"].to_numpy(float))
    out = cands.reset_index(drop=True).assign(feedback_score=score["score"].to_numpy(),
                                              feedback_p_stable=score["p_stable"].to_numpy(),
                                              feedback_expected_gpa=score["expected"].to_numpy())
    return out.sort_values("feedback_score", ascending=False, kind="stable")


def crystal_batches(camp: dict, candidates_path: str, out_dir: str) -> int:
    """Split the best-ranked passing crystal candidates (``oracle.top_k``; null = all; with
    ``oracle.feedback_from`` ranked by :func:`rank_by_feedback`; with ``oracle.one_per_formula`` only the best
    cell of each reduced formula) into files of
    ``oracle.batch_size`` rows, ``batch_000.parquet``, ... (the fan-out of the CHGNet check: one
    Snakemake job per file). Returns the number of batches (0 when nothing passed)."""
    oracle = camp["oracle"]
    cands = pd.read_parquet(candidates_path)
    top = cands[cands["passes"].astype(bool)]
    if oracle.get("feedback_from"):
        top = rank_by_feedback(top, oracle["feedback_from"], camp["target"])
    if oracle.get("one_per_formula"):
        top = top.drop_duplicates("formula")  # a diversity filter: the best-ranked cell of each formula
    top = (top if oracle["top_k"] is None else top.head(oracle["top_k"])).reset_index(drop=True)
    out = Path(out_dir)
    if out.exists():
        for old in out.glob("batch_*.parquet"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    size = max(1, int(oracle.get("batch_size", 25)))
    n = (len(top) + size - 1) // size
    for b in range(n):
        write_table(top.iloc[b * size:(b + 1) * size], str(out / f"batch_{b:03d}.parquet"))
    log.info("%d candidates in %d CHGNet batches of up to %d", len(top), n, size)
    return n


def relax_crystal_batch(camp: dict, batch_path: str, dataset_path: str, out_path: str) -> None:
    """CHGNet relaxation, energy above hull and EOS bulk modulus of one batch of candidates.

    The hull of each candidate's chemical system is built with the same CHGNet energies from the known
    phases in the dataset (all splits) plus elemental references. Every relaxed candidate
    (``oracle.eos_for: all``) or only the stable ones (E_hull <= ``oracle.e_hull_max``, ``stable``) get a
    Birch-Murnaghan bulk modulus from matcalc's EOSCalc. Each relaxed cell is matched again against the
    dataset (``matches_known``, ``novel_after_relaxation``): a novel generated cell can relax onto a known phase.
    """
    from ..chem.crystals import fit_atomic_volumes, known_matches, rescale_to_volume, structure_from_record
    from ..oracles.crystal import ReferenceEnergies, load_chgnet
    from ..oracles.crystal import verify_crystals as run_oracle

    oracle = camp["oracle"]
    top = pd.read_parquet(batch_path).reset_index(drop=True)
    dataset = pd.read_parquet(dataset_path)
    cells = [structure_from_record(r) for r in top["structure"]]
    chemsys = {frozenset(c.composition.chemical_system.split("-")) for c in cells}
    refs, known_cells = [], []
    for rec in dataset["structure"]:
        s = structure_from_record(rec)
        known_cells.append(s)
        if any(set(s.composition.chemical_system.split("-")) <= c for c in chemsys):
            refs.append(s)
    if oracle.get("rescale_volume") and cells:
        # generated cells are often compressed (median 0.45x the relaxed volume in the bench); relaxed from the
        # composition's additive volume, 1 of 80 bench cells failed to relax against 21 of 100 as generated
        volumes = fit_atomic_volumes(known_cells)
        rescaled = [rescale_to_volume(c, volumes) for c in cells]
        top["volume_scale"] = [r.volume / c.volume for r, c in zip(rescaled, cells)]
        cells = rescaled
        log.info("cells scaled to their additive volume before relaxing (median factor %.2f)",
                 float(np.median(top["volume_scale"])))
    log.info("CHGNet check of %d crystal candidates (%d chemical systems, %d reference phases)",
             len(top), len(chemsys), len(refs))
    if len(top):
        calc = load_chgnet().calculator
        fmax, steps = oracle["fmax"], oracle["max_steps"]
        references = ReferenceEnergies(refs, calculator=calc, fmax=fmax, steps=steps)
        res = run_oracle(cells, references, fmax=fmax,
                         steps=steps, e_hull_max=oracle["e_hull_max"], calculator=calc,
                         eos_for=oracle["eos_for"])
        top = pd.concat([top, res.reset_index(drop=True)], axis=1)
        # novelty was judged on the generated cell; CHGNet may relax it onto a known phase
        from pymatgen.core import Structure

        relaxed = [Structure.from_str(c, fmt="cif") if c else None for c in top["relaxed_cif"]]
        known = known_matches(relaxed, dataset)
        top["matches_known"] = [k or "" for k in known]
        top["novel_after_relaxation"] = [r is not None and k is None for r, k in zip(relaxed, known)]
        log.info("%d of %d relaxed candidates relaxed onto a known phase of the dataset",
                 sum(k is not None for k in known), sum(r is not None for r in relaxed))
    write_table(top, out_path)


def verify_crystals(name: str, camp: dict, batch_paths: list[str], out_csv: str, out_parquet: str,
                    metrics_path: str) -> dict:
    """Merge the CHGNet-checked batches and re-rank: stable and EOS modulus in the target first, then those
    still novel after relaxation, then by the EOS modulus's distance to the target."""
    from ..targets import distance_to_target, in_target

    t0 = time.monotonic()
    oracle = camp["oracle"]
    parts = [pd.read_parquet(p) for p in sorted(batch_paths)]
    parts = [p for p in parts if len(p)]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["rank", "predicted_property", "chgnet_energy_per_atom", "e_hull", "stable", "eos_bulk_modulus_gpa",
                 "relax_converged", "oracle_error", "matches_known", "novel_after_relaxation"])
    if "novel_after_relaxation" not in out:  # batches checked before this column existed: unknown, ranked last
        out["novel_after_relaxation"], out["matches_known"] = pd.NA, ""
    out["novel_after_relaxation"] = out["novel_after_relaxation"].astype("boolean")
    k = out["eos_bulk_modulus_gpa"].to_numpy(float)
    out["eos_in_target"] = in_target(k, camp["target"]) if len(out) else []
    out["eos_distance_to_target"] = distance_to_target(k, camp["target"]) if len(out) else []
    out["predictor_vs_eos_gpa"] = out["predicted_property"].to_numpy(float) - k if len(out) else []
    # S.U.N. hits first: stable, EOS modulus in the target, still novel after relaxation
    out = out.sort_values(["stable", "eos_in_target", "novel_after_relaxation", "eos_distance_to_target", "rank"],
                          ascending=[False, False, False, True, True], na_position="last", kind="stable")
    out.insert(0, "final_rank", np.arange(1, len(out) + 1))
    write_table(out, out_parquet)
    write_table(out.drop(columns=[c for c in ("structure", "relaxed_cif") if c in out]), out_csv)
    finite = np.isfinite(k)
    diff = out["predictor_vs_eos_gpa"].to_numpy(float)  # re-read: the rows were re-ranked
    hit = out["eos_in_target"].astype(bool) & out["stable"].astype(bool)  # stable, EOS modulus in the target
    metrics = {"campaign": name, "n_checked": int(len(out)), "n_batches": len(batch_paths),
               "n_relaxed": int((out["oracle_error"].fillna("") == "").sum()) if len(out) else 0,
               "n_stable": int(out["stable"].astype(bool).sum()) if len(out) else 0,
               "e_hull_max": oracle["e_hull_max"],
               "n_eos": int(finite.sum()), "n_eos_in_target": int(out["eos_in_target"].sum()),
               "n_stable_eos_in_target": int(hit.sum()),
               "n_relaxed_onto_known": int((out["matches_known"].fillna("") != "").sum()) if len(out) else 0,
               "n_sun_eos_in_target": int((hit & out["novel_after_relaxation"].eq(True)).sum()),
               "eos_vs_predictor_mae_gpa": float(np.mean(np.abs(diff[np.isfinite(diff)]))) if finite.any() else None,
               "seconds_merge": time.monotonic() - t0}
    log.info("%d/%d relaxed, %d stable (E_hull <= %.2f eV/atom), %d with an EOS bulk modulus in the target "
             "(%d of them still novel after relaxation)", metrics["n_relaxed"], len(out), metrics["n_stable"],
             oracle["e_hull_max"], metrics["n_stable_eos_in_target"], metrics["n_sun_eos_in_target"])
    write_json(metrics, metrics_path)
    return metrics
