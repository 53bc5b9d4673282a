"""Rule ``report_landing``: the page of a campaign that a chemist opens first (``report/index.html``).

One self-contained HTML file (pictures embedded), in this order:

1. the number of candidates confirmed by the highest oracle tier that ran (the metrics' ``confirmed_by``), then the
   funnel in pipeline order through to confirmation (:func:`funnel_stages`);
2. a card per confirmed hit, then cards of the best candidates that tier checked without confirming them (with
   the reason), so the page is never empty of pictures. Every label names the campaign's registered property
   (:mod:`invdesign.properties`: description and unit) and the oracle's declared column that measured it
   (:func:`measured_tiers`, from its tiers' declarations), never a fixed quantity; verdicts read table cells as numbers, strings or
   :func:`invdesign.io.is_missing`, never by identity tests on numpy or pandas values:
   * molecules: an RDKit drawing; each tier's value of the property (the calibrated xTB value as an estimate with
     the 10-90% range of the calibration's held-out residuals, and where the calibration is flat, the raw range it
     flattens) and the predicted one; QED and SA score; the nearest known molecule drawn with its similarity; the
     HOMO and LUMO densities on each heavy atom (|psi|^2 projected onto atoms) drawn as RDKit similarity maps;
   * crystals: the relaxed cell (ASE's plotting), space group (spglib through pymatgen at
     :data:`invdesign.chem.symmetry.SYMPREC`, as checked.zip's CIFs), density, E_hull by each
     potential, each potential's verdict ("stable" only on the hull, within :data:`HULL_TOLERANCE`; "metastable,
     +x eV/atom" up to ``e_hull_max``; "novel" only where its tier's novelty columns say a new material, else an
     alloy ordering, a match under substitutional disorder or a known phase: :func:`novelty_verdict`), the EOS
     scans with their Birch-Murnaghan fit where they ran, the phase
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
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, is_missing
from ..oracles import ERROR_COLUMN, MEASURED
from .figures import card_figures, cell_picture, fmt, img, molecule_svg, number, structure_from_cif

#: cards of confirmed hits shown, and of checked but unconfirmed candidates after them
MAX_CONFIRMED_CARDS = 12
MAX_OTHER_CARDS = 6


# ---------------------------------------------------------------------------------------------
# small formatting helpers
# ---------------------------------------------------------------------------------------------

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


def _why(row, column: str, default: str) -> str:
    err = row.get(column)
    return f"failed: {err[:60]}" if isinstance(err, str) and err else default


def _kv(pairs) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv">{rows}</table>'


# ---------------------------------------------------------------------------------------------
# what the campaign measures: labels and columns from the property registry and the oracle's declarations
# ---------------------------------------------------------------------------------------------

#: energy above the hull (eV/atom) still called "on the hull" (stable); above it and within e_hull_max: metastable
HULL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Measured:
    """One column that measures the campaign property, as the page shows it."""
    who: str               # "DFT", "xTB estimate", "xTB raw", "CHGNet", ...
    column: str | None     # the column of the verified table that measures the campaign property (None: none)
    tier: object           # the oracle's :class:`invdesign.oracles.Tier` it belongs to
    raw: str | None = None  # an estimate's raw quantity (the column the calibration maps)

    @property
    def error(self) -> str:
        """The column saying why this tier failed on a row."""
        return self.tier.error


@dataclass(frozen=True)
class Context:
    """What a card and the table say about the campaign property, read from the registry and the oracle."""
    name: str              # "HOMO energy", "dipole moment (norm)", ... (the property column for a user property)
    unit: str
    target: dict
    target_text: str
    tiers: tuple[Measured, ...]  # highest tier first
    oracle_tiers: tuple = ()     # the oracle's declared tiers, first tier first
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


def measured_tiers(orc) -> tuple[Measured, ...]:
    """The oracle's columns that measure the campaign property, highest tier first, as its tiers declare them
    (:attr:`invdesign.oracles.Oracle.tiers`); an estimate (the calibrated xTB value) and then the raw quantity it
    maps."""
    out = []
    for tier in reversed(orc.tiers):
        m = orc.tier_measure(tier)
        if m is not None and m.raw:
            out += [Measured(f"{tier.name} estimate", m.column, tier, m.raw), Measured(f"{tier.name} raw", m.raw, tier)]
        else:
            out.append(Measured(tier.name, m.column if m else None, tier))
    return tuple(out)


def campaign_columns(columns, orc) -> list[str]:
    """``columns`` (the domain's) with every declared measure column of any oracle removed, and after ``unit``
    those that measure the campaign property (:func:`measured_tiers`, highest tier first), then the oracle's
    :attr:`~invdesign.oracles.Oracle.report_columns`."""
    from ..oracles import measure_columns

    mine = [t.column for t in measured_tiers(orc) if t.column]
    every = measure_columns()
    kept = [c for c in columns if c not in every and c not in mine and c not in orc.report_columns]
    i = kept.index("unit") + 1 if "unit" in kept else len(kept)
    return kept[:i] + mine + list(orc.report_columns) + kept[i:]


def make_context(orc, unit: str, prepared: dict) -> Context:
    from ..targets import describe_target

    return Context(property_name(orc.property, orc.property_column), unit, orc.target,
                   describe_target(orc.target, unit), measured_tiers(orc), tuple(orc.tiers),
                   getattr(orc.settings, "e_hull_max", None),
                   prepared if "residuals" in prepared and "knots_x" in prepared else {})


def estimate_text(value, calib: dict, unit: str, raw: str | None = None) -> str | None:
    """A calibrated value as an estimate with the 10-90% range of the calibration's held-out residuals, and where
    the calibration is flat there, the range of the ``raw`` quantity it flattens; None where there is no
    estimate."""
    v = number(value)
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
        text += (f"; flat calibration: every raw {raw or 'value'} from {flat.min():.2f} to "
                 f"{flat.max():.2f} gives this estimate")
    return text


def tier_values(row: pd.Series, ctx: Context) -> list[tuple[str, str]]:
    """(label, text) of each tier's measure of the campaign property on this row; an estimate with its interval."""
    out = []
    for t in ctx.tiers:
        if t.column is None:
            text = f"not measured by {t.who.split()[0]}"
        elif t.raw:
            text = (estimate_text(row.get(t.column), ctx.calibration, ctx.unit, t.raw)
                    or _why(row, t.error, "no estimate"))
        else:
            text = fmt(row.get(t.column), ctx.unit, missing=_why(row, t.error, "not run"))
        out.append((ctx.label(t.who, t.column or ""), text))
    return out


def card_fields(row: pd.Series, ctx: Context) -> list[tuple[str, str]]:
    """(label, text) of the fields the oracle's tiers declare for a card, first tier first."""
    out = []
    for tier in ctx.oracle_tiers:
        for f in tier.card:
            missing = _why(row, tier.error, f.missing) if f.explain else f.missing
            value = row.get(f.column)
            if f.optional and is_missing(value):
                continue
            if f.text:
                text = missing if is_missing(value) else (str(value) or f.empty)
            else:
                text = fmt(value, f.unit.replace("{unit}", ctx.unit), f.digits, missing)
            out.append((f.label, text))
    return out


# ---------------------------------------------------------------------------------------------
# molecule cards
# ---------------------------------------------------------------------------------------------

def molecule_card(row: pd.Series, status: str, ctx: Context) -> str:
    values = [*tier_values(row, ctx), (ctx.label("predicted"), fmt(row.get("predicted_property"), ctx.unit))]
    nearest = row.get("nearest_known")
    facts = [("final rank", fmt_cell(row.get("final_rank"))), ("generator", fmt_cell(row.get("generator"))),
             ("QED", fmt(row.get("qed"), digits=2, missing="n/a")),
             ("SA score", fmt(row.get("sa_score"), digits=2, missing="n/a"))]
    pics = "\n  ".join([molecule_svg(row.get("smiles")), *card_figures(row, ctx.oracle_tiers)])
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('smiles')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{pics}</div>
 {_kv(values + facts + card_fields(row, ctx))}
 <div class="nearest"><p>nearest known molecule (similarity {fmt(row.get('nearest_known_similarity'),
                                                                   missing='n/a')}):
  {html.escape(str(nearest)) if isinstance(nearest, str) else 'none'}</p>
  {molecule_svg(nearest, (200, 150)) if isinstance(nearest, str) else ''}</div>
</div>"""


def _chance(row: pd.Series, t: Measured, ctx: Context) -> str:
    """', chance in the target 0.83' where the tier declares its chance of a value in the target."""
    return f", chance {ctx.target_text} {fmt(row.get(t.tier.probability))}" if t.tier.probability else ""


def molecule_status(row: pd.Series, confirmed: bool, ctx: Context) -> str:
    """The verdict of the highest tier that measured the row: the confirming tier's value and chance, else the first
    tier's estimate with its interval (or why there is none)."""
    top, first = ctx.tiers[0], ctx.tiers[min(1, len(ctx.tiers) - 1)]
    err, v = row.get(top.error), number(row.get(top.column)) if top.column else None
    verdict = "confirmed" if confirmed else "not confirmed"
    if isinstance(err, str) and err:
        return f"not confirmed: {top.who} failed ({err[:80]})"
    if v is not None:
        return f"{verdict}: {top.who} {ctx.name} {fmt(v, ctx.unit)}{_chance(row, top, ctx)}"
    est = estimate_text(row.get(first.column), ctx.calibration, ctx.unit, first.raw) if first.column else None
    lead = f"{'confirmed' if confirmed else 'checked'} by {first.who.split()[0]} only"
    if est is None:
        note = row.get(first.tier.note) if first.tier.note else None
        why = note if isinstance(note, str) and note else _why(row, first.error, f"no {ctx.name} estimate")
        return f"{lead}: {why}"
    return f"{lead}: {ctx.name} {est}{_chance(row, first, ctx)}"


# ---------------------------------------------------------------------------------------------
# crystal cards
# ---------------------------------------------------------------------------------------------

def crystal_card(row: pd.Series, status: str, ctx: Context) -> str:
    s = structure_from_cif(row.get("relaxed_cif"))
    if s is not None:
        from ..chem.symmetry import space_group as find_space_group

        space_group = str(find_space_group(s) or "none found")  # at the tolerance of the exported CIFs
        density, sites = f"{s.density:.2f} g/cm^3", str(len(s))
    else:
        space_group = density = sites = "not run"
    facts = [("final rank", fmt_cell(row.get("final_rank"))), ("space group", space_group), ("density", density),
             ("sites", sites), *tier_values(row, ctx),
             (ctx.label("predicted"), fmt(row.get("predicted_property"), ctx.unit, 1)), *card_fields(row, ctx)]
    cif = row.get("relaxed_cif")
    link = (f'<a download="{html.escape(str(row.get("formula")))}_rank{row.get("final_rank")}.cif" '
            f'href="data:chemical/x-cif;base64,{base64.b64encode(cif.encode()).decode()}">relaxed CIF</a>'
            if isinstance(cif, str) and cif else "")
    pics = [cell_picture(s) if s is not None else "<p>no relaxed cell</p>", *card_figures(row, ctx.oracle_tiers)]
    return f"""
<div class="card {status.split(':')[0].replace(' ', '-')}">
 <h3>{html.escape(str(row.get('formula')))}</h3><p class="status">{html.escape(status)}</p>
 <div class="pics">{''.join(pics)}</div>
 {_kv(facts)}
 <p>{link}</p>
</div>"""


def hull_verdict(e, e_hull_max, hull: str = "the hull") -> str:
    """'stable' only on (or below) the hull, within HULL_TOLERANCE; 'metastable, +x eV/atom' up to e_hull_max."""
    if e is None:
        return "no energy above the hull"
    if e <= HULL_TOLERANCE:
        return f"stable ({e:+.3f} eV/atom: on or below {hull}, tolerance {HULL_TOLERANCE:g})"
    if e_hull_max is not None and e <= e_hull_max:
        return f"metastable, +{e:.3f} eV/atom above {hull} (within e_hull_max {e_hull_max:g})"
    return f"unstable, +{e:.3f} eV/atom above {hull}"


def potential_verdict(row: pd.Series, t: Measured, ctx: Context) -> str:
    """One potential's verdict on a cell: hull (the hulls its tier declares, first found first), the measured
    property against the target, novelty."""
    e, hull = next(((v, name) for v, name in ((number(row.get(c)), name) for c, name in t.tier.hulls)
                    if v is not None), (None, ""))
    err = row.get(t.error)
    if isinstance(err, str) and err:  # a failure after the relaxation (e.g. the EOS fit) keeps its hull verdict
        return f"{t.who}: {hull_verdict(e, ctx.e_hull_max, hull) + ', ' if e is not None else ''}failed ({err[:60]})"
    v = number(row.get(t.column)) if t.column else None
    measured = (f"{ctx.name} not measured by {t.who}" if t.column is None else
                f"{ctx.name}: no value" if v is None else
                f"{ctx.name} {fmt(v, ctx.unit, 1)}, {'in' if ctx.in_target(v) else 'outside'} the target")
    return f"{t.who}: {hull_verdict(e, ctx.e_hull_max, hull)}, {measured}, {novelty_verdict(row, t.tier)}"


def _flag(value) -> bool | None:
    """A verdict cell (numpy or pandas boolean, NA) as True, False or None (not known)."""
    return None if is_missing(value) else bool(value)


def parent_words(parent) -> str:
    """'the fcc lattice', 'the lattice of the known Ni3Al' (``parent_lattice``'s ``known:<formula>``)."""
    if not isinstance(parent, str) or not parent:
        return "a parent lattice"
    if parent.startswith("known:"):
        return f"the lattice of the known {parent.removeprefix('known:')}"
    return f"the {parent} lattice"


def novelty_verdict(row: pd.Series, tier) -> str:
    """What the tier's novelty columns say of its relaxed cell: relaxed onto a known phase, an alloy ordering (a new
    material only where the campaign counts orderings), known under substitutional disorder, or "novel" (a new
    material); a tier without disorder-aware verdicts (or a row without them) says only that no known phase
    matched."""
    match = row.get(tier.known_match) if tier.known_match else None
    if not isinstance(match, str):
        return "novelty not checked"
    if match:
        return f"relaxed onto the known phase {match}"
    n = tier.novelty
    if n is None:
        return "matches no known phase"
    ordering, aware = _flag(row.get(n.ordering)), _flag(row.get(n.disorder_aware))
    if ordering:
        counted = ("counted as a new material (oracle.alloy_orderings: count)" if _flag(row.get(n.new_material))
                   else "not a new material")
        return (f"an ordering of its elements on {parent_words(row.get(n.parent_lattice))} "
                f"(alloy ordering, {counted})")
    if aware is False:
        known = row.get(n.disorder_match)
        return "known under substitutional disorder" + (f" (matches {known})" if isinstance(known, str) and known
                                                        else "")
    if aware and ordering is False:
        return "novel"
    return "matches no known phase (no disorder-aware novelty check)"


def crystal_status(row: pd.Series, confirmed: bool, ctx: Context) -> str:
    """Each potential that checked the cell, its verdicts; 'confirmed' only as the oracle's verdict says."""
    ran = [t for t in reversed(ctx.tiers) if t.tier.hulls and isinstance(row.get(t.error), str)]
    lead = "confirmed" if confirmed else "not confirmed" if len(ran) > 1 else f"checked by {ctx.tiers[-1].who} only"
    return f"{lead}: " + "; ".join(potential_verdict(row, t, ctx) for t in ran)


CARDS = {"molecules": (molecule_card, molecule_status), "crystals": (crystal_card, crystal_status)}


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

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


def table_columns(orc, identifier: str, ctx: Context) -> list[tuple[str, str]]:
    """(column, unit) of the ranked table: the rank, the candidate's ``identifier``, then the oracle's declared
    :meth:`~invdesign.oracles.Oracle.table_columns`, the measured ones from its tiers' declarations."""
    measured = []
    for t in ctx.tiers:
        if t.column is not None:  # the header says which value is an estimate: 'xtb_calibrated (estimate, eV)'
            measured.append((t.column, ", ".join(x for x in ("estimate" if t.raw else "", ctx.unit) if x)))
            if t.raw and ctx.calibration:
                measured.append((t.column + INTERVAL, ctx.unit))
    cols = [("final_rank", ""), (identifier, ""), *orc.table_columns()]
    return [c for col, u in cols for c in (measured if col == MEASURED else [(col, u.replace("{unit}", ctx.unit))])]


def with_intervals(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The table with the calibrated estimate's 10-90% range as a column beside it."""
    out = table.copy()
    for t in ctx.tiers:
        if t.column in out and t.raw and ctx.calibration:
            lo, hi = np.quantile(np.asarray(ctx.calibration["residuals"], float), [0.1, 0.9])
            v = pd.to_numeric(out[t.column], errors="coerce")
            out[t.column + INTERVAL] = [f"{x + lo:.2f} to {x + hi:.2f}" if np.isfinite(x) else None for x in v]
    return out


def ranked_table(verified: pd.DataFrame, columns: list[tuple[str, str]], ctx: Context, n: int = 200) -> str:
    """The candidates the first tier ran on (failures included), best first; the count says how many."""
    ran = first_tier_ran(verified)
    checked = with_intervals(verified[ran].head(n), ctx)
    cols = [(c, u) for c, u in columns if c in checked]
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
    first, *rest = orc.tiers
    stages = {STAGE_LABELS.get(k, k): int(funnel[k]) for k in PIPELINE_STAGES if k in funnel}
    stages[f"checked by {first.name}"] = _count(first_tier_ran, verified)
    if rest and rest[0].error in verified and verified[rest[0].error].notna().any():
        stages[f"checked by {rest[0].name}"] = _count(orc.confirm_ran, verified)
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


def methods_table(funnel: dict, verdicts: dict) -> str:
    """Each proposal method (trained generator or classical arm) side by side: what it proposed, what passed, what
    the oracle checked, and its confirmed count and rate, so that a campaign shows which method earns its place."""
    rows = []
    for gen in sorted(set(funnel) | set(verdicts)):
        f, v = funnel.get(gen, {}), verdicts.get(gen, {})
        rate = v.get("confirmed_per_check")
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            gen, f.get("n_samples", "-"), f.get("n_candidates", "-"), f.get("n_candidates_in_target", "-"),
            v.get("n_checked_by_first_tier", 0), v.get("n_checked_by_confirming_tier", 0), v.get("n_confirmed", 0),
            "-" if rate is None else f"{rate:.0%}")) + "</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "method", "proposed", "passing", "passing, predicted in target", "checked (first tier)",
        "checked by the highest tier", "confirmed", "confirmed per check"))
    return (f"<h2>Proposal methods</h2><p>The same filters, predictor, ranking and oracle for every method; the "
            f"counts of one run (compare methods over several runs).</p><table class=\"methods\"><tr>{head}</tr>"
            f"{''.join(rows)}</table>")


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
    from ..domains import get_domain
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
    figures = "".join(img(Path(p).read_bytes(), "image/png", Path(p).stem) for p in (funnel_png, hist)
                      if Path(p).exists())
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(campaign)}: confirmed hits</title>
{STYLE}</head><body>
<h1>Campaign {html.escape(campaign)} ({html.escape(domain)}): {html.escape(ctx.name)}
 {html.escape(ctx.target_text)}</h1>
<p class="lead"><b>{n_conf}</b> confirmed hit{'s' if n_conf != 1 else ''} of
 {om.get('n_checked_by_confirming_tier', _count(orc.confirm_ran, table))} checked by the highest tier that ran:
 {html.escape(str(om.get('confirmed_by', 'no oracle')))}.</p>
<p>Funnel, in pipeline order: {html.escape(', '.join(f'{k}: {v}' for k, v in stages.items()))}.</p>{empty}
{methods_table(fm.get("by_generator", {}), om.get("by_generator", {}))}
<h2>Confirmed hits{', then the best checked candidates that were not confirmed' if any(
        not ok for _, ok in picks) else ''}</h2>
<div class="cards">{''.join(cards) or '<p>No candidate reached the confirming tier.</p>'}</div>
<h2>Ranked candidates (the oracle's order)</h2>
{ranked_table(table, table_columns(orc, get_domain(domain).identifier, ctx), ctx)}
<h2>Funnel and property distributions</h2>
<div class="pics">{figures}</div>
{provenance_footer(_read_json(provenance))}
{TABLE_JS}
</body></html>"""
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(page)
