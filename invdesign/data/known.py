"""What is already known: the reference that novelty and the nearest known neighbour are judged against.

A candidate is novel only when it is none of: every row of the campaign's source data set (all of QM9 or all
Materials Project elasticity cells, whatever ``max_rows``, ``max_atoms`` or the split; all rows of a user's
table) and every entry of the user's reference libraries (``filters.known_library``):

* molecules: a SMILES file (``.smi`` / ``.txt``: the first column of each line; ``#`` starts a comment) or a
  CSV file with a ``smiles`` column (e.g. a PubChem export);
* crystals: a folder of CIF files, or a JSON file of pymatgen objects (``ComputedStructureEntry`` /
  ``ComputedEntry`` with a structure, ``Structure``; e.g. a Materials Project or Alexandria export).

Molecules are compared by canonical SMILES without stereo (QM9 has none), crystals by reduced formula and
pymatgen's StructureMatcher (:func:`invdesign.chem.crystals.known_matches`).

DFT entries (``ComputedStructureEntry``) of a crystal library also bring their energies: put through pymatgen's
``MaterialsProject2020Compatibility`` (the corrections MP's own hull uses), they are the ``dft_energy_per_atom``
column, and the crystal oracle places each candidate on the hull of these DFT energies
(:func:`invdesign.oracles.hull.dft_hull_energies`): with an MP or Alexandria export of the candidate's
chemical systems, E_hull is against the real hull.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..chem.molecules import novelty_key
from ..errors import InvdesignError

log = logging.getLogger(__name__)


def _library_path(path: str) -> Path:
    from ..config.filters import library_path

    return library_path(path, "filters.known_library")


def read_smiles_library(path: str) -> pd.DataFrame:
    """``id``, ``smiles`` of a SMILES library (one per line, or a CSV with a ``smiles`` column), read line by line
    (a CSV: only its SMILES column)."""
    from .user_tables import header_columns

    p = _library_path(path)
    if p.suffix.lower() == ".csv":
        columns = header_columns(p)
        col = next((c for c in columns if str(c).lower() == "smiles"), None)
        if col is None:
            raise InvdesignError(f"{p}: no 'smiles' column (columns: {', '.join(map(str, columns[:8]))}); name "
                                 "the SMILES column 'smiles' or give a .smi file")
        smiles = pd.read_csv(p, usecols=[col], dtype=str)[col].astype(str).tolist()
    else:
        with open(p, encoding="utf-8", errors="replace") as fh:
            smiles = [line.split()[0] for line in fh if line.strip() and not line.lstrip().startswith("#")]
    return pd.DataFrame({"id": [f"{p.name}:{i + 1}" for i in range(len(smiles))], "smiles": smiles})


def _structures_from_json(p: Path) -> list:
    from monty.serialization import loadfn
    from pymatgen.core import Structure

    try:
        items = loadfn(p)
    except Exception as exc:  # noqa: BLE001  (monty/json raise many types)
        raise InvdesignError(f"{p}: not a readable JSON of pymatgen objects ({type(exc).__name__}); export "
                             "entries with monty.serialization.dumpfn") from None
    items = items if isinstance(items, list) else [items]
    energies = _mp2020_energies(p, items)
    out = []
    for i, it in enumerate(items):
        s = it if isinstance(it, Structure) else getattr(it, "structure", None)
        if s is None and isinstance(it, dict) and "structure" in it:
            s = Structure.from_dict(it["structure"])
        out.append((str(getattr(it, "entry_id", None) or (it.get("entry_id") if isinstance(it, dict) else None)
                        or f"{p.name}:{i}"), s, energies.get(i, float("nan"))))
    return out


def _mp2020_energies(p: Path, items: list) -> dict[int, float]:
    """Index -> MP2020-corrected energy per atom of the items that are computed entries with a structure; an entry
    the compatibility scheme rejects (e.g. a run type it does not know) has none and is logged."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    idx = [i for i, it in enumerate(items) if isinstance(it, ComputedStructureEntry)]
    if not idx:
        return {}
    compat = MaterialsProject2020Compatibility(check_potcar=False)
    out = {}
    for i in idx:
        try:
            done = compat.process_entry(items[i].copy(), clean=True)
        except Exception:  # noqa: BLE001  (one entry the scheme cannot handle has no DFT energy)
            done = None
        if done is not None:
            out[i] = float(done.energy_per_atom)
    if len(out) < len(idx):
        log.warning("%s: %d of %d DFT entries have no MP2020-compatible energy (run type or parameters the scheme "
                    "does not know); they count for novelty, not for the DFT hull", p, len(idx) - len(out), len(idx))
    log.info("%s: %d DFT entries with MP2020-corrected energies for the DFT hull", p, len(out))
    return out


def read_structure_library(path: str) -> pd.DataFrame:
    """``id``, ``formula``, ``structure``, ``dft_energy_per_atom`` of a crystal library (a folder of CIFs or a
    pymatgen JSON; the energy, MP2020-corrected eV/atom, only for DFT entries, else NaN)."""
    from ..chem.crystals import structure_to_record
    from .user_crystals import read_cif

    p = _library_path(path)
    if p.is_dir():
        pairs, bad = [], 0
        for f in sorted(p.glob("*.cif")):
            try:
                pairs.append((f"{p.name}/{f.stem}", read_cif(f, max_atoms=10**6), float("nan")))
            except ValueError:
                bad += 1
        if bad:
            log.warning("%s: %d unreadable CIFs left out of the known library", p, bad)
    else:
        pairs = _structures_from_json(p)
    rows = [{"id": i, "formula": s.composition.reduced_formula, "structure": structure_to_record(s),
             "dft_energy_per_atom": e} for i, s, e in pairs if s is not None]
    return pd.DataFrame(rows, columns=["id", "formula", "structure", "dft_energy_per_atom"])


def known_table(parts: list[tuple[str, pd.DataFrame]], key: str) -> pd.DataFrame:
    """One table of every known entry (``source`` names where each came from); molecules deduplicated by key."""
    frames = [df.assign(source=name) for name, df in parts if len(df)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", key, "source"])
    if key == "smiles":
        out["smiles"] = [novelty_key(s) for s in out["smiles"]]
        out = out.dropna(subset=["smiles"]).drop_duplicates("smiles")
    for name, df in parts:
        log.info("known %s: %d entries from %s", "molecules" if key == "smiles" else "structures", len(df), name)
    return out.reset_index(drop=True)
