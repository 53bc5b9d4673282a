"""Rule ``report_landing``: the page of a campaign that a chemist opens first (``report/index.html``).

One self-contained HTML file (pictures embedded), in this order:

1. the number of candidates confirmed by the highest oracle tier that ran (the metrics' ``confirmed_by``), then the
   funnel in pipeline order through to confirmation (:func:`funnel_stages`);
2. a card per confirmed hit, then cards of the best candidates that tier checked without confirming them (with
   the reason), so the page is never empty of pictures. Every label names the campaign's registered property
   (:mod:`invdesign.properties`: description and unit) and the oracle's declared column that measured it
   (:func:`measured_tiers`), never a fixed quantity; verdicts read table cells as numbers, strings or
   :func:`invdesign.io.is_missing`, never by identity tests on numpy or pandas values:
   * molecules: an RDKit drawing; each tier's value of the property (the calibrated xTB value as an estimate with
     the 10-90% range of the calibration's held-out residuals, and where the calibration is flat, the raw range it
     flattens) and the predicted one; QED and SA score; the nearest known molecule drawn with its similarity; the
     HOMO and LUMO densities on each heavy atom (|psi|^2 projected onto atoms) drawn as RDKit similarity maps;
   * crystals: the relaxed cell (ASE's plotting), space group (spglib through pymatgen), density, E_hull by each
     potential, each potential's verdict ("stable" only on the hull, within :data:`HULL_TOLERANCE`; "metastable,
     +x eV/atom" up to ``e_hull_max``), the EOS scans with their Birch-Murnaghan fit where they ran, the phase
     diagram of the candidate's chemical system with the candidate placed on it (pymatgen's plotter), and its CIF;
3. the ranked table of the candidates the first tier checked, sortable and filterable, in a scroll container, with
   units, "not run" for a check that did not run and "failed: reason" for one that failed;
4. the funnel and property distributions (the figures of rule ``report_figures``);
5. a footer with the run's provenance (rule ``provenance``).

The page checks itself: once loaded, ``<body data-images>`` holds "loaded/total" images (bench/report_browser.py
reads it in headless Chromium).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, is_missing
from ..oracles import ERROR_COLUMN

#: cards of confirmed hits shown, and of checked but unconfirmed candidates after them
MAX_CONFIRMED_CARDS = 12
MAX_OTHER_CARDS = 6


# ---------------------------------------------------------------------------------------------
# small formatting helpers
# ---------------------------------------------------------------------------------------------

def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x, unit: str = "", digits: int = 2, missing: str = "not run") -> str:
    """A number with its unit; ``missing`` where there is none."""
    v = _num(x)
    return missing if v is None else f"{v:.{digits}f}{(' ' + unit) if unit else ''}"


def fmt_cell(value, column: str = "") -> str:
    """One table cell: booleans as yes/no, numbers rounded, NaN/NA as 'not run', errors as 'failed: ...'."""
    if is_missing(value):
        return "not run"
    if column.endswith("error") and isinstance(value, str):
        return f"failed: {value}" if value else "ok"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _json(text):
    """A JSON column's value (EOS scan, hull entries), or None where it is empty or unreadable."""
    try:
        return json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _png(fig) -> str:
    """A matplotlib figure as an <img> (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return _img(buf.getvalue(), "image/png")


def _img(data: bytes, mime: str, alt: str = "") -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}"/>')


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------
# what the campaign measures: labels and columns from the property registry and the oracle's declarations
# ---------------------------------------------------------------------------------------------

#: oracle name -> (first tier, its error column), (confirming tier, its error column)
TIERS = {"xtb": (("xTB", ERROR_COLUMN), ("DFT", "dft_error")),
         "chgnet": (("CHGNet", ERROR_COLUMN), ("SevenNet", "sevennet_error"))}

#: energy above the hull (eV/atom) still called "on the hull" (stable); above it and within e_hull_max: metastable
HULL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Tier:
    who: str               # "DFT", "xTB estimate", "xTB raw", "CHGNet", ...
    column: str | None     # the column of the verified table that measures the campaign property (None: none)
    error: str             # the column saying why this tier failed on a row


@dataclass(frozen=True)
class Context:
    """What a card and the table say about the campaign property, read from the registry and the oracle."""
    name: str              # "HOMO energy", "dipole moment (norm)", ... (the property column for a user property)
    unit: str
    target: dict
    target_text: str
    tiers: tuple[Tier, ...]  # highest tier first
    e_hull_max: float | None = None
    calibration: dict = field(default_factory=dict)  # the xTB calibration (knots, held-out residuals) or {}

    def label(self, who: str, column: str = "") -> str:
        """'HOMO energy, DFT (dft_homo_ev, eV)': the property, who measured it, the column and the unit."""
        return f"{self.name}, {who} ({', '.join(x for x in (column, self.unit) if x)})"

    def in_target(self, value) -> bool:
        from ..targets import in_target

        return bool(in_target([value], self.target)[0])


def property_name(prop, property_column: str) -> str:
    """The property in words: its registered description without the source's note in parentheses."""
    return prop.description.split(" (")[0] if prop else property_column


