"""Figures for the Snakemake HTML report: property distributions, the filter funnel, and the
top candidates (RDKit drawings for molecules, a table for crystals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, is_missing


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


def funnel(stages: dict, title: str, out_png: str) -> None:
    """Horizontal bars of the funnel's stages, the first at the top, in the order given (pipeline order)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names, counts = list(stages)[::-1], list(stages.values())[::-1]
    bars = ax.barh(names, counts, color="tab:blue")
    for bar, c in zip(bars, counts):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {c}", va="center", fontsize=9)
    ax.set_xlabel("candidates kept")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def molecule_grid(cands: pd.DataFrame, unit: str, n: int = 24):
    """RDKit grid image (PIL) of the best ``n`` molecules with their predicted values and calibrated xTB estimates;
    None when there is no molecule to draw."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols, legends = [], []
    for row in cands.head(n).to_dict("records"):
        mol = Chem.MolFromSmiles(row["smiles"])
        if mol is None:
            continue
        legend = f"#{row.get('final_rank', row['rank'])} pred {row['predicted_property']:.2f} {unit}"
        xtb = pd.to_numeric(row.get("xtb_calibrated"), errors="coerce")
        if not is_missing(xtb) and np.isfinite(xtb):
            legend += f" | xTB est. {xtb:.2f}"
        mols.append(mol), legends.append(legend)
    if not mols:
        return None
    return Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(260, 220), legends=legends)


def table_html(top: pd.DataFrame, columns) -> str:
    """An HTML table of the ``columns`` of ``top`` that it has."""
    return top[[c for c in columns if c in top]].to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="")


def molecule_page(cands: pd.DataFrame, unit: str, out_html: str, columns, n: int = 24) -> None:
    """Top molecules: a drawing of each, then the table."""
    import base64
    import io

    grid = molecule_grid(cands, unit, n)
    if grid is None:
        head = "<p>No candidate molecule to draw (see the filter funnel for why).</p>\n"
    else:
        buf = io.BytesIO()
        grid.save(buf, format="PNG")
        head = f'<img alt="top molecules" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>\n'
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(head + table_html(cands.head(n), columns))


def crystal_table(cands: pd.DataFrame, out_html: str, columns, n: int = 30,
                  verified: pd.DataFrame | None = None) -> None:
    """Top crystals: oracle-checked ones first (E_hull, EOS bulk modulus), then the other passing ones."""
    top = cands[cands["passes"].astype(bool)]
    if verified is not None and len(verified):
        top = pd.concat([verified, top[~top["rank"].isin(verified["rank"])]], ignore_index=True)
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(table_html(top.head(n), columns))
