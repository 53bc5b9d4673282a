"""What the two novelty rules of issue #34 flag: the data set's own known cells, and the old hits relabelled.

    python -m bench.crystal_novelty run       # records: known.jsonl (one row per known cell), hits.jsonl
    python -m bench.crystal_novelty analyse   # analysis.json from the records

Plan: ``bench/records/crystal_novelty/PLAN.md`` (parts A and B), committed before the data.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from bench.lib.common import run_or_analyse, run_or_analyse_parser, write_analysis

log = logging.getLogger("bench")
MIRROR = "../shared/data/mp-binary-pbe-elasticity-2025.1.json.gz"
#: the recorded studies whose committee-confirmed hits are relabelled (their relaxed cells are in the records)
HIT_RECORDS = {f"baselines/{arm}": f"bench/records/baselines/crystals/{arm}/candidates_verified.parquet"
               for arm in ("generator", "screening", "substitution_random", "substitution_ranked")}


def known_cells(mirror: str) -> pd.DataFrame:
    from invdesign.data.materials import parse_items

    with gzip.open(mirror, "rt") as fh:
        return parse_items(json.load(fh), Path(mirror), "skip")


def run(args) -> None:
    from pymatgen.core import Structure

    from invdesign.chem.crystal_novelty import AlloyOrderingRule, all_substitutable, disorder_aware_known
    from invdesign.chem.crystals import known_matches, structure_from_record

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    known = known_cells(args.mirror)
    log.info("%d known cells", len(known))
    path = out / "known.jsonl"
    done = {json.loads(line)["id"] for line in path.read_text().splitlines()} if path.exists() else set()
    t0 = time.monotonic()
    rule = AlloyOrderingRule(known)
    by_formula = {f: g for f, g in known.groupby("formula")}
    for i, row in enumerate(known.itertuples(index=False)):
        if row.id in done:
            continue
        s = structure_from_record(row.structure)
        same = by_formula[row.formula]
        same = same[same["id"] != row.id]
        els = sorted({e.symbol for e in s.composition.elements})
        rec = {"id": row.id, "formula": row.formula, "n_elements": len(els),
               "all_substitutable": len(els) > 1 and all_substitutable(els),
               "parent_lattice": rule.parent(s, exclude=i),  # its own cell is never its parent
               "plain_match": known_matches([s], same)[0] if len(same) else None,
               "disorder_match": disorder_aware_known([s], same)[0] if len(same) else None}
        with path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if (i + 1) % 200 == 0:
            log.info("%d/%d known cells [%.0fs]", i + 1, len(known), time.monotonic() - t0)
    rows = []
    for name, rec_path in HIT_RECORDS.items():
        t = pd.read_parquet(rec_path)
        hits = t[t["committee_confirmed"].eq(True)]
        cells = [Structure.from_str(c, fmt="cif") for c in hits["relaxed_cif"]]
        dis = disorder_aware_known(cells, known)
        for (_, h), s, d in zip(hits.iterrows(), cells, dis):
            rows.append({"study": name, "formula": h["formula"], "parent_lattice": rule.parent(s),
                         "disorder_match": d, "novel_disorder_aware": d is None})
    (out / "hits.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def analyse(args) -> None:
    from pymatgen.core import Composition

    out = Path(args.out)
    k = pd.read_json(out / "known.jsonl", lines=True)
    h = pd.read_json(out / "hits.jsonl", lines=True)
    k["parent_lattice"] = k["parent_lattice"].fillna("")
    order = k["parent_lattice"].ne("")
    kind = k["parent_lattice"].map(lambda p: "known" if p.startswith("known:") else p)
    plain, dis = k["plain_match"].notna(), k["disorder_match"].notna()
    h["parent_lattice"] = h["parent_lattice"].fillna("")
    metal = k["formula"].map(lambda f: all(e.is_metal for e in Composition(f).elements))
    res = {
        "known_cells": len(k),
        "all_metal": int(metal.sum()),
        "multi_element": int(k["n_elements"].gt(1).sum()),
        "all_substitutable": int(k["all_substitutable"].sum()),
        "alloy_orderings": int(order.sum()),
        "alloy_orderings_by_parent": dict(Counter(kind[order])),
        "alloy_orderings_all_metal": int((order & metal).sum()),
        "alloy_orderings_with_a_nonmetal": sorted(k.loc[order & ~metal, "formula"].unique().tolist()),
        "alloy_ordering_systems": dict(Counter(k.loc[order, "formula"].map(lambda f: Composition(f).chemical_system))),
        "plain_matches_another_known_cell": int(plain.sum()),
        "disorder_aware_matches_another_known_cell": int(dis.sum()),
        "disorder_aware_only": int((dis & ~plain).sum()),
        "disorder_aware_only_formulas": sorted(k.loc[dis & ~plain, "formula"].unique().tolist()),
        "hits": {study: {"n": int(len(g)), "alloy_orderings": int(g["parent_lattice"].ne("").sum()),
                         "novel_disorder_aware": int(g["novel_disorder_aware"].sum()),
                         "cells": [f"{r.formula} ({r.parent_lattice or 'compound'})" for r in g.itertuples()]}
                 for study, g in h.groupby("study")},
    }
    write_analysis(out, res, ["pymatgen", "spglib", "numpy", "pandas"])


def main(argv=None):
    p = run_or_analyse_parser(__doc__)
    p.add_argument("--out", default="bench/records/crystal_novelty")
    p.add_argument("--mirror", default=MIRROR)
    return run_or_analyse(p, argv, run, analyse)


if __name__ == "__main__":
    main()