def measured_tiers(orc) -> tuple[Tier, ...]:
    """The oracle's columns that measure the campaign property, highest tier first: the confirming tier's
    (``DFT_QUANTITY``, or its declared column named after the first tier's), the first tier's
    (``Property.measured_by``) and, for xTB, the raw quantity the calibration maps (``XTB_QUANTITY``)."""
    from ..properties import DFT_QUANTITY, XTB_QUANTITY

    (first, first_err), (second, second_err) = TIERS.get(orc.name, ((orc.name, ERROR_COLUMN), ("", "")))
    m, name = orc.measures, orc.property.name if orc.property else ""
    confirm = [c for c in orc.confirm_columns if m and (c == DFT_QUANTITY.get(name) or c.endswith(f"_{m}"))]
    raw = XTB_QUANTITY.get(name) if m else None
    tiers = [Tier(second, confirm[0] if confirm else None, second_err)] if orc.confirm_columns else []
    tiers.append(Tier(f"{first} estimate" if raw in orc.columns else first, m, first_err))
    if raw in orc.columns:
        tiers.append(Tier(f"{first} raw", raw, first_err))
    return tuple(tiers)


def campaign_columns(columns, orc) -> list[str]:
    """``columns`` with every registered measurement column (any property's, any tier's) replaced by those that
    measure the campaign property (:func:`measured_tiers`, highest tier first), placed after ``unit``."""
    from ..properties import DFT_QUANTITY, PROPERTIES, XTB_QUANTITY

    mine = [t.column for t in measured_tiers(orc) if t.column]
    every = {*XTB_QUANTITY.values(), *DFT_QUANTITY.values(), *(c for p in PROPERTIES.values()
                                                                for c in p.measured_by.values())}
    kept = [c for c in columns if c not in every and c not in mine]
    i = kept.index("unit") + 1 if "unit" in kept else len(kept)
    return kept[:i] + mine + kept[i:]


def make_context(orc, unit: str, prepared: dict) -> Context:
    from ..targets import describe_target

    return Context(property_name(orc.property, orc.property_column), unit, orc.target,
                   describe_target(orc.target, unit), measured_tiers(orc),
                   getattr(orc.settings, "e_hull_max", None),
                   prepared if "residuals" in prepared and "knots_x" in prepared else {})


