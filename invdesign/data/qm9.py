"""QM9 from the ``qm9pack`` package: SMILES, geometry-derived Mulliken group charges and
its 12 properties, each converted to its registered unit (:mod:`invdesign.properties`).

Mulliken charges in QM9 are given per atom in the XYZ order; they are mapped onto the
heavy atoms of the RDKit molecule built from the SMILES (connectivity from the XYZ
geometry, matched onto the SMILES graph) and each hydrogen's charge is summed onto the
heavy atom it is bonded to. The result is a sign-free per-atom scalar that does not
depend on rotation, translation or atom order.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvdesignError
from ..io import write_table
from ..properties import source_properties

log = logging.getLogger(__name__)

#: property column of the parsed table (in the property's unit) -> where qm9pack holds it and how it converts
PROPERTY_SOURCES = {name: p.sources["qm9"] for name, p in source_properties("qm9").items()}
_RAW_COLUMNS = ["Index", "SMILES", "Elements", "XYZ_Ang", "Mulliken_pop",
                *dict.fromkeys(f for src in PROPERTY_SOURCES.values() for f in src.fields)]
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
CACHE_NAME = "qm9_raw_v2.parquet"  # v2: every property of QM9 (v1 held the frontier orbitals only)


def _qm9pack_files() -> list[Path]:
    try:
        import qm9pack  # noqa: F401  (needs setuptools<81: it imports pkg_resources)
    except ImportError as exc:
        raise InvdesignError(f"cannot import qm9pack ({exc}); install it with pip install qm9pack 'setuptools<81'") from None
    folder = resources.files("qm9pack") / "data"
    files = sorted(Path(str(folder)).glob("qm9_part*.csv"))
    if not files:
        raise InvdesignError(f"qm9pack has no data files in {folder}; reinstall qm9pack")
    return files


def raw_table(cache_dir: str | Path) -> pd.DataFrame:
    """The QM9 columns we need, read once from qm9pack and cached as Parquet."""
    cache = Path(cache_dir) / CACHE_NAME
    if cache.exists():
        return pd.read_parquet(cache)
    files = _qm9pack_files()
    log.info("reading QM9 from qm9pack (%d files); cached afterwards in %s", len(files), cache)
    df = pd.concat([pd.read_csv(f, usecols=_RAW_COLUMNS) for f in files], ignore_index=True)
    write_table(df, cache)
    return df


def parse_numbers(text: str) -> np.ndarray:
    """Parse QM9's list columns (not valid JSON: numbers like ``0.``)."""
    return np.array([float(x) for x in _NUM.findall(text)], dtype=float)


def parse_elements(text: str) -> list[str]:
    return re.findall(r"[A-Z][a-z]?", text)


