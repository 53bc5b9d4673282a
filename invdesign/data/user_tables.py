"""Helpers for users' own tables: one-line errors naming the file, the column and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InvdesignError


def read_user_csv(path: str | Path, required: dict[str, str]) -> pd.DataFrame:
    """Read a CSV and check columns. ``required`` maps column name -> config key that names it."""
    path = Path(path)
    if not path.is_file():
        raise InvdesignError(f"dataset file {path} not found; fix dataset.path (relative to the working directory)")
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(4096):
            raise InvdesignError(f"{path} is not a text table (binary content); save it as comma-separated text with "
                                 "a header row")
    header_columns(path)
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001  (pandas raises many parser errors)
        raise InvdesignError(f"{path}: cannot be read as CSV ({str(exc).splitlines()[0]}); save it as comma-separated "
                             "text with a header row") from None
    for column, key in required.items():
        if column not in df.columns:
            raise InvdesignError(f"{path} has no column {column!r} (columns: {', '.join(map(str, df.columns))}); "
                                 f"set {key} to the right column name")
    return df


def header_columns(path: str | Path) -> list[str]:
    """The names in the header row of a CSV; one line when a name is given twice (pandas would call the second
    ``name.1`` and read the first without a word)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        names = next(csv.reader(fh), [])
    for i, name in enumerate(names):
        if name and name in names[:i]:
            raise InvdesignError(f"{path}: column {name!r} is given twice in the header (columns "
                                 f"{names.index(name) + 1} and {i + 1}); rename or remove one")
    return names


def numeric_property(df: pd.DataFrame, column: str, path) -> pd.Series:
    values = pd.to_numeric(df[column], errors="coerce")
    if values.notna().sum() == 0:
        raise InvdesignError(f"{path}: column {column!r} has no numeric values; set dataset.property_column "
                             "to the numeric property column")
    return values