def estimate_text(value, calib: dict, unit: str) -> str | None:
    """A calibrated value as an estimate with the 10-90% range of the calibration's held-out residuals, and where
    the calibration is flat there, the raw range it flattens; None where there is no estimate."""
    v = _num(value)
    if v is None:
        return None
    u = f" {unit}" if unit else ""
    r = np.asarray(calib.get("residuals") or [], float)
    if not len(r):
        return f"estimate {v:.2f}{u} (no held-out residuals: no interval)"
    lo, hi = v + np.quantile(r, [0.1, 0.9])
    text = f"estimate {v:.2f}{u} (10-90%: {lo:.2f} to {hi:.2f}{u})"
    kx, ky = np.asarray(calib["knots_x"], float), np.asarray(calib["knots_y"], float)
    flat = kx[np.isclose(ky, v, rtol=0, atol=1e-9)]
    if len(flat) > 1 and flat.max() > flat.min():
        text += (f"; flat calibration: every raw {calib.get('xtb_quantity', 'value')} from {flat.min():.2f} to "
                 f"{flat.max():.2f} gives this estimate")
    return text


# ---------------------------------------------------------------------------------------------
# molecule cards
# ---------------------------------------------------------------------------------------------

def molecule_svg(smiles: str, size=(260, 200)) -> str:
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None:
        return "<p>(no drawing: the SMILES does not parse)</p>"
    d = rdMolDraw2D.MolDraw2DSVG(*size)
    rdMolDraw2D.PrepareAndDrawMolecule(d, mol)
    d.FinishDrawing()
    return _img(d.GetDrawingText().encode(), "image/svg+xml", smiles)


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
    return f"<figure>{_img(d.GetDrawingText(), 'image/png', label)}<figcaption>{label}</figcaption></figure>"


def tier_values(row: pd.Series, ctx: Context) -> list[tuple[str, str]]:
    """(label, text) of each tier's measure of the campaign property on this row; an estimate with its interval."""
    out = []
    for t in ctx.tiers:
        if t.column is None:
            text = f"not measured by {t.who.split()[0]}"
        elif t.who.endswith("estimate"):
            text = estimate_text(row.get(t.column), ctx.calibration, ctx.unit) or _why(row, t.error, "no estimate")
        else:
            text = fmt(row.get(t.column), ctx.unit, missing=_why(row, t.error, "not run"))
        out.append((ctx.label(t.who, t.column or ""), text))
    return out


def molecule_card(row: pd.Series, status: str, ctx: Context) -> str:
    values = [*tier_values(row, ctx), (ctx.label("predicted"), fmt(row.get("predicted_property"), ctx.unit))]
    nearest = row.get("nearest_known")
    facts = [("final rank", fmt_cell(row.get("final_rank"))), ("generator", fmt_cell(row.get("generator"))),
             ("QED", fmt(row.get("qed"), digits=2, missing="n/a")),
             ("SA score", fmt(row.get("sa_score"), digits=2, missing="n/a")),
             (f"chance the {ctx.tiers[0].who} value is in the target", fmt(row.get("dft_target_probability"),
                                                                          digits=2))]
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('smiles')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{molecule_svg(row.get('smiles'))}
  {orbital_map(row.get('smiles'), row.get('xtb_homo_density'), 'HOMO density (xTB)')}
  {orbital_map(row.get('smiles'), row.get('xtb_lumo_density'), 'LUMO density (xTB)')}</div>
 {_kv(values + facts)}
 <div class="nearest"><p>nearest known molecule (similarity {fmt(row.get('nearest_known_similarity'),
                                                                   missing='n/a')}):
  {html.escape(str(nearest)) if isinstance(nearest, str) else 'none'}</p>
  {molecule_svg(nearest, (200, 150)) if isinstance(nearest, str) else ''}</div>
</div>"""


def _kv(pairs) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


def molecule_status(row: pd.Series, confirmed: bool, ctx: Context) -> str:
    """The verdict of the highest tier that measured the row: the confirming tier's value and chance, else the first
    tier's estimate with its interval (or why there is none)."""
    top, first = ctx.tiers[0], ctx.tiers[min(1, len(ctx.tiers) - 1)]
    err, v = row.get(top.error), _num(row.get(top.column)) if top.column else None
    verdict = "confirmed" if confirmed else "not confirmed"
    if isinstance(err, str) and err:
        return f"not confirmed: {top.who} failed ({err[:80]})"
    if v is not None:
        return (f"{verdict}: {top.who} {ctx.name} {fmt(v, ctx.unit)}, chance {ctx.target_text} "
                f"{fmt(row.get('dft_target_probability'))}")
    est = estimate_text(row.get(first.column), ctx.calibration, ctx.unit) if first.column else None
    lead = f"{'confirmed' if confirmed else 'checked'} by {first.who.split()[0]} only"
    if est is None:
        note = row.get("xtb_calibration_note")
        why = note if isinstance(note, str) and note else _why(row, first.error, f"no {ctx.name} estimate")
        return f"{lead}: {why}"
    return f"{lead}: {ctx.name} {est}, chance {ctx.target_text} {fmt(row.get('xtb_target_probability'))}"


