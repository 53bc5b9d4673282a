"""Rule ``report_landing``: the page of a campaign that a chemist opens first (``report/index.html``).

One self-contained HTML file (pictures embedded), in this order:

1. the number of candidates confirmed by the highest oracle tier that ran (the metrics' ``confirmed_by``), then the
   predicted counts;
2. a card per confirmed hit, then cards of the best candidates that tier checked without confirming them (with
   the reason), so the page is never empty of pictures:
   * molecules: an RDKit drawing; DFT, xTB and predicted gap side by side; QED and SA score; the nearest known
     molecule drawn with its similarity; the HOMO and LUMO densities on each heavy atom (|psi|^2 projected onto
     atoms: the sign-free picture the featurization is built on) drawn as RDKit similarity maps;
   * crystals: the relaxed cell (ASE's plotting), space group (spglib through pymatgen), density, E_hull by each
     potential, the EOS scan with its Birch-Murnaghan fit and R^2 (pymatgen), the phase diagram of the
     candidate's chemical system with the candidate placed on it (pymatgen's plotter), and its CIF;
3. the ranked table, sortable and filterable, with units, "not run" for a check that did not run and
   "failed: reason" for one that failed;
4. the filter funnel and the property distributions (the figures of rule ``report_figures``).

The page checks itself: once loaded, ``<body data-images>`` holds "loaded/total" images (bench/report_browser.py
reads it in headless Chromium).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path

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
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
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


def molecule_card(row: pd.Series, status: str, unit: str) -> str:
    gap = [("DFT", fmt(row.get("dft_gap_ev"), unit, missing=_why(row, "dft_error", "not run"))),
           ("xTB, calibrated", fmt(row.get("xtb_calibrated"), unit, missing=_why(row, "oracle_error", "not run"))),
           ("xTB, raw", fmt(row.get("xtb_gap_ev"), unit)),
           ("predicted", fmt(row.get("predicted_property"), unit))]
    nearest = row.get("nearest_known")
    facts = [("final rank", fmt_cell(row.get("final_rank"))), ("generator", fmt_cell(row.get("generator"))),
             ("QED", fmt(row.get("qed"), digits=2, missing="n/a")),
             ("SA score", fmt(row.get("sa_score"), digits=2, missing="n/a")),
             ("chance DFT value is in the target", fmt(row.get("dft_target_probability"), digits=2))]
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('smiles')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{molecule_svg(row.get('smiles'))}
  {orbital_map(row.get('smiles'), row.get('xtb_homo_density'), 'HOMO density (xTB)')}
  {orbital_map(row.get('smiles'), row.get('xtb_lumo_density'), 'LUMO density (xTB)')}</div>
 <table class="kv"><tr>{''.join(f'<th>{k} gap</th>' for k, _ in gap)}</tr>
  <tr>{''.join(f'<td>{html.escape(v)}</td>' for _, v in gap)}</tr></table>
 <table class="kv">{''.join(f'<tr><th>{k}</th><td>{html.escape(v)}</td></tr>' for k, v in facts)}</table>
 <div class="nearest"><p>nearest known molecule (similarity {fmt(row.get('nearest_known_similarity'),
                                                                   missing='n/a')}):
  {html.escape(str(nearest)) if isinstance(nearest, str) else 'none'}</p>
  {molecule_svg(nearest, (200, 150)) if isinstance(nearest, str) else ''}</div>
</div>"""


def molecule_status(row: pd.Series, confirmed: bool, target_text: str) -> str:
    if confirmed:
        return f"confirmed: DFT gap {target_text}"
    err = row.get("dft_error")
    if isinstance(err, str) and err:
        return f"not confirmed: DFT failed ({err[:80]})"
    v = _num(row.get("dft_gap_ev"))
    if v is None:
        xtb = _num(row.get("xtb_calibrated"))
        return ("checked by xTB only: " + (f"calibrated gap {xtb:.2f} eV, chance {target_text} "
                                           f"{fmt(row.get('xtb_target_probability'))}" if xtb is not None else
                                           str(row.get("xtb_calibration_note") or row.get("oracle_error") or
                                               "no calibrated value")))
    return (f"not confirmed: DFT gap {v:.2f} eV, chance {target_text} "
            f"{fmt(row.get('dft_target_probability'))}")


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


