"""Materials Project elasticity data (binary compounds, PBE): download with checksum or mirror."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pandas as pd

from ..errors import InvdesignError
from ..io import write_table
from ..properties import source_properties

log = logging.getLogger(__name__)

MP_ELASTICITY = {
    "fname": "mp-binary-pbe-elasticity-2025.1.json.gz",
    "url": "https://raw.githubusercontent.com/materialsvirtuallab/matcalc/main/benchmark_data/"
           "mp-binary-pbe-elasticity-2025.1.json.gz",
    "sha256": "5689599491322805bda913663eeef8d567f64ada80c90173d50fb7b6fb0b5896",
}
CACHE_NAME = "mp_elasticity_v2.parquet"  # v2: the Chen hardness derived from the moduli
#: property column of the parsed table (GPa) -> the fields of the MP items it comes from, from the property registry
PROPERTY_SOURCES = {name: p.sources["mp_elasticity"] for name, p in source_properties("mp_elasticity").items()}


def fetch(spec: dict, mirror: str | None, cache_dir: str | Path) -> Path:
    """Path to a verified copy: the mirror folder first, else download by URL (pooch, sha256)."""
    import pooch

    if mirror:
        candidate = Path(mirror) / spec["fname"]
        if candidate.is_file():
            digest = pooch.file_hash(str(candidate), alg="sha256")
            if digest != spec["sha256"]:
                raise InvdesignError(f"{candidate}: sha256 {digest[:12]}... does not match the expected "
                                     f"{spec['sha256'][:12]}...; replace the file with an intact copy of {spec['url']}")
            return candidate
    missing = ""
    if mirror:
        missing = (f"the mirror {mirror} is a file, not a folder" if Path(mirror).is_file()
                   else f"the mirror folder {mirror} does not exist" if not Path(mirror).is_dir()
                   else f"{spec['fname']} is not in the mirror folder {mirror}")
        log.warning("%s; downloading %s", missing, spec["url"])
    try:
        return Path(pooch.retrieve(spec["url"], known_hash=f"sha256:{spec['sha256']}", fname=spec["fname"],
                                   path=str(cache_dir), progressbar=False))
    except Exception as exc:  # noqa: BLE001  (network errors come in many types)
        why = f"{missing}, and " if missing else ""
        raise InvdesignError(f"{why}cannot download {spec['url']} ({type(exc).__name__}); without internet put the "
                             "file in a folder and set data.mirror or INVDESIGN_DATA_MIRROR to it") from None


def parse_items(items: list, path, on_bad_rows: str) -> pd.DataFrame:
    """Table of MP elasticity items; a bad item (missing key, unreadable formula/structure) is skipped and
    counted, or raises with on_bad_rows='error'."""
    from pymatgen.core import Composition

    rows, bad = [], []
    for k, it in enumerate(items):
        try:
            sites = it["structure"]["sites"]
            if not sites or "lattice" not in it["structure"]:
                raise ValueError("structure without sites or lattice")
            rows.append({"id": str(it["mp_id"]), "formula": Composition(it["formula"]).reduced_formula,
                         "structure": json.dumps(it["structure"]), "num_sites": len(sites),
                         **{name: src.value(*(it.get(f) for f in src.fields)) for name, src in PROPERTY_SOURCES.items()}})
        except Exception as exc:  # noqa: BLE001  (KeyError, TypeError, ValueError from odd items)
            bad.append((k, it.get("mp_id", "?") if isinstance(it, dict) else "?", f"{type(exc).__name__}: {exc}"))
    if bad:
        k, mp_id, why = bad[0]
        if on_bad_rows == "error":
            raise InvdesignError(f"{path}: item {k} ({mp_id}) is unusable ({why}; {len(bad)} bad items in all); "
                                 "replace the file with an intact copy or set dataset.on_bad_rows: skip")
        log.warning("%s: skipped %d unusable items (first: item %d, %s: %s)", path, len(bad), k, mp_id, why)
    return pd.DataFrame(rows, columns=["id", "formula", "structure", "num_sites", *PROPERTY_SOURCES])


def load_mp_elasticity(ds, mirror: str | None, cache_dir: str | Path) -> pd.DataFrame:
    """The MP elasticity cells of ``ds`` (:class:`~invdesign.config.data.MPSource`), with a ``property`` column."""
    cache = Path(cache_dir) / CACHE_NAME
    if cache.exists():
        df = pd.read_parquet(cache)
    else:
        path = fetch(MP_ELASTICITY, mirror, cache_dir)
        with gzip.open(path, "rt") as fh:
            items = json.load(fh)
        df = parse_items(items, path, ds.on_bad_rows)
        write_table(df, cache)
    max_atoms = ds.max_atoms
    big = df["num_sites"] > max_atoms
    if big.any():
        log.info("MP elasticity: left out %d of %d cells with more than %d sites (dataset.max_atoms)",
                 int(big.sum()), len(df), max_atoms)
    df = df[~big]
    if ds.max_rows and ds.max_rows < len(df):
        df = df.sample(n=ds.max_rows, random_state=ds.seed).sort_index()
    df = df.reset_index(drop=True)
    df["property"] = df[ds.property_column].astype(float)
    return df