def _why(row, column: str, default: str) -> str:
    err = row.get(column)
    return f"failed: {err[:60]}" if isinstance(err, str) and err else default


# ---------------------------------------------------------------------------------------------
# crystal cards
# ---------------------------------------------------------------------------------------------

def _structure(cif):
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

    plt = _plt()
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
    return _png(fig)


def eos_plot(points: str, k, r2, label: str) -> str:
    """The EOS scan and its Birch-Murnaghan fit (pymatgen), with the modulus and R^2."""
    from pymatgen.analysis.eos import EOS

    scan = _json(points)
    if not scan or len(scan.get("volumes", [])) < 4:
        return f"<p>{label} EOS: not run</p>"
    plt = _plt()
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
    return _png(fig)


def hull_plot(entries_json: str, structure, energy_per_atom, label: str) -> str:
    """The phase diagram of the candidate's chemical system from the hull's own entries, the candidate added."""
    from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
    from pymatgen.core import Composition

    entries = _json(entries_json)
    e = _num(energy_per_atom)
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
        return _png(fig)
    except Exception as exc:  # noqa: BLE001  (a diagram pymatgen cannot draw: say so)
        return f"<p>{label} phase diagram: could not be drawn ({type(exc).__name__})</p>"


def crystal_card(row: pd.Series, status: str, ctx: Context) -> str:
    s = _structure(row.get("relaxed_cif"))
    if s is not None:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        try:
            sg = SpacegroupAnalyzer(s, symprec=0.1)
            space_group = f"{sg.get_space_group_symbol()} ({sg.get_space_group_number()})"
        except Exception:  # noqa: BLE001
            space_group = "n/a"
        density, sites = f"{s.density:.2f} g/cm^3", str(len(s))
    else:
        space_group = density = sites = "not run"
    facts = [("final rank", fmt_cell(row.get("final_rank"))), ("space group", space_group), ("density", density),
             ("sites", sites),
             ("E_hull, CHGNet", fmt(row.get("e_hull"), "eV/atom", 3, _why(row, "oracle_error", "not run"))),
             ("E_hull, SevenNet", fmt(row.get("sevennet_e_hull"), "eV/atom", 3,
                                       _why(row, "sevennet_error", "not run"))),
             ("E_hull on DFT entries (CHGNet)", fmt(row.get("e_hull_dft"), "eV/atom", 3, "no DFT entries")),
             *tier_values(row, ctx), (ctx.label("predicted"), fmt(row.get("predicted_property"), ctx.unit, 1)),
             ("matches a known phase", fmt_cell(row.get("matches_known")) or "no")]
    cif = row.get("relaxed_cif")
    link = (f'<a download="{html.escape(str(row.get("formula")))}_rank{row.get("final_rank")}.cif" '
            f'href="data:chemical/x-cif;base64,{base64.b64encode(cif.encode()).decode()}">relaxed CIF</a>'
            if isinstance(cif, str) and cif else "")
    pics = [cell_picture(s) if s is not None else "<p>no relaxed cell</p>",
            hull_plot(row.get("hull_entries"), s, row.get("chgnet_energy_per_atom"), "CHGNet")]
    for who, prefix in (("CHGNet", ""), ("SevenNet", "sevennet_")):  # EOS scans where they ran (bulk modulus)
        if isinstance(row.get(f"{prefix}eos_points"), str) and row.get(f"{prefix}eos_points"):
            pics.append(eos_plot(row.get(f"{prefix}eos_points"), row.get(f"{prefix}eos_bulk_modulus_gpa"),
                                 row.get(f"{prefix}eos_r2"), who))
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('formula')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{''.join(pics)}</div>
 {_kv(facts)}
 <p>{link}</p>
