"""How a crystal structure is stored in a table cell: pymatgen's dict as JSON text (lossless, any cell)."""

from __future__ import annotations

import json


def structure_from_record(text: str):
    from pymatgen.core import Structure

    return Structure.from_dict(json.loads(text))


def structure_to_record(structure) -> str:
    return json.dumps(structure.as_dict())
