"""Materials Project elasticity data (binary compounds, PBE): download with checksum or mirror."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pandas as pd

from ..errors import InvdesignError
from ..io import write_table

log = logging.getLogger(__name__)

MP_ELASTICITY = {
    "fname": "mp-binary-pbe-elasticity-2025.1.json.gz",
    "url": "https://raw.githubusercontent.com/materialsvirtuallab/matcalc/main/benchmark_data/"
           "mp-binary-pbe-elasticity-2025.1.json.gz",
    "sha256": "5689599491322805bda913663eeef8d567f64ada80c90173d50fb7b6fb0b5896",
}
CACHE_NAME = "mp_elasticity_v1.parquet"


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
        log.info("%s not in mirror %s; downloading", spec["fname"], mirror)
    try:
        return Path(pooch.retrieve(spec["url"], known_hash=f"sha256:{spec['sha256']}", fname=spec["fname"],
                                   path=str(cache_dir), progressbar=False))
    except Exception as exc:  # noqa: BLE001  (network errors come in many types)
        raise InvdesignError(f"cannot download {spec['url']} ({type(exc).__name__}); without internet put the file "
                             "in a folder and set data.mirror or INVDESIGN_DATA_MIRROR to it") from None


def load_mp_elasticity(dataset_cfg: dict, mirror: str | None, cache_dir: str | Path) -> pd.DataFrame:
    cache = Path(cache_dir) / CACHE_NAME
    if cache.exists():
        df = pd.read_parquet(cache)
    else:
        path = fetch(MP_ELASTICITY, mirror, cache_dir)
        with gzip.open(path, "rt") as fh:
            items = json.load(fh)
        from pymatgen.core import Composition

        df = pd.DataFrame({
            "id": [it["mp_id"] for it in items],
            "formula": [Composition(it["formula"]).reduced_formula for it in items],
            "structure": [json.dumps(it["structure"]) for it in items],
            "num_sites": [len(it["structure"]["sites"]) for it in items],
            "bulk_modulus_gpa": [float(it["bulk_modulus_vrh"]) for it in items],
            "shear_modulus_gpa": [float(it["shear_modulus_vrh"]) for it in items],
        })
        write_table(df, cache)
    max_atoms = dataset_cfg.get("max_atoms", 20)
    big = df["num_sites"] > max_atoms
    if big.any():
        log.info("MP elasticity: left out %d of %d cells with more than %d sites (dataset.max_atoms)",
                 int(big.sum()), len(df), max_atoms)
    df = df[~big]
    if dataset_cfg.get("max_rows") and dataset_cfg["max_rows"] < len(df):
        df = df.sample(n=dataset_cfg["max_rows"], random_state=dataset_cfg.get("seed", 0)).sort_index()
    df = df.reset_index(drop=True)
    df["property"] = df[dataset_cfg.get("property_column", "bulk_modulus_gpa")].astype(float)
    return df