</div>"""


#: per potential: the hulls its stability is judged on, first found first (the oracle's own order: DFT entries where
#: they cover the chemical system), and the column naming the known phase its relaxed cell matches
HULLS = {"CHGNet": ((("e_hull_dft", "the hull of the DFT entries"), ("e_hull", "the CHGNet hull of the known phases")),
                    "matches_known"),
         "SevenNet": ((("sevennet_e_hull_dft", "the hull of the DFT entries"),
                       ("sevennet_e_hull", "the SevenNet hull of the known phases")), "sevennet_matches_known")}


def hull_verdict(e, e_hull_max, hull: str = "the hull") -> str:
    """'stable' only on (or below) the hull, within HULL_TOLERANCE; 'metastable, +x eV/atom' up to e_hull_max."""
    if e is None:
        return "no energy above the hull"
    if e <= HULL_TOLERANCE:
        return f"stable ({e:+.3f} eV/atom: on or below {hull}, tolerance {HULL_TOLERANCE:g})"
    if e_hull_max is not None and e <= e_hull_max:
        return f"metastable, +{e:.3f} eV/atom above {hull} (within e_hull_max {e_hull_max:g})"
    return f"unstable, +{e:.3f} eV/atom above {hull}"


def potential_verdict(row: pd.Series, tier: Tier, ctx: Context) -> str:
    """One potential's verdict on a cell: hull, the measured property against the target, novelty."""
    hulls, known = HULLS.get(tier.who, ((), ""))
    e, hull = next(((v, name) for v, name in ((_num(row.get(c)), name) for c, name in hulls) if v is not None),
                   (None, ""))
    err = row.get(tier.error)
    if isinstance(err, str) and err:  # a failure after the relaxation (e.g. the EOS fit) keeps its hull verdict
        return f"{tier.who}: {hull_verdict(e, ctx.e_hull_max, hull) + ', ' if e is not None else ''}failed ({err[:60]})"
    v = _num(row.get(tier.column)) if tier.column else None
    measured = (f"{ctx.name} not measured by {tier.who}" if tier.column is None else
                f"{ctx.name}: no value" if v is None else
                f"{ctx.name} {fmt(v, ctx.unit, 1)}, {'in' if ctx.in_target(v) else 'outside'} the target")
    match = row.get(known)
    novel = (f"relaxed onto the known phase {match}" if isinstance(match, str) and match else
             "novel" if isinstance(match, str) else "novelty not checked")
    return f"{tier.who}: {hull_verdict(e, ctx.e_hull_max, hull)}, {measured}, {novel}"


def crystal_status(row: pd.Series, confirmed: bool, ctx: Context) -> str:
    """Each potential that checked the cell, its verdicts; 'confirmed' only as the oracle's verdict says."""
    ran = [t for t in reversed(ctx.tiers) if t.who in HULLS and isinstance(row.get(t.error), str)]
    lead = "confirmed" if confirmed else "not confirmed" if len(ran) > 1 else f"checked by {ctx.tiers[-1].who} only"
    return f"{lead}: " + "; ".join(potential_verdict(row, t, ctx) for t in ran)


CARDS = {"molecules": (molecule_card, molecule_status), "crystals": (crystal_card, crystal_status)}


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

