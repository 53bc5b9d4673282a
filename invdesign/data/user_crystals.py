"""Users' own crystals: a folder of CIF files plus a CSV table with one row per CIF and the property.

dataset keys: ``path`` (folder of .cif files), ``table`` (CSV), ``id_column`` (default ``id``: the CIF file
stem, a trailing ``.cif`` is accepted), ``property_column``, ``max_atoms`` (default 20), ``on_bad_rows``
(``skip`` | ``error``, default ``skip``). A row is bad when its CIF is missing, cannot be parsed, has no
sites, has partial occupancies, or has more than ``max_atoms`` sites.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pandas as pd

from ..errors import InvdesignError
from .user_tables import numeric_property, read_user_csv

log = logging.getLogger(__name__)


def read_cif(path: Path, max_atoms: int):
    """Ordered pymatgen Structure from one CIF; raises ValueError with a short reason."""
    from pymatgen.core import Structure

    if not path.is_file():
        raise ValueError("file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounding, missing symmetry tags, ...
            s = Structure.from_file(path)
    except Exception as exc:  # noqa: BLE001  (the CIF parser raises many types)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"unreadable CIF: {first}") from None
    if len(s) == 0:
        raise ValueError("no sites")
    if not s.is_ordered:
        raise ValueError("partial occupancies (order the structure first)")
    if len(s) > max_atoms:
        raise ValueError(f"{len(s)} sites > dataset.max_atoms = {max_atoms}")
    return s


def load_cif_folder(ds) -> pd.DataFrame:
    """The cells of ``ds`` (:class:`~invdesign.config.settings.CifFolderSource`). Columns: id, formula (reduced),
    structure (JSON of Structure.as_dict()), num_sites, property."""
    from ..chem.crystals import structure_to_record

    folder = Path(ds.path)
    if not folder.is_dir():
        raise InvdesignError(f"CIF folder {folder} not found; fix dataset.path")
    id_col, prop_col = ds.id_column, ds.property_column
    table = read_user_csv(ds.table, {id_col: "dataset.id_column", prop_col: "dataset.property_column"})
    prop = numeric_property(table, prop_col, ds.table)
    max_atoms = ds.max_atoms
    rows, bad = [], []
    for rid, y in zip(table[id_col].astype(str), prop):
        rid = rid.strip()
        stem = rid[:-4] if rid.lower().endswith(".cif") else rid
        path = folder / f"{stem}.cif"
        try:
            s = read_cif(path, max_atoms)
        except ValueError as exc:
            bad.append((path, str(exc)))
            continue
        rows.append({"id": stem, "formula": s.composition.reduced_formula, "structure": structure_to_record(s),
                     "num_sites": len(s), "property": float(y)})
    if bad:
        if ds.on_bad_rows == "error":
            raise InvdesignError(f"{bad[0][0]}: cannot use this CIF ({bad[0][1]}; {len(bad)} bad files in all); "
                                 "fix it or set dataset.on_bad_rows: skip")
        log.warning("%s: skipped %d unusable CIFs of %d table rows (first: %s: %s)", folder, len(bad), len(table),
                    *bad[0])
    return pd.DataFrame(rows, columns=["id", "formula", "structure", "num_sites", "property"])