def crystal_card(row: pd.Series, status: str, unit: str) -> str:
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
             ("K, CHGNet EOS", fmt(row.get("eos_bulk_modulus_gpa"), "GPa", 0)),
             ("K, SevenNet EOS", fmt(row.get("sevennet_eos_bulk_modulus_gpa"), "GPa", 0)),
             ("K, predicted", fmt(row.get("predicted_property"), unit, 0)),
             ("matches a known phase", fmt_cell(row.get("matches_known")) or "no")]
    cif = row.get("relaxed_cif")
    link = (f'<a download="{html.escape(str(row.get("formula")))}_rank{row.get("final_rank")}.cif" '
            f'href="data:chemical/x-cif;base64,{base64.b64encode(cif.encode()).decode()}">relaxed CIF</a>'
            if isinstance(cif, str) and cif else "")
    pics = [cell_picture(s) if s is not None else "<p>no relaxed cell</p>",
            eos_plot(row.get("eos_points"), row.get("eos_bulk_modulus_gpa"), row.get("eos_r2"), "CHGNet"),
            hull_plot(row.get("hull_entries"), s, row.get("chgnet_energy_per_atom"), "CHGNet")]
    if isinstance(row.get("sevennet_eos_points"), str) and row.get("sevennet_eos_points"):
        pics.append(eos_plot(row.get("sevennet_eos_points"), row.get("sevennet_eos_bulk_modulus_gpa"),
                             row.get("sevennet_eos_r2"), "SevenNet"))
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('formula')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{''.join(pics)}</div>
 <table class="kv">{''.join(f'<tr><th>{k}</th><td>{html.escape(v)}</td></tr>' for k, v in facts)}</table>
 <p>{link}</p>
</div>"""


def crystal_status(row: pd.Series, confirmed: bool, target_text: str) -> str:
    if confirmed:
        return f"confirmed: stable, K {target_text} and novel, by both potentials"
    why = []
    for who, err, stable, k in (("CHGNet", "oracle_error", "stable", "eos_bulk_modulus_gpa"),
                                ("SevenNet", "sevennet_error", "sevennet_stable", "sevennet_eos_bulk_modulus_gpa")):
        e = row.get(err)
        if isinstance(e, str) and e:
            why.append(f"{who} failed ({e[:60]})")
        elif row.get(stable) is False or row.get(stable) is np.False_:
            why.append(f"{who}: not stable")
        elif _num(row.get(k)) is not None and who == "CHGNet" and row.get("eos_in_target") is False:
            why.append(f"{who}: K {fmt(row.get(k), 'GPa', 0)} outside the target")
    if row.get("novel_after_relaxation") is False or row.get("novel_after_relaxation") is np.False_:
        why.append(f"relaxed onto the known phase {row.get('matches_known')}")
    if not isinstance(row.get("sevennet_error"), str):
        return "checked by CHGNet only: " + ("; ".join(why) if why else "stable, in the target and novel")
    return "not confirmed: " + ("; ".join(why) if why else "see the table")


CARDS = {"molecules": (molecule_card, molecule_status), "crystals": (crystal_card, crystal_status)}


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

#: columns of the ranked table per domain (those present), with their units
TABLE_COLUMNS = {
    "molecules": [("final_rank", ""), ("smiles", ""), ("dft_confirmed", ""), ("dft_gap_ev", "eV"),
                  ("dft_target_probability", ""), ("xtb_calibrated", "eV"), ("xtb_gap_ev", "eV"),
                  ("xtb_target_probability", ""), ("predicted_property", "{unit}"), ("qed", ""), ("sa_score", ""),
                  ("nearest_known_similarity", ""), ("generator", ""), ("dft_error", ""), ("oracle_error", "")],
    "crystals": [("final_rank", ""), ("formula", ""), ("committee_confirmed", ""), ("stable", ""),
                 ("e_hull", "eV/atom"), ("sevennet_stable", ""), ("sevennet_e_hull", "eV/atom"),
                 ("e_hull_dft", "eV/atom"), ("eos_bulk_modulus_gpa", "GPa"), ("eos_r2", ""),
                 ("sevennet_eos_bulk_modulus_gpa", "GPa"), ("predicted_property", "{unit}"),
                 ("novel_after_relaxation", ""), ("matches_known", ""), ("generator", ""), ("oracle_error", ""),
                 ("sevennet_error", "")],
}

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


def ranked_table(verified: pd.DataFrame, domain: str, unit: str, n: int = 200) -> str:
    cols = [(c, u.replace("{unit}", unit)) for c, u in TABLE_COLUMNS[domain] if c in verified]
    head = "".join(f'<th onclick="sortTable(this)">{html.escape(c)}{f" ({u})" if u else ""}</th>' for c, u in cols)
    rows = []
    for _, r in verified.head(n).iterrows():
        rows.append("<tr>" + "".join(f"<td>{html.escape(fmt_cell(r[c], c))}</td>" for c, _ in cols) + "</tr>")
    return (f'<input placeholder="filter rows (any text)" oninput="filterTable(this)"/>'
            f'<table id="ranked" class="ranked"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"<p>{min(n, len(verified))} of {len(verified)} checked candidates; click a header to sort. The whole "
            "table: candidates_verified.csv / .parquet beside this report.</p>")


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
table.ranked{border-collapse:collapse;font-size:.85em}
table.ranked th{cursor:pointer;background:#eee;position:sticky;top:0}
table.ranked th,table.ranked td{border:1px solid #ddd;padding:2px 5px}
</style>"""