#: columns of the ranked table per domain (those present), with their units; MEASURED: the columns that measure the
#: campaign property (:func:`measured_tiers`), with the estimate's interval
MEASURED = "{measured}"
TABLE_COLUMNS = {
    "molecules": [("final_rank", ""), ("smiles", ""), ("dft_confirmed", ""), (MEASURED, ""),
                  ("dft_target_probability", ""), ("xtb_target_probability", ""), ("predicted_property", "{unit}"),
                  ("qed", ""), ("sa_score", ""), ("nearest_known_similarity", ""), ("generator", ""),
                  ("dft_error", ""), ("oracle_error", "")],
    "crystals": [("final_rank", ""), ("formula", ""), ("committee_confirmed", ""), ("stable", ""),
                 ("e_hull", "eV/atom"), ("sevennet_stable", ""), ("sevennet_e_hull", "eV/atom"),
                 ("e_hull_dft", "eV/atom"), (MEASURED, ""), ("predicted_property", "{unit}"),
                 ("novel_after_relaxation", ""), ("matches_known", ""), ("generator", ""), ("oracle_error", ""),
                 ("sevennet_error", "")],
}
INTERVAL = " 10-90%"

TABLE_JS = """
<script>
function sortTable(th) {
  const table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
  const asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
  const key = td => { const t = td.textContent.trim(), v = parseFloat(t); return isNaN(v) ? t : v; };
  Array.from(body.rows).sort((a, b) => {
    const x = key(a.cells[i]), y = key(b.cells[i]);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return asc ? c : -c; }).forEach(r => body.appendChild(r));
}
function filterTable(input) {
  const q = input.value.toLowerCase();
  for (const r of document.getElementById('ranked').tBodies[0].rows)
    r.style.display = r.textContent.toLowerCase().includes(q) ? '' : 'none';
}
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(im => im.complete && im.naturalWidth > 0).length;
  document.body.dataset.images = ok + '/' + imgs.length;
});
</script>"""


def table_columns(domain: str, ctx: Context) -> list[tuple[str, str]]:
    """(column, unit) of the ranked table, the measured ones from the oracle's declarations."""
    measured = []
    for t in ctx.tiers:
        estimate = t.who.endswith("estimate")
        if t.column is not None:  # the header says which value is an estimate: 'xtb_calibrated (estimate, eV)'
            measured.append((t.column, ", ".join(x for x in ("estimate" if estimate else "", ctx.unit) if x)))
            if estimate and ctx.calibration:
                measured.append((t.column + INTERVAL, ctx.unit))
    return [c for col, u in TABLE_COLUMNS[domain]
            for c in (measured if col == MEASURED else [(col, u.replace("{unit}", ctx.unit))])]


