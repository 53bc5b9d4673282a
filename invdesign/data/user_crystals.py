"""Users' own crystals: a folder of CIF files plus a CSV table with one row per CIF and the property.

dataset keys: ``path`` (folder of .cif files), ``table`` (CSV), ``id_column`` (default ``id``: the CIF file
stem, a trailing ``.cif`` is accepted), ``property_column``, ``max_atoms`` (default 20), ``on_bad_rows``
(``skip`` | ``error``, default ``skip``). A row is bad when its CIF is missing, cannot be parsed, has no
sites, has partial occupancies, or has more than ``max_atoms`` sites.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import InvdesignError
from .user_tables import numeric_property, read_user_csv

log = logging.getLogger(__name__)


_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|\S+")


def _loops(lines):
    """(tags, number of values) of each loop_ of a CIF's first data block, read line by line."""
    tags, values, blocks = None, 0, 0
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0].lower()
        if word.startswith("data_"):
            blocks += 1
            if blocks > 1:
                break
        if tags is not None and (word == "loop_" or word.startswith(("_", "data_")) and values):
            yield tags, values
            tags, values = None, 0
        if word == "loop_":
            tags = []
        elif tags is not None and word.startswith("_") and not values:
            tags.append(word)
        elif tags is not None and tags:
            values += len(_TOKEN.findall(line))
    if tags:
        yield tags, values


def cif_site_rows(path: Path) -> int:
    """Rows of the atom-site loop of a CIF, counted without parsing it: a lower bound of an ordered cell's sites
    (symmetry only adds sites), so a cell far above max_atoms is refused before pymatgen parses (and merges) every
    site, which took 211 s for 20,000 atoms."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for tags, values in _loops(fh):
            if any(t.startswith(("_atom_site_", "_atom_site.")) and "aniso" not in t for t in tags):
                return values // len(tags)
    return 0


def read_cif(path: Path, max_atoms: int):
    """Ordered pymatgen Structure from one CIF; raises ValueError with a short reason."""
    from pymatgen.core import Structure

    if not path.is_file():
        raise ValueError("file not found")
    listed = cif_site_rows(path)
    if listed > max_atoms:
        raise ValueError(f"{listed} atom sites listed > dataset.max_atoms = {max_atoms}")
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
    """The cells of ``ds`` (:class:`~invdesign.config.data.CifFolderSource`). Columns: id, formula (reduced),
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
    stems = [_stem(rid) for rid in table[id_col].astype(str)]
    for stem, y in zip(stems, prop):
        path = folder / f"{stem}.cif"
        try:
            if Path(stem).name != stem or stem in ("", ".", ".."):
                raise ValueError(f"id {stem!r} is not a file name: it would read a CIF outside dataset.path")
            s = read_cif(path, max_atoms)
        except ValueError as exc:
            bad.append((path, str(exc)))
            continue
        rows.append({"id": stem, "formula": s.composition.reduced_formula, "structure": structure_to_record(s),
                     "num_sites": len(s), "property": float(y)})
    _warn_unlisted(folder, {f"{stem}.cif" for stem in stems}, ds.table)
    if bad:
        if ds.on_bad_rows == "error":
            raise InvdesignError(f"{bad[0][0]}: cannot use this CIF ({bad[0][1]}; {len(bad)} bad files in all); "
                                 "fix it or set dataset.on_bad_rows: skip")
        log.warning("%s: skipped %d unusable CIFs of %d table rows (first: %s: %s)", folder, len(bad), len(table),
                    *bad[0])
    return pd.DataFrame(rows, columns=["id", "formula", "structure", "num_sites", "property"])


def _stem(rid: str) -> str:
    """The CIF file stem a table id names (a trailing .cif is accepted)."""
    rid = rid.strip()
    return rid[:-4] if rid.lower().endswith(".cif") else rid


def _warn_unlisted(folder: Path, listed: set[str], table) -> None:
    """A warning with the count of the folder's CIFs that no table row names (they are not used)."""
    unlisted = sorted(p.name for p in folder.glob("*.cif") if p.name not in listed)
    if unlisted:
        log.warning("%s: %d CIF files have no row in %s and are not used (first: %s); add rows for them or move "
                    "them out", folder, len(unlisted), table, unlisted[0])
