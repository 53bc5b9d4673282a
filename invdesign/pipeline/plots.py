"""Figures for the Snakemake HTML report: property distributions, the filter funnel, and the
top candidates (RDKit drawings for molecules, a table for crystals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def property_histogram(dataset: pd.DataFrame, samples_pred: np.ndarray, candidates: pd.DataFrame, target: dict,
                       label: str, out_png: str, extra: dict | None = None) -> None:
    """Training data vs generated (valid, unique) vs candidates passing every filter."""
    from ..config import target_bounds

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    train = dataset.loc[dataset["split"] == "train", "property"].to_numpy(float)
    series = [("training data", train), ("generated (valid, unique)", samples_pred),
              ("candidates (all filters)", candidates.loc[candidates["passes"].astype(bool),
                                                          "predicted_property"].to_numpy(float))]
    series += list((extra or {}).items())
    finite = np.concatenate([s[np.isfinite(s)] for _, s in series if len(s)])
    bins = np.linspace(np.nanmin(finite), np.nanmax(finite), 50)
    for name, values in series:
        values = values[np.isfinite(values)]
        if len(values):
            ax.hist(values, bins=bins, density=True, histtype="step", linewidth=1.8, label=f"{name} (n={len(values)})")
    lo, hi = target_bounds(target)
    ax.axvspan(max(lo, bins[0]), min(hi, bins[-1]), color="tab:green", alpha=0.12, label="target")
    ax.set_xlabel(label)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def funnel(metrics: dict, out_png: str, extra: dict | None = None) -> None:
    plt = _plt()
    stages = dict(metrics["funnel"])
    stages.update(extra or {})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names, counts = list(stages)[::-1], list(stages.values())[::-1]
    bars = ax.barh(names, counts, color="tab:blue")
    for bar, c in zip(bars, counts):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {c}", va="center", fontsize=9)
    ax.set_xlabel("samples kept")
    ax.set_title(f"{metrics['campaign']}: how many samples each filter kept")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def molecule_grid(cands: pd.DataFrame, unit: str, out_png: str, n: int = 24) -> None:
    from rdkit import Chem
    from rdkit.Chem import Draw

    top = cands.head(n)
    mols, legends = [], []
    for row in top.itertuples(index=False):
        mol = Chem.MolFromSmiles(row.smiles)
        if mol is None:
            continue
        legend = f"#{getattr(row, 'final_rank', row.rank)} pred {row.predicted_property:.2f} {unit}"
        xtb = getattr(row, "xtb_calibrated", np.nan)
        if xtb is not None and np.isfinite(xtb):
            legend += f" | xTB {xtb:.2f}"
        mols.append(mol), legends.append(legend)
    img = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(260, 220), legends=legends)
    with atomic_path(out_png) as tmp:
        img.save(str(tmp), format="PNG")


def crystal_table(cands: pd.DataFrame, out_html: str, n: int = 30, verified: pd.DataFrame | None = None) -> None:
    """Top crystals: CHGNet-verified ones first (E_hull, EOS bulk modulus), then the other passing ones."""
    top = cands[cands["passes"].astype(bool)]
    if verified is not None and len(verified):
        top = pd.concat([verified, top[~top["rank"].isin(verified["rank"])]], ignore_index=True)
    top = top.head(n)
    cols = [c for c in ("final_rank", "rank", "formula", "predicted_property", "unit", "e_hull", "stable",
                        "eos_bulk_modulus_gpa", "novel_after_relaxation", "matches_known", "num_sites",
                        "min_distance", "charge_neutral", "cif_path") if c in top]
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(top[cols].to_html(index=False, float_format=lambda v: f"{v:.2f}"))


def make_report_figures(name: str, camp: dict, dataset_path: str, samples_path: str, candidates_path: str,
                        metrics_path: str, verified_path: str | None, out_dir: str) -> None:
    from ..pipeline.steps import UNITS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = pd.read_parquet(dataset_path)
    cands = pd.read_parquet(candidates_path)
    metrics = json.loads(Path(metrics_path).read_text())
    prop = camp["dataset"]["property_column"]
    unit = UNITS.get(prop, "")
    label = f"{prop} ({unit})" if unit else prop
    samples_pred = cands["predicted_property"].to_numpy(float)
    extra_hist, extra_funnel = {}, {}
    verified = pd.read_parquet(verified_path) if verified_path else None
    if "generator" in cands and cands["generator"].nunique() > 1:  # merged campaigns: one curve per generator
        for gen, part in cands[cands["passes"].astype(bool)].groupby("generator"):
            extra_hist[f"passing, {gen}"] = part["predicted_property"].to_numpy(float)
    if verified is not None and "eos_bulk_modulus_gpa" in verified:
        extra_hist["CHGNet EOS (checked candidates)"] = verified["eos_bulk_modulus_gpa"].to_numpy(float)
        extra_funnel["CHGNet stable"] = int(verified["stable"].astype(bool).sum())
        if "eos_in_target" in verified:
            hit = verified["stable"].astype(bool) & verified["eos_in_target"].astype(bool)
            extra_funnel["stable, EOS on target"] = int(hit.sum())
            if "novel_after_relaxation" in verified:
                extra_funnel["... and novel after relaxation"] = int(
                    (hit & verified["novel_after_relaxation"].eq(True)).sum())
    if verified is not None and "xtb_calibrated" in verified:
        extra_hist["xTB-verified (calibrated)"] = verified["xtb_calibrated"].to_numpy(float)
        extra_funnel["xTB verified"] = int(verified["xtb_verified"].sum())
    property_histogram(dataset, samples_pred, cands, camp["target"], label, str(out / "property_distribution.png"),
                       extra_hist)
    funnel(metrics, str(out / "funnel.png"), extra_funnel)
    if camp["domain"] == "molecules":
        molecule_grid(verified if verified is not None else cands[cands["passes"].astype(bool)], unit,
                      str(out / "top_candidates.png"))
    else:
        crystal_table(cands, str(out / "top_candidates.html"), verified=verified)
