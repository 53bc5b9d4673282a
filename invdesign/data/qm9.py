"""QM9 from the ``qm9pack`` package: SMILES, geometry-derived Mulliken group charges and
frontier-orbital energies in eV.

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

log = logging.getLogger(__name__)

HARTREE_EV = 27.211386245988
_RAW_COLUMNS = ["Index", "SMILES", "Elements", "XYZ_Ang", "Mulliken_pop", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"]
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
CACHE_NAME = "qm9_raw_v1.parquet"


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
    """Return (canonical heavy-atom SMILES, per-heavy-atom group charges in its atom order) or None."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or len(elements) != len(xyz) or len(charges) != len(elements):
        return None
    # canonical atom order first, so that the charges follow the canonical SMILES
    canon = Chem.MolToSmiles(mol)
    mol = Chem.MolFromSmiles(canon)  # atoms now in the order they appear in the canonical SMILES
    block = f"{len(elements)}\n\n" + "\n".join(f"{e} {x:.6f} {y:.6f} {z:.6f}" for e, (x, y, z) in zip(elements, xyz))
    geo = Chem.MolFromXYZBlock(block)
    if geo is None:
        return None
    try:
        rdDetermineBonds.DetermineConnectivity(geo)
    except Exception:  # noqa: BLE001  (rdkit raises several types)
        return None
    heavy = [a.GetIdx() for a in geo.GetAtoms() if a.GetAtomicNum() > 1]
    q = np.asarray(charges, float).copy()
    grouped = {i: q[i] for i in heavy}
    for a in geo.GetAtoms():
        if a.GetAtomicNum() == 1:
            nbrs = [n.GetIdx() for n in a.GetNeighbors() if n.GetAtomicNum() > 1]
            if len(nbrs) != 1:
                return None
            grouped[nbrs[0]] += q[a.GetIdx()]
    skeleton = Chem.RWMol()
    index = {}
    for i in heavy:
        index[i] = skeleton.AddAtom(Chem.Atom(geo.GetAtomWithIdx(i).GetAtomicNum()))
    for b in geo.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        if i in index and j in index:
            skeleton.AddBond(index[i], index[j], Chem.BondType.SINGLE)
    generic = Chem.RWMol(mol)
    for a in generic.GetAtoms():
        a.SetIsAromatic(False)
        a.SetNoImplicit(True)
    for b in generic.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    if generic.GetNumBonds() != skeleton.GetNumBonds() or generic.GetNumAtoms() != skeleton.GetNumAtoms():
        return None
    for m in (generic, skeleton):
        m.UpdatePropertyCache(strict=False)
    match = skeleton.GetSubstructMatch(generic, useChirality=False)
    if len(match) != generic.GetNumAtoms():
        return None
    heavy_of_skeleton = {v: k for k, v in index.items()}
    return canon, [float(grouped[heavy_of_skeleton[match[i]]]) for i in range(generic.GetNumAtoms())]


def load_qm9(dataset_cfg: dict, cache_dir: str | Path) -> pd.DataFrame:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    raw = raw_table(cache_dir)
    max_rows = dataset_cfg.get("max_rows")
    if max_rows and max_rows < len(raw):
        raw = raw.sample(n=max_rows, random_state=dataset_cfg.get("seed", 0)).sort_values("Index")
    rows, bad = [], 0
    for done, r in enumerate(raw.itertuples(index=False), start=1):
        if done % 10000 == 0:
            log.info("QM9: parsed %d/%d molecules", done, len(raw))
        res = group_charges(r.SMILES, parse_elements(r.Elements), parse_numbers(r.XYZ_Ang).reshape(-1, 3),
                            parse_numbers(r.Mulliken_pop))
        if res is None:
            bad += 1
            if dataset_cfg.get("on_bad_rows", "skip") == "error":
                raise InvdesignError(f"QM9 (qm9pack) molecule {r.Index} ({r.SMILES}): SMILES and XYZ geometry do not "
                                     "match; set dataset.on_bad_rows: skip to leave such rows out")
            continue
        smiles, charges = res
        rows.append({"id": f"qm9_{int(r.Index):06d}", "smiles": smiles, "mulliken": charges,
                     "homo_ev": r.HOMO_au * HARTREE_EV, "lumo_ev": r.LUMO_au * HARTREE_EV,
                     "gap_ev": r.HOMO_LUMO_gap_au * HARTREE_EV, "n_heavy": len(charges)})
    if bad:
        log.warning("QM9: skipped %d of %d molecules whose SMILES does not match the XYZ geometry", bad, len(raw))
    df = pd.DataFrame(rows)
    prop = dataset_cfg.get("property_column", "gap_ev")
    df["property"] = df[prop].astype(float)
    return df
