"""The pictures of the landing page (:mod:`invdesign.pipeline.landing`): RDKit drawings of molecules and their
orbital densities, the relaxed cell (ASE), EOS scans with their Birch-Murnaghan fit and phase diagrams (pymatgen),
each an embedded ``<img>``.

A tier of an oracle names the pictures of its candidate card (:class:`invdesign.oracles.CardFigure`): a drawing of
:data:`CARD_FIGURES` and the columns it draws, so the page never names an oracle's columns.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math

import numpy as np
import pandas as pd


def number(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x, unit: str = "", digits: int = 2, missing: str = "not run") -> str:
    """A number with its unit; ``missing`` where there is none."""
    v = number(x)
    return missing if v is None else f"{v:.{digits}f}{(' ' + unit) if unit else ''}"

def read_json_cell(text):
    """A JSON column's value (EOS scan, hull entries), or None where it is empty or unreadable."""
    try:
        return json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def png(fig) -> str:
    """A matplotlib figure as an <img> (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return img(buf.getvalue(), "image/png")


def img(data: bytes, mime: str, alt: str = "") -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}"/>')


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

def molecule_svg(smiles: str, size=(260, 200)) -> str:
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None:
        return "<p>(no drawing: the SMILES does not parse)</p>"
    d = rdMolDraw2D.MolDraw2DSVG(*size)
    rdMolDraw2D.PrepareAndDrawMolecule(d, mol)
    d.FinishDrawing()
    return img(d.GetDrawingText().encode(), "image/svg+xml", smiles)


def orbital_map(smiles: str, densities, label: str, size=(220, 180)) -> str:
    """The orbital's density on each heavy atom (heavy atoms in SMILES order, as the xTB oracle writes them) drawn
    as an RDKit similarity map: no sign, only where the orbital sits."""
    from rdkit import Chem
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    try:
        w = [float(x) for x in (json.loads(densities) if isinstance(densities, str) else densities)]
    except (TypeError, ValueError):
        w = []
    if mol is None or len(w) != mol.GetNumAtoms() or not np.isfinite(w).all():
        return f"<p>{label}: not run</p>"
    from matplotlib.colors import LinearSegmentedColormap

    # the weights are all >= 0 and RDKit maps [-max, max] onto the colours: white up to zero, then the colour
    colour = "#2166ac" if label.startswith("HOMO") else "#b2182b"
    cmap = LinearSegmentedColormap.from_list("density", [(0, "white"), (0.5, "white"), (1, colour)])
    d = rdMolDraw2D.MolDraw2DCairo(*size)
    SimilarityMaps.GetSimilarityMapFromWeights(mol, w, draw2d=d, colorMap=cmap, contourLines=4)
    d.FinishDrawing()
    return f"<figure>{img(d.GetDrawingText(), 'image/png', label)}<figcaption>{label}</figcaption></figure>"

def structure_from_cif(cif):
    from pymatgen.core import Structure

    if not isinstance(cif, str) or not cif:
        return None
    try:
        return Structure.from_str(cif, fmt="cif")
    except Exception:  # noqa: BLE001  (no picture for an unreadable cell)
        return None


def cell_picture(structure) -> str:
    """The relaxed cell drawn by ASE (atoms as covalent-radius discs, the cell outlined)."""
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.0, 3.0))
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors
    from matplotlib.patches import Patch

    plot_atoms(AseAtomsAdaptor.get_atoms(structure), ax, rotation="10x,-20y,0z", radii=0.5, show_unit_cell=2)
    ax.set_axis_off()
    symbols = sorted({el.symbol for el in structure.composition.elements})
    ax.legend(handles=[Patch(facecolor=jmol_colors[atomic_numbers[x]], edgecolor="k", label=x) for x in symbols],
              fontsize=8, loc="upper right", frameon=False)
    ax.set_title("relaxed cell", fontsize=9)
    return png(fig)


def eos_plot(points: str, k, r2, label: str) -> str:
    """The EOS scan and its Birch-Murnaghan fit (pymatgen), with the modulus and R^2."""
    from pymatgen.analysis.eos import EOS

    scan = read_json_cell(points)
    if not scan or len(scan.get("volumes", [])) < 4:
        return f"<p>{label} EOS: not run</p>"
    plt = pyplot()
    v, e = np.asarray(scan["volumes"]), np.asarray(scan["energies"])
    fig, ax = plt.subplots(figsize=(3.2, 2.6))
    ax.plot(v, e, "o", ms=4, label=f"{label} scan")
    try:
        fit = EOS("birch_murnaghan").fit(v, e)
        grid = np.linspace(v.min(), v.max(), 100)
        ax.plot(grid, fit.func(grid), "-", lw=1, label="Birch-Murnaghan")
    except Exception:  # noqa: BLE001  (a scan the fit cannot follow: the points alone)
        pass
    ax.set_xlabel("volume (A^3)")
    ax.set_ylabel("energy (eV)")
    ax.set_title(f"K = {fmt(k, 'GPa', 0, 'none')}, R^2 = {fmt(r2, digits=3, missing='n/a')}", fontsize=9)
    ax.legend(fontsize=7)
    return png(fig)


def hull_plot(entries_json: str, structure, energy_per_atom, label: str) -> str:
    """The phase diagram of the candidate's chemical system from the hull's own entries, the candidate added."""
    from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
    from pymatgen.core import Composition

    entries = read_json_cell(entries_json)
    e = number(energy_per_atom)
    if not entries or structure is None or e is None:
        return f"<p>{label} phase diagram: not run</p>"
    pds = [PDEntry(Composition(f), float(x) * Composition(f).num_atoms, name=f) for f, x in entries]
    comp = structure.composition
    cand = PDEntry(comp, e * comp.num_atoms, name=f"{comp.reduced_formula} (candidate)")
    try:
        diagram = PhaseDiagram([*pds, cand])
        above = float(diagram.get_e_above_hull(cand, allow_negative=True))
        # unstable entries up to the candidate's own distance are drawn, so the candidate is always on the plot
        plotter = PDPlotter(diagram, show_unstable=max(0.3, above + 0.05), backend="matplotlib")
        ax = plotter.get_plot(label_unstable=True)
        fig = ax.get_figure() if hasattr(ax, "get_figure") else ax.gcf()
        fig.set_size_inches(4.2, 3.4)
        if len(comp.elements) == 2:  # binary: keep the candidate's formation energy inside the y range
            lo, hi = ax.get_ylim()
            y = float(diagram.get_form_energy_per_atom(cand))
            ax.set_ylim(min(lo, y - 0.05), max(hi, y + 0.05))
        for t in [*ax.texts, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]:
            t.set_fontsize(8)
        ax.set_title(f"{'-'.join(sorted(el.symbol for el in comp.elements))} hull ({label})", fontsize=9)
        return png(fig)
    except Exception as exc:  # noqa: BLE001  (a diagram pymatgen cannot draw: say so)
        return f"<p>{label} phase diagram: could not be drawn ({type(exc).__name__})</p>"


# ---------------------------------------------------------------------------------------------
# the pictures an oracle's tiers declare for their cards
# ---------------------------------------------------------------------------------------------

def _orbital_figure(row: pd.Series, label: str, density: str) -> str:
    return orbital_map(row.get("smiles"), row.get(density), label)


def _eos_figure(row: pd.Series, label: str, points: str, modulus: str, r2: str) -> str:
    """The EOS scan where it ran (nothing where it did not: the property needed no EOS)."""
    scan = row.get(points)
    return eos_plot(scan, row.get(modulus), row.get(r2), label) if isinstance(scan, str) and scan else ""


def _hull_figure(row: pd.Series, label: str, entries: str, cif: str, energy: str) -> str:
    return hull_plot(row.get(entries), structure_from_cif(row.get(cif)), row.get(energy), label)


#: drawing name -> (row, caption, **{its input: column}) -> HTML
CARD_FIGURES = {"orbital_density": _orbital_figure, "eos_scan": _eos_figure, "phase_diagram": _hull_figure}


def card_figures(row: pd.Series, tiers) -> list[str]:
    """The pictures the oracle's ``tiers`` declare for a card, in the order declared (first tier first)."""
    return [CARD_FIGURES[f.kind](row, f.label, **f.columns) for t in tiers for f in t.figures]
