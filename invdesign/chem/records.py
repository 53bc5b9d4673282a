"""How a crystal structure is stored in a table cell (pymatgen's dict as JSON text), and matching cells against a
table of them by reduced formula."""

from __future__ import annotations

import json
from collections import defaultdict


def structure_from_record(text: str):
    from pymatgen.core import Structure

    return Structure.from_dict(json.loads(text))


def structure_to_record(structure) -> str:
    return json.dumps(structure.as_dict())


def first_matches(structures, reference, matcher, prepare=None, id_column: str = "id") -> list[str | None]:
    """For each structure (None allowed), the ``id_column`` value (default: the index) of the first ``reference``
    row of the same reduced formula (its ``formula`` column) whose ``structure`` record ``matcher`` fits to it, else
    None. ``prepare`` maps both sides before the fit (e.g. substitutable elements made disordered sites); each
    reference cell is read and prepared once."""
    prepare = prepare or (lambda s: s)
    ids = reference[id_column] if id_column in reference else reference.index.to_series()
    by_formula: dict[str, list] = defaultdict(list)
    for f, mid, rec in zip(reference["formula"], ids, reference["structure"]):
        by_formula[f].append((str(mid), rec))
    cells: dict[str, object] = {}
    out: list[str | None] = []
    for s in structures:
        hit = None
        if s is not None:
            mine = prepare(s)
            for mid, rec in by_formula.get(s.composition.reduced_formula, []):
                if mid not in cells:
                    cells[mid] = prepare(structure_from_record(rec))
                if matcher.fit(mine, cells[mid]):
                    hit = mid
                    break
        out.append(hit)
    return out