def with_intervals(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The table with the calibrated estimate's 10-90% range as a column beside it."""
    out = table.copy()
    for t in ctx.tiers:
        if t.column in out and t.who.endswith("estimate") and ctx.calibration:
            lo, hi = np.quantile(np.asarray(ctx.calibration["residuals"], float), [0.1, 0.9])
            v = pd.to_numeric(out[t.column], errors="coerce")
            out[t.column + INTERVAL] = [f"{x + lo:.2f} to {x + hi:.2f}" if np.isfinite(x) else None for x in v]
    return out


def ranked_table(verified: pd.DataFrame, domain: str, ctx: Context, n: int = 200) -> str:
    """The candidates the first tier ran on (failures included), best first; the count says how many."""
    ran = first_tier_ran(verified)
    checked = with_intervals(verified[ran].head(n), ctx)
    cols = [(c, u) for c, u in table_columns(domain, ctx) if c in checked]
    head = "".join(f'<th onclick="sortTable(this)">{html.escape(c)}{f" ({u})" if u else ""}</th>' for c, u in cols)
    rows = ["<tr>" + "".join(f"<td>{html.escape(fmt_cell(r[c], c))}</td>" for c, _ in cols) + "</tr>"
            for _, r in checked.iterrows()]
    return (f'<input placeholder="filter rows (any text)" oninput="filterTable(this)"/>'
            f'<div class="scroll"><table id="ranked" class="ranked"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            f"<p>{int(ran.sum())} of {len(verified)} candidates checked by {ctx.tiers[-1].who.split()[0]} "
            f"({int(verified.get(ERROR_COLUMN, pd.Series(dtype=object)).eq('').sum())} without an error)"
            f"{f'; the first {len(checked)} shown' if len(checked) < ran.sum() else ''}; click a header to sort. "
            "The whole table: candidates_verified.csv / .parquet beside this report.</p>")


STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
.lead{font-size:1.25em}.lead b{font-size:1.4em}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #bbb;border-radius:6px;padding:8px;max-width:760px;background:#fafafa}
.card.confirmed{border:2px solid #2a7d2a;background:#f3fbf3}
.card h3{margin:2px 0;font-family:monospace}.status{margin:2px 0 6px;font-style:italic}
.pics{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}.pics img{max-height:260px}
figure{margin:0}figcaption{font-size:.8em;text-align:center}
table.kv{border-collapse:collapse;margin:4px 0;font-size:.9em}
table.kv th,table.kv td{border:1px solid #ddd;padding:2px 6px;text-align:left}
div.scroll{max-width:100%;overflow-x:auto;max-height:80vh;overflow-y:auto}
table.ranked{border-collapse:collapse;font-size:.85em}
table.ranked th{cursor:pointer;background:#eee;position:sticky;top:0}
table.ranked th,table.ranked td{border:1px solid #ddd;padding:2px 5px;max-width:18em;overflow-wrap:anywhere}
</style>"""


#: the filter stages in pipeline order (the metrics' JSON keys are sorted alphabetically)
PIPELINE_STAGES = ("sampled", "valid", "unique", "novel", "passes", "in_target")
STAGE_LABELS = {"passes": "passes the filters", "in_target": "in target (predicted)"}


def first_tier_ran(table: pd.DataFrame) -> pd.Series:
    """The rows the first tier ran on (its error column filled: '' or why it failed)."""
    return table[ERROR_COLUMN].notna() if ERROR_COLUMN in table else pd.Series(False, index=table.index)


def _count(rows, table: pd.DataFrame) -> int:
    """How many rows an oracle's selector (``confirmed``, ``confirm_ran``, ...) picks; 0 for an empty table."""
    return int(rows(table).fillna(False).sum()) if len(table) else 0


def confirmed_rows(orc):
    """The rows a page counts as confirmed: the verified table's ``confirmed`` column, written once where the oracle
    ran (``verify``), never recomputed where the page is rendered; the oracle's rule only for a table without it."""
    def rows(table: pd.DataFrame) -> pd.Series:
        return table["confirmed"].astype("boolean") if "confirmed" in table else orc.confirmed(table)
    return rows


def funnel_stages(funnel: dict, orc, verified: pd.DataFrame) -> dict[str, int]:
    """The funnel in pipeline order through to confirmation: the filter's stages, then the candidates the first
    tier checked, those the confirming tier checked (where it ran) and those confirmed (the oracle's verdicts)."""
    (first, _), (second, second_err) = TIERS.get(orc.name, ((orc.name, ERROR_COLUMN), ("confirming tier", "")))
    stages = {STAGE_LABELS.get(k, k): int(funnel[k]) for k in PIPELINE_STAGES if k in funnel}
    stages[f"checked by {first}"] = _count(first_tier_ran, verified)
    if second_err in verified and verified[second_err].notna().any():
        stages[f"checked by {second}"] = _count(orc.confirm_ran, verified)
    stages["confirmed"] = _count(confirmed_rows(orc), verified)
    return stages


def pick_cards(table: pd.DataFrame, orc) -> list[tuple[int, bool]]:
    """(row, confirmed) of the cards: confirmed hits, then rows the confirming tier checked without confirming
    them, then (when those are few) the first tier's best."""
    confirmed = confirmed_rows(orc)(table).fillna(False).to_numpy(bool)
    checked = orc.confirm_ran(table).fillna(False).to_numpy(bool)
    picks = [(i, True) for i in np.flatnonzero(confirmed)[:MAX_CONFIRMED_CARDS]]
    picks += [(i, False) for i in np.flatnonzero(checked & ~confirmed)[:MAX_OTHER_CARDS]]
    if len(picks) < MAX_OTHER_CARDS:  # the confirming tier checked (almost) nothing: the first tier's best
        first = orc.first_tier_checked(table).fillna(False).to_numpy(bool) & ~confirmed & ~checked
        picks += [(i, False) for i in np.flatnonzero(first)[:MAX_OTHER_CARDS - len(picks)]]
    return picks


def _read_json(path: str) -> dict:
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else {}


def provenance_footer(prov: dict) -> str:
    """The page footer: the commit, package and tool versions, models and device the run recorded."""
    if not prov:
        return "<footer><p>No provenance.json beside this campaign's results.</p></footer>"
    tools = ", ".join(f"{k} {v}" for k, v in prov.get("tools", {}).items())
    models = ", ".join(f"{Path(k).name} (sha256 {str(v)[:12]})" for k, v in prov.get("models", {}).items())
    return (f"<footer><h2>Provenance</h2><p>invdesign {html.escape(str(prov.get('package_version')))}, commit "
            f"{html.escape(str(prov.get('git_commit') or 'not a git checkout'))}; device "
            f"{html.escape(str(prov.get('device')))}.</p><p>Tools: {html.escape(tools)}.</p>"
            f"<p>Models: {html.escape(models or 'none')}.</p><p>The resolved configuration: provenance.json.</p>"
            "</footer>")


def landing_page(*, campaign: str, domain: str, oracle: dict, target: dict, property_column: str,
                 property_kind: str | None, unit: str, verified: str, oracle_metrics: str, funnel_metrics: str,
                 hist: str, funnel_png: str, out_html: str, prepared: str = "", provenance: str = "") -> None:
    from ..artifacts import read_table
    from .verify import make_oracle

    table = read_table(verified)
    om = _read_json(oracle_metrics)
    orc = make_oracle(domain, oracle, target, property_column, property_kind)
    ctx = make_context(orc, unit, _read_json(prepared))
    card, status = CARDS[domain]
    picks = pick_cards(table, orc) if len(table) else []
    cards = [card(table.iloc[i], status(table.iloc[i], ok, ctx), ctx) for i, ok in picks]
    n_conf = int(om.get("n_confirmed", _count(confirmed_rows(orc), table)))
    fm = _read_json(funnel_metrics)
    stages = funnel_stages(fm.get("funnel", {}), orc, table)
    empty = f'<p class="empty"><b>Empty run</b>: {html.escape(fm["empty_run"])}.</p>' if fm.get("empty_run") else ""
    figures = "".join(_img(Path(p).read_bytes(), "image/png", Path(p).stem) for p in (funnel_png, hist)
                      if Path(p).exists())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(campaign)}: confirmed hits</title>
{STYLE}</head><body>
<h1>Campaign {html.escape(campaign)} ({html.escape(domain)}): {html.escape(ctx.name)}
 {html.escape(ctx.target_text)}</h1>
<p class="lead"><b>{n_conf}</b> confirmed hit{'s' if n_conf != 1 else ''} of
 {om.get('n_checked_by_confirming_tier', _count(orc.confirm_ran, table))} checked by the highest tier that ran:
 {html.escape(str(om.get('confirmed_by', 'no oracle')))}.</p>
<p>Funnel, in pipeline order: {html.escape(', '.join(f'{k}: {v}' for k, v in stages.items()))}.</p>{empty}
<h2>Confirmed hits{', then the best checked candidates that were not confirmed' if any(
        not ok for _, ok in picks) else ''}</h2>
<div class="cards">{''.join(cards) or '<p>No candidate reached the confirming tier.</p>'}</div>
<h2>Ranked candidates (the oracle's order)</h2>
{ranked_table(table, domain, ctx)}
<h2>Funnel and property distributions</h2>
<div class="pics">{figures}</div>
{provenance_footer(_read_json(provenance))}
{TABLE_JS}
</body></html>"""
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(page)