def landing_page(*, campaign: str, domain: str, oracle: dict, target: dict, property_column: str,
                 property_kind: str | None, unit: str, verified: str, oracle_metrics: str, funnel_metrics: str,
                 hist: str, funnel_png: str, out_html: str) -> None:
    from ..artifacts import read_table
    from ..targets import describe_target
    from .verify import make_oracle

    table = read_table(verified)
    om = json.loads(Path(oracle_metrics).read_text())
    fm = json.loads(Path(funnel_metrics).read_text())
    orc = make_oracle(domain, oracle, target, property_column, property_kind)
    confirmed = orc.confirmed(table).fillna(False).to_numpy(bool) if len(table) else np.zeros(0, bool)
    checked = orc.confirm_ran(table).fillna(False).to_numpy(bool) if len(table) else np.zeros(0, bool)
    target_text = describe_target(target, unit)
    card, status = CARDS[domain]
    picks = [(i, True) for i in np.flatnonzero(confirmed)[:MAX_CONFIRMED_CARDS]]
    picks += [(i, False) for i in np.flatnonzero(checked & ~confirmed)[:MAX_OTHER_CARDS]]
    if len(picks) < MAX_OTHER_CARDS:  # the confirming tier checked (almost) nothing: the first tier's best
        first = orc.first_tier_checked(table).fillna(False).to_numpy(bool) & ~confirmed & ~checked
        picks += [(i, False) for i in np.flatnonzero(first)[:MAX_OTHER_CARDS - len(picks)]]
    cards = [card(table.iloc[i], status(table.iloc[i], ok, target_text), unit) for i, ok in picks]
    n_conf = int(om.get("n_confirmed", confirmed.sum()))
    funnel = fm.get("funnel", {})
    order = ["sampled", "valid", "unique", "novel", "passes", "in_target"]
    keys = [k for k in order if k in funnel] + [k for k in funnel if k not in order]
    predicted = ", ".join(f"{k.replace('_', ' ')}: {funnel[k]}" for k in keys)
    figures = "".join(_img(Path(p).read_bytes(), "image/png", Path(p).stem) for p in (funnel_png, hist)
                      if Path(p).exists())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(campaign)}: confirmed hits</title>
{STYLE}</head><body>
<h1>Campaign {html.escape(campaign)} ({html.escape(domain)}): {html.escape(property_column)}
 {html.escape(target_text)}</h1>
<p class="lead"><b>{n_conf}</b> confirmed hit{'s' if n_conf != 1 else ''} of
 {om.get('n_checked_by_confirming_tier', int(checked.sum()))} checked by the highest tier that ran:
 {html.escape(str(om.get('confirmed_by', 'no oracle')))}.</p>
<p>Predicted (the independent predictor, before any physics): {html.escape(predicted)}.</p>
<h2>Confirmed hits{', then the best checked candidates that were not confirmed' if len(picks) > len(
        [p for p in picks if p[1]]) else ''}</h2>
<div class="cards">{''.join(cards) or '<p>No candidate reached the confirming tier.</p>'}</div>
<h2>Ranked candidates (the oracle's order)</h2>
{ranked_table(table, domain, unit)}
<h2>Funnel and property distributions</h2>
<div class="pics">{figures}</div>
{TABLE_JS}
</body></html>"""
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(page)
