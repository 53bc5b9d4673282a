"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


#: errno values of a full disk or an exhausted quota
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for want of space: an OSError ENOSPC / EDQUOT, or torch's
    RuntimeError from its zip writer (``inline_container.cc``), which carries no errno."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL
    return isinstance(exc, RuntimeError) and "inline_container.cc" in str(exc)


@contextlib.contextmanager
def _space_checked(folder: Path) -> Iterator[None]:
    """A write into ``folder`` that fails for want of space becomes one line naming the folder."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if not _disk_full(exc):
            raise
        from .errors import InvdesignError

        raise InvdesignError(f"no space left on {folder} ({type(exc).__name__} while writing); free space there or "
                             "point results at another disk, then run again (nothing finished was replaced)") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success (a full disk: one line, and the
    temporary file is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _space_checked(path.parent):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            if tmp_path.is_file():  # mkstemp makes 0600 files: give the result the user's usual permissions
                os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


@contextlib.contextmanager
def replaced_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``folder``; on success it replaces ``folder`` as a whole."""
    import shutil

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _space_checked(folder.parent):
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Strict JSON (NaN and infinities become null, so jq and other parsers read it)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _finite(o: Any) -> Any:
    """``o`` with numpy values as Python ones and non-finite floats as None (the one conversion path)."""
    if isinstance(o, float):  # numpy float64 included
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if type(o).__module__ == "numpy":
        return _finite(_json_default(o))
    return o


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o)!r}")


def write_table(df, path: str | os.PathLike) -> None:
    """Write a DataFrame as Parquet or CSV (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            raise ValueError(f"unsupported table suffix: {path}")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def is_missing(value: Any) -> bool:
    """Whether a table cell holds no value: None, NaN (float or numpy), pandas NA or NaT. Never an identity test, so
    numpy and pandas scalars read as what they hold; a list or array is a value."""
    import pandas as pd
    from pandas.api.types import is_scalar

    return bool(is_scalar(value) and pd.isna(value))
