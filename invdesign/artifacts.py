"""Reading and writing the workflow's intermediate files: the public way in for scripts, bench and tests.

* :func:`save_graphs` / :func:`load_graphs`: featurized graphs with their meta, split and ids (``graphs.pt``);
* :func:`read_table`: a Parquet / CSV table, checked for the columns the reader needs;
* :func:`load_model`: a trained generator or predictor (:func:`invdesign.models.registry.load_checkpoint`).

A file that cannot be read stops the step with one line naming the file and the fix (the rule to re-run), so
a truncated intermediate never surfaces as a library traceback. torch (and pandas for tables) only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .errors import InvdesignError
from .io import torch_save



def _fix(path) -> str:
    """The recipe that rebuilds a damaged intermediate without remaking what was made from it. (``--forcerun RULE``
    does not do: the damaged input stops planning before the forced job runs, and it would re-run every job after
    it.) Snakemake can build the one file as a target, and ``--touch`` then marks the outputs made from the intact
    copy as newer again (the rebuild reproduces the file: every step is seeded)."""
    return (f"rebuild it alone with snakemake --cores 2 --force {path} (with your --configfile), then snakemake "
            "--touch to keep what was made from it, then run again")


@dataclass
class GraphSet:
    """Featurized graphs of a campaign: one per dataset row, with the meta the models are built from."""

    graphs: list
    meta: dict
    split: list[str]
    ids: list[str]

    def part(self, name: str) -> list:
        """The graphs of one split ("train", "val" or "test")."""
        return [g for g, s in zip(self.graphs, self.split) if s == name]

    @property
    def train(self) -> list:
        return self.part("train")


def save_graphs(graphs: list, meta: dict, split, ids, path) -> None:
    from .models.graphstore import pack

    torch_save(pack(graphs, meta=meta, split=list(split), ids=list(ids)), path)


def load_graphs(path) -> GraphSet:
    """The graphs of ``path``. The last file read is kept in memory (keyed by path, size and modification time),
    so a process that trains several models from one file unpacks it once (14 s for all of QM9)."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        raise InvdesignError(f"{path} not found; {_fix(path)}") from None
    return _load_graphs(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _load_graphs(path: str, size: int, mtime_ns: int) -> GraphSet:
    import torch

    from .models.graphstore import unpack

    try:
        blob = unpack(torch.load(path, map_location="cpu", weights_only=False))
        return GraphSet(blob["graphs"], blob["meta"], list(blob["split"]), list(blob["ids"]))
    except Exception as exc:  # noqa: BLE001  (truncated, foreign or old-format files)
        raise InvdesignError(f"{path}: cannot read these graphs ({type(exc).__name__}); {_fix(path)}") from None


def read_table(path, columns=()):
    """A Parquet or CSV table (by suffix) that has ``columns``."""
    import pandas as pd

    p = Path(path)
    try:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except FileNotFoundError:
        raise InvdesignError(f"{path} not found; {_fix(path)}") from None
    except Exception as exc:  # noqa: BLE001  (pyarrow and the CSV parser raise many types)
        raise InvdesignError(f"{path}: cannot read this table ({type(exc).__name__}); {_fix(path)}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvdesignError(f"{path} lacks column(s) {', '.join(missing)}; {_fix(path)}")
    return df


def load_model(path):
    """``(model in eval mode, checkpoint dict)`` of a trained generator or predictor."""
    from .models.registry import load_checkpoint

    return load_checkpoint(path)


def check_intact(path) -> None:
    """Raise a one-line :class:`InvdesignError` when the intermediate at ``path`` exists but cannot be whole: a
    Parquet file without its end marker, a torch file whose zip directory is gone, JSON that does not parse. Cheap
    (reads the file's ends), so the workflow runs it on every input while planning: an unreadable input stops the
    run before Snakemake removes the good outputs that were made from it."""
    import json
    import zipfile

    p = Path(path)
    if not p.is_file():
        return
    why = None
    try:
        if p.suffix == ".parquet":
            with open(p, "rb") as fh:
                head = fh.read(4)
                fh.seek(max(p.stat().st_size - 4, 0))
                if head != b"PAR1" or fh.read(4) != b"PAR1":
                    why = "not a whole Parquet file (truncated?)"
        elif p.suffix == ".pt":
            with zipfile.ZipFile(p) as zf:
                zf.infolist()
        elif p.suffix == ".json":
            json.loads(p.read_text())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        why = f"cannot be read ({type(exc).__name__})"
    if why is None and p.suffix == ".parquet":
        why = _missing_columns(p)
    if why:
        raise InvdesignError(f"{path}: {why}; the outputs made from it are kept: {_fix(path)}")


#: (file name pattern, columns every rule that reads it needs): a whole Parquet file written by hand or by another
#: version without them stops the run while planning, like a truncated one
EXPECTED_COLUMNS = (
    ("dataset.parquet", ("id", "property", "split")),
    ("known.parquet", ("id", "source")),
    ("candidates.parquet", ("rank", "passes")),
    ("checked.parquet", ("final_rank", "rank")),
    ("batch_*.parquet", ("rank",)),
)


def _missing_columns(p: Path) -> str | None:
    """Why the Parquet file ``p`` lacks the columns its readers need (None when it has them); reads only the
    footer."""
    import pyarrow.parquet as pq

    for pattern, need in EXPECTED_COLUMNS:
        if p.match(pattern):
            try:
                have = set(pq.read_schema(p).names)
            except Exception as exc:  # noqa: BLE001  (a footer pyarrow cannot parse)
                return f"cannot be read ({type(exc).__name__})"
            missing = [c for c in need if c not in have]
            return f"lacks the column(s) {', '.join(missing)} its readers need" if missing else None
    return None


#: the file beside an oracle checkpoint's batch_XXX.parquet files that says how many it wrote
BATCH_MANIFEST = "batches.json"


def batch_ids(folder) -> list[str]:
    """The ids (``000``, ``001``, ...) of the batch files an oracle checkpoint wrote in ``folder``; one line when
    one its manifest lists is gone (the merge used to go on with the rest, or none, without a word)."""
    import json

    p = Path(folder)
    ids = sorted(f.name[len("batch_"):-len(".parquet")] for f in p.glob("batch_*.parquet"))
    manifest = p / BATCH_MANIFEST
    if not manifest.is_file():
        return ids  # written before the manifest existed
    try:
        n = int(json.loads(manifest.read_text())["n_batches"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvdesignError(f"{manifest}: cannot be read ({type(exc).__name__}); {_fix(p)}") from None
    missing = [f"batch_{b:03d}.parquet" for b in range(n) if f"{b:03d}" not in ids]
    if missing:
        raise InvdesignError(f"{p}: {missing[0]} is gone ({len(missing)} of the {n} batches the checkpoint wrote); "
                             f"the verdicts made from them are kept: {_fix(p)}")
    return ids


def clock_skew(paths, slack: float = 2.0) -> str | None:
    """A warning when files under ``paths`` (files or folders; missing ones are left out) have a modification time
    more than ``slack`` seconds in the future (a skewed clock on a shared filesystem, a copied folder): Snakemake
    takes such an input for a new one and plans to redo what was made from it. None when there is none."""
    import os
    import time

    now = time.time()
    ahead = []
    for top in map(Path, paths):
        files = [top] if top.is_file() else [Path(d, f) for d, _, names in os.walk(top) for f in names]
        ahead += [(f.stat().st_mtime - now, f) for f in files if f.is_file() and f.stat().st_mtime > now + slack]
    if not ahead:
        return None
    offset, first = max(ahead)
    return (f"{len(ahead)} file(s) have a modification time in the future, up to {offset:.0f} s ahead of this "
            f"machine's clock ({first}); Snakemake may plan to redo finished steps because of it: fix the clock, or "
            "set the times to now with touch -c on those files, and check the plan with snakemake -n first")