def group_charges(smiles: str, elements: list[str], xyz: np.ndarray, charges: np.ndarray):
    """Return (canonical heavy-atom SMILES, per-heavy-atom group charges in its atom order) or None.

    Each hydrogen belongs to its nearest heavy atom (<= 1.35 A). Heavy-atom bonds come from the
    geometry (RDKit's covalent-radius rule) and the SMILES graph must embed into them with the
    right elements and hydrogen counts. Extra geometric contacts are allowed (1,3 distances in
    strained rings such as bicyclo[1.1.1]pentanes fall inside the covalent cut-off); among
    several embeddings the one with the shortest bonds wins.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    mol = Chem.MolFromSmiles(smiles)
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    if mol is None or len(elements) != len(xyz) or len(charges) != len(elements):
        return None
    # canonical atom order first, so that the charges follow the canonical SMILES
    canon = Chem.MolToSmiles(mol)
    mol = Chem.MolFromSmiles(canon)  # atoms now in the order they appear in the canonical SMILES
    is_h = np.array([e == "H" for e in elements])
    heavy = np.flatnonzero(~is_h)
    if len(heavy) != mol.GetNumAtoms():
        return None
    q = np.asarray(charges, float)
    grouped = q[heavy].copy()
    n_h = np.zeros(len(heavy), int)
    if is_h.any():
        d = np.linalg.norm(xyz[is_h][:, None, :] - xyz[heavy][None, :, :], axis=-1)
        parent = d.argmin(axis=1)
        if d[np.arange(len(parent)), parent].max() > 1.35:
            return None
        np.add.at(grouped, parent, q[is_h])
        np.add.at(n_h, parent, 1)
    block = f"{len(heavy)}\n\n" + "\n".join(f"{elements[i]} {x:.6f} {y:.6f} {z:.6f}"
                                               for i, (x, y, z) in zip(heavy, xyz[heavy]))
    skeleton = Chem.MolFromXYZBlock(block)  # heavy atoms only, in the order of ``heavy``
    if skeleton is None:
        return None
    try:
        rdDetermineBonds.DetermineConnectivity(skeleton)
    except Exception:  # noqa: BLE001  (rdkit raises several types)
        return None
    generic = Chem.RWMol(mol)
    for a in generic.GetAtoms():
        a.SetIsAromatic(False)
        a.SetNoImplicit(True)
        a.SetFormalCharge(0)
        a.SetNumExplicitHs(0)
    for b in generic.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    skeleton = Chem.RWMol(skeleton)
    for a in skeleton.GetAtoms():
        a.SetNoImplicit(True)
    for b in skeleton.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
    if skeleton.GetNumBonds() < generic.GetNumBonds():
        return None
    for m in (generic, skeleton):
        m.UpdatePropertyCache(strict=False)
    want_h = [a.GetTotalNumHs() for a in mol.GetAtoms()]
    pairs = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    pos = xyz[heavy]
    best, best_len = None, np.inf
    for match in skeleton.GetSubstructMatches(generic, uniquify=False, useChirality=False, maxMatches=2000):
        if any(n_h[match[i]] != want_h[i] for i in range(len(want_h))):
            continue
        if skeleton.GetNumBonds() == generic.GetNumBonds():  # same graph: every embedding is equivalent
            best = match
            break
        length = sum(float(np.linalg.norm(pos[match[i]] - pos[match[j]])) for i, j in pairs)
        if length < best_len - 1e-6:
            best, best_len = match, length
    if best is None:
        return None
    return canon, [float(grouped[best[i]]) for i in range(len(want_h))]


def property_values(row) -> dict[str, float]:
    """Every registered QM9 property of one qm9pack row (a named tuple or Series), in its registered unit."""
    return {name: src.value(*(getattr(row, f) for f in src.fields)) for name, src in PROPERTY_SOURCES.items()}


def load_qm9(ds, cache_dir: str | Path) -> pd.DataFrame:
    """QM9 molecules of ``ds`` (:class:`~invdesign.config.data.QM9Source`), with a ``property`` column."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    prop = ds.property_column
    raw = raw_table(cache_dir)
    max_rows = ds.max_rows
    if max_rows and max_rows < len(raw):
        raw = raw.sample(n=max_rows, random_state=ds.seed).sort_values("Index")
    rows, bad = [], 0
    for done, r in enumerate(raw.itertuples(index=False), start=1):
        if done % 10000 == 0:
            log.info("QM9: parsed %d/%d molecules", done, len(raw))
        res = group_charges(r.SMILES, parse_elements(r.Elements), parse_numbers(r.XYZ_Ang).reshape(-1, 3),
                            parse_numbers(r.Mulliken_pop))
        if res is None:
            bad += 1
            if ds.on_bad_rows == "error":
                raise InvdesignError(f"QM9 (qm9pack) molecule {r.Index} ({r.SMILES}): SMILES and XYZ geometry do not "
                                     "match; set dataset.on_bad_rows: skip to leave such rows out")
            continue
        smiles, charges = res
        rows.append({"id": f"qm9_{int(r.Index):06d}", "smiles": smiles, "mulliken": charges,
                     **property_values(r),
                     "n_heavy": len(charges)})
    if bad:
        log.warning("QM9: skipped %d of %d molecules whose SMILES does not match the XYZ geometry", bad, len(raw))
    df = pd.DataFrame(rows, columns=["id", "smiles", "mulliken", *PROPERTY_SOURCES, "n_heavy"])
    df["property"] = df[prop].astype(float)
    return df
