"""Every card of a campaign's landing page checked against its row of ``candidates_verified.parquet`` (issue #36).

    python -m bench.report_truth --configfile bench/configs/report_homo.yaml [--page results/.../index.html]

The checks read the page's text and recompute each claim from the row's numbers, without the page's code:

* the card is the row of its ``final rank`` (same SMILES or formula), and is drawn as confirmed exactly when the row's
  ``confirmed`` column says so;
* every label that names a registered property names the campaign's, ends with its unit and, where it names a
  column, one that an oracle tier declares as a measure of that property; its value is the row's value of that
  column (as shown: rounded) or says why there is none; no other property's name, and no column measuring another
  property, appears on the card;
* molecules: the verdict's lead matches ``confirmed``; a quoted DFT value is the row's (and in the target where the
  card says confirmed); a quoted chance of a value in the target is the row's of the tier quoted;
* crystals: each potential's clause says "stable" only on its hull (within 0.001 eV/atom; the DFT entries' hull
  first, as the oracle judges), "metastable, +x eV/atom" up to ``oracle.e_hull_max`` with x the row's, else
  "unstable"; "in the target" exactly when the measured value is in the target; "novel" only where the novelty
  columns make the cell a new material (novel after relaxation and under substitutional disorder, not an alloy
  ordering unless the campaign counts orderings), "alloy ordering" exactly for an ordering, "known under
  substitutional disorder" exactly for a disorder match, and a named known phase exactly as the row names it.

``check(page_html, table, campaign)`` returns ``{"cards", "labels", "mismatches": [...]}``; ``bench.report_browser``
runs it on the DOM Chromium rendered.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

#: a label naming a measure of a property: "HOMO energy, DFT (dft_homo_ev, eV)", "..., predicted (eV)"
LABEL = re.compile(r"^(?P<name>.+?), (?P<who>[^,()]+) \((?:(?P<column>[a-z0-9_]+), )?(?P<unit>[^,()]*)\)$")
#: "stable" within this of the hull (eV/atom), as the oracle and the page define it
ON_HULL = 1e-3


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).strip()


def parse_cards(page: str) -> list[dict]:
    """Each card: its classes, heading, verdict sentence, (label, value) rows and its whole text."""
    cards = []
    parts = page.split('<div class="card ')[1:]
    for part in parts:
        part = part.split('id="ranked"')[0]
        cls = part.split('"', 1)[0]
        head = re.search(r"<h3>(.*?)</h3>\s*<p class=\"status\">(.*?)</p>", part, re.S)
        kv = [(_text(k), _text(v)) for k, v in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", part, re.S)]
        cards.append({"classes": cls.split(), "heading": _text(head.group(1)) if head else "",
                      "status": _text(head.group(2)) if head else "", "fields": kv, "text": _text(part)})
    return cards


def _flag(value) -> bool | None:
    return None if value is None or pd.isna(value) else bool(value)


def _num(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _in_target(v: float, target: dict) -> bool:
    if "window" in target:
        lo, hi = target["window"]
        return lo <= v <= hi
    return (target.get("min") is None or v >= target["min"]) and (target.get("max") is None or v <= target["max"])


class Checker:
    """The campaign's property, unit, target and the oracle's declared columns, and the mismatches found."""

    def __init__(self, campaign) -> None:
        from invdesign import properties
        from invdesign.pipeline.verify import make_oracle

        self.domain = campaign.domain
        self.prop = campaign.dataset.property_column
        kind = getattr(campaign.dataset, "property_kind", None)
        self.target = {k: v for k, v in campaign.target.to_dict().items() if k != "unit"}
        p = properties.resolve(self.prop, kind)
        self.name, self.unit = p.description.split(" (")[0], p.unit
        self.others = {q.description.split(" (")[0] for q in properties.PROPERTIES.values()
                       if q.domain == self.domain and q.name != self.prop}
        orc = make_oracle(campaign.domain, campaign.oracle.to_dict(), campaign.target.to_dict(), self.prop, kind)
        self.orc, self.e_hull_max = orc, getattr(orc.settings, "e_hull_max", None)
        self.mine = {c for t in orc.tiers for m in [t.measure(self.prop)] if m for c in (m.column, m.raw) if c}
        self.foreign = {c for t in orc.tiers for q, m in t.measures.items() if q != self.prop
                        for c in (m.column, m.raw) if c} - self.mine
        self.mismatches: list[str] = []
        self.labels = 0

    def expect(self, ok: bool, where: str, what: str) -> None:
        if not ok:
            self.mismatches.append(f"{where}: {what}")

    # ---------------------------------------------------------------- labels and values
    def labels_and_values(self, card: dict, row: pd.Series, where: str) -> None:
        for label, value in card["fields"]:
            m = LABEL.match(label)
            named = m and (m["name"] == self.name or m["name"] in self.others)
            if not named:
                continue
            self.labels += 1
            self.expect(m["name"] == self.name, where, f"label {label!r} names another property than {self.name}")
            self.expect(m["unit"] == self.unit, where, f"label {label!r}: unit is not {self.unit!r}")
            col = m["column"] or ("predicted_property" if m["who"] == "predicted" else None)
            if m["column"]:
                self.expect(col in self.mine, where, f"label {label!r}: {col} is no declared measure of {self.prop}")
            if col is None:
                continue
            shown, want = re.match(r"(?:estimate )?(-?\d+(?:\.(\d+))?)", value), _num(row.get(col))
            if want is None:
                self.expect(shown is None, where, f"{label!r} shows {value!r}, the row has no {col}")
                continue
            self.expect(shown is not None and abs(float(shown[1]) - want) <= 0.51 * 10 ** -len(shown[2] or ""),
                        where, f"{label!r} shows {value!r}, the row's {col} is {want}")
            self.expect(value.endswith(self.unit) or f" {self.unit} " in value or "10-90%" in value, where,
                        f"{label!r}: value {value!r} without the unit {self.unit}")
        for other in sorted(self.others):
            self.expect(other not in card["text"], where, f"the card names another property: {other!r}")
        for col in sorted(self.foreign):
            self.expect(re.search(rf"\b{col}\b", card["text"]) is None, where,
                        f"the card names {col}, a measure of another property")

    # ---------------------------------------------------------------- verdicts
    def molecule_status(self, card: dict, row: pd.Series, where: str) -> None:
        s, confirmed = card["status"], _flag(row.get("confirmed"))
        self.expect(s.startswith("confirmed") == bool(confirmed), where,
                    f"verdict {s[:60]!r} but the row's confirmed is {confirmed}")
        first, top = self.orc.tiers[0], self.orc.tiers[-1]
        dft = top.measure(self.prop).column if len(self.orc.tiers) > 1 and top.measure(self.prop) else None
        m = re.search(rf"{top.name} {re.escape(self.name)} (-?[\d.]+) {re.escape(self.unit)}", s)
        if m and dft:
            v = float(m.group(1))
            self.expect(abs(v - float(row[dft])) < 0.006, where, f"verdict quotes {v}, the row's {dft} is {row[dft]}")
            self.expect(not s.startswith("confirmed") or _in_target(v, self.target), where,
                        f"confirmed with {top.name} {v} {self.unit} outside the target {self.target}")
        chance = re.search(r", chance .+ (\d\.\d+)$", s)
        column = (top if m else first).probability
        if chance and column:
            self.expect(abs(float(chance.group(1)) - float(row[column])) < 0.006, where,
                        f"verdict quotes a chance of {chance.group(1)}, the row's {column} is {row[column]}")

    def crystal_status(self, card: dict, row: pd.Series, where: str) -> None:
        s, confirmed = card["status"], _flag(row.get("confirmed"))
        self.expect(s.startswith("confirmed") == bool(confirmed), where,
                    f"verdict {s[:60]!r} but the row's confirmed is {confirmed}")
        for tier in self.orc.tiers:
            clause = re.search(rf"(?:^|; |: ){tier.name}: (.*?)(?=; [A-Za-z0-9]+: |$)", s)
            if clause is None:
                continue
            c, w = clause.group(1), f"{where} ({tier.name})"
            e = next((v for v in (_num(row.get(col)) for col, _ in tier.hulls) if v is not None), None)
            if e is not None:
                self.expect(("stable (" in c) == (e <= ON_HULL), w,
                            f"'stable' said or not said against E_hull {e:+.4f}: {c[:90]!r}")
                meta = self.e_hull_max is not None and ON_HULL < e <= self.e_hull_max
                self.expect(("metastable" in c) == meta, w, f"'metastable' against E_hull {e:+.4f}: {c[:90]!r}")
                if meta or e > ON_HULL:
                    self.expect(f"+{e:.3f} eV/atom" in c, w, f"E_hull {e:+.4f} not quoted: {c[:90]!r}")
            m = tier.measure(self.prop)
            v = _num(row.get(m.column)) if m else None
            if v is not None and "failed (" not in c:
                inside = _in_target(v, self.target)
                self.expect(f"{self.name} {v:.1f} {self.unit}, {'in' if inside else 'outside'} the target" in c, w,
                            f"{self.name} {v:.1f} {self.unit} {'in' if inside else 'outside'} the target not said: "
                            f"{c[:120]!r}")
            self.novelty(c, row, tier, w)

    def novelty(self, clause: str, row: pd.Series, tier, where: str) -> None:
        match = row.get(tier.known_match) if tier.known_match else None
        if isinstance(match, str) and match:
            self.expect(f"known phase {match}" in clause, where, f"relaxed onto {match}, not said: {clause[-80:]!r}")
        n = tier.novelty
        ordering = _flag(row.get(n.ordering)) if n else None
        aware = _flag(row.get(n.disorder_aware)) if n else None
        counted = getattr(self.orc.settings, "alloy_orderings", "exclude") == "count"
        new = (isinstance(match, str) and not match and aware is True
               and (ordering is False or (ordering is True and counted)))
        said_novel = re.search(r"(?:^|, )novel(?:$|[,;])", clause) is not None
        self.expect(not said_novel or (new and ordering is False), where,
                    f"'novel' but novel_after_relaxation/novel_disorder_aware/alloy_ordering say otherwise: "
                    f"{clause[-80:]!r}")
        self.expect(("alloy ordering" in clause) == bool(ordering and not match), where,
                    f"alloy_ordering is {ordering}: {clause[-80:]!r}")
        self.expect(("substitutional disorder" in clause) == (aware is False and not match), where,
                    f"novel_disorder_aware is {aware}: {clause[-80:]!r}")

    # ---------------------------------------------------------------- a page
    def check(self, page: str, table: pd.DataFrame) -> dict:
        ident = "smiles" if self.domain == "molecules" else "formula"
        cards = parse_cards(page)
        for card in cards:
            rank = _num(dict(card["fields"]).get("final rank"))
            rows = table[table["final_rank"] == rank] if rank is not None else table.head(0)
            where = f"card {card['heading']} (rank {rank if rank is None else int(rank)})"
            if len(rows) != 1:
                self.expect(False, where, "no row of the table has this final rank")
                continue
            row = rows.iloc[0]
            self.expect(str(row[ident]) == card["heading"], where, f"heading is not the row's {ident} {row[ident]}")
            self.expect(("confirmed" in card["classes"]) == bool(_flag(row.get("confirmed"))), where,
                        "drawn as confirmed against the row's confirmed column, or the other way round")
            self.labels_and_values(card, row, where)
            (self.molecule_status if self.domain == "molecules" else self.crystal_status)(card, row, where)
        return {"cards": len(cards), "labels": self.labels, "mismatches": self.mismatches}


def check(page: str, table: pd.DataFrame, campaign) -> dict:
    """The cards of ``page`` (a landing page's HTML or Chromium's DOM of it) against ``table``, the campaign's
    verified candidates; ``campaign``: its typed settings (:func:`invdesign.config.campaign_settings`)."""
    return Checker(campaign).check(page, table)


def campaigns(configfile: str) -> dict:
    """name -> (typed settings, verified table path) of each campaign of ``configfile``."""
    from invdesign.config import campaign_settings, load_config

    cfg = load_config(configfile)
    return {name: (campaign_settings(cfg, name, configfile),
                   Path(cfg["results"]) / name / "candidates_verified.parquet") for name in cfg["campaigns"]}
