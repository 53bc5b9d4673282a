"""Checks of a campaign's training data, run by ``prepare_dataset`` on every source (built-in or the user's).

Each check names, per row, what is wrong with it (None: nothing). :func:`enforce` then applies
``dataset.on_bad_rows``: ``skip`` drops the bad rows and logs how many each reason took; ``error`` stops with one
line naming the first bad row, its reason and the fix.

* labels: not a number, or an outlier (further than ``dataset.outlier_z`` robust standard deviations from the
  median: median absolute deviation x 1.4826);
* molecules: one neutral fragment, no radical, a heavy atom, elements the featurization knows, at most
  ``dataset.max_heavy_atoms`` heavy atoms, writable as SELFIES, not a size outlier (more heavy atoms than
  ``dataset.size_outlier_ratio`` times the data's 90th percentile);
* crystals: no net charge, no two atoms closer than half the sum of their covalent radii (Cordero et al. 2008);
* duplicates: rows of one molecule (canonical SMILES without stereo or isotope labels, which the featurization does
  not see: the molecule loaders remove them and log how many rows had them) or one structure (same reduced formula,
  matched by pymatgen's StructureMatcher with its default tolerances) become one row whose label is their median;
  when their labels spread more than ``dataset.duplicate_tolerance`` (default: a tenth of the labels' standard
  deviation), none of them is kept (conflicting labels). A molecule is then one row, so it can never sit in two
  splits (enantiomers and isotopologues included).
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from ..errors import InvdesignError

log = logging.getLogger("invdesign")


def enforce(df: pd.DataFrame, reasons: list, *, what: str, where: str, on_bad_rows: str) -> pd.DataFrame:
    """``df`` without the rows that have a reason (``skip``), or a one-line error naming the first (``error``)."""
    bad = [i for i, r in enumerate(reasons) if r]
    if not bad:
        return df
    if on_bad_rows == "error":
        i = bad[0]
        raise InvdesignError(f"{where}: {what} {df['id'].iloc[i]!r}: {reasons[i]} ({len(bad)} bad rows in all); fix "
                             "them or set dataset.on_bad_rows: skip")
    counts = Counter(_kind(reasons[i]) for i in bad)
    log.warning("%s: left out %d of %d %ss: %s (first: %s: %s)", where, len(bad), len(df), what,
                ", ".join(f"{n} {k}" for k, n in counts.most_common()), df["id"].iloc[bad[0]], reasons[bad[0]])
    return df.drop(index=df.index[bad]).reset_index(drop=True)


def _kind(reason: str) -> str:
    """The reason without its particulars ("atoms Na, Cl 0.10 A apart ..." -> "atoms too close")."""
    return reason.split(":")[0]


def label_problems(values, outlier_z: float | None) -> list:
    y = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
    out = [None if np.isfinite(v) else "label: not a finite number" for v in y]
    finite = y[np.isfinite(y)]
    if outlier_z and len(finite) >= 10:
        med = np.median(finite)
        mad = 1.4826 * np.median(np.abs(finite - med))
        if mad > 0:
            for i, v in enumerate(y):
                if out[i] is None and abs(v - med) > outlier_z * mad:
                    out[i] = f"label outlier: {v:.4g} is {abs(v - med) / mad:.0f} robust SDs from the median {med:.4g}"
    return out


def size_outliers(problems: list, sizes, ratio: float | None, unit: str) -> list:
    """``problems`` with the rows marked that are larger than ``ratio`` times the 90th percentile of the sizes of the
    rows without another problem (at least 20 such rows needed)."""
    sizes = np.asarray(sizes, float)
    good = [i for i, p in enumerate(problems) if p is None and np.isfinite(sizes[i])]
    if not ratio or len(good) < 20:
        return problems
    p90 = float(np.percentile(sizes[good], 90))
    out = list(problems)
    for i in good:
        if sizes[i] > ratio * p90:
            out[i] = (f"size outlier: {sizes[i]:.0f} {unit}, more than {ratio:g} x the data's 90th percentile "
                      f"({p90:.0f}); dataset.size_outlier_ratio")
    return out


def molecule_problem(smiles: str, max_heavy_atoms: int, elements: set[str]) -> str | None:
    from rdkit import Chem

    from ..chem.molecules import selfies_tokens

    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None:
        return "molecule: does not parse"
    if len(Chem.GetMolFrags(mol)) > 1:
        return "several fragments: a salt or mixture; give one molecule per row"
    charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
    if charge:
        return f"charged: net charge {charge:+d}"
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return "radical: unpaired electrons"
    if all(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):
        return "no heavy atom: hydrogen (or deuterium) only; the graphs hold heavy atoms"
    other = sorted({a.GetSymbol() for a in mol.GetAtoms()} - elements)
    if other:
        return f"unsupported elements: {', '.join(other)} (the featurization knows {', '.join(sorted(elements))})"
    if mol.GetNumAtoms() > max_heavy_atoms:
        return f"too large: {mol.GetNumAtoms()} heavy atoms > dataset.max_heavy_atoms = {max_heavy_atoms}"
    if selfies_tokens(smiles) is None:
        return "not writable as SELFIES: e.g. a valence SELFIES does not allow"
    return None


def structure_problem(record: str) -> str | None:
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    from ..chem.crystals import structure_from_record

    s = structure_from_record(record)
    try:
        charge = float(s.charge)
    except Exception:  # noqa: BLE001  (undecorated species have no charge)
        charge = 0.0
    if abs(charge) > 1e-6:
        return f"charged cell: net charge {charge:+g}"
    cap = 4.0
    centers, neighbors, images, dists = s.get_neighbor_list(r=cap)
    self_pair = (centers == neighbors) & ~np.any(images, axis=1)
    for i, j, d in zip(centers[~self_pair], neighbors[~self_pair], dists[~self_pair]):
        a, b = s[int(i)].specie.symbol, s[int(j)].specie.symbol
        bond = CovalentRadius.radius.get(a, 1.5) + CovalentRadius.radius.get(b, 1.5)  # Cordero et al. 2008
        if d < 0.5 * bond:
            return f"atoms too close: {a}-{b} {d:.2f} A apart, less than half their covalent radii ({bond:.2f} A)"
    return None


def duplicate_problems(df: pd.DataFrame, groups: list[list[int]], tolerance: float | None) -> tuple[list, dict]:
    """(reasons, {kept row: merged label}) for groups of rows that are one molecule or structure: the first row of
    a group keeps the group's median label, the others are duplicates; a group whose labels spread more than the
    tolerance is dropped whole."""
    y = pd.to_numeric(df["property"], errors="coerce").to_numpy(float)
    tol = tolerance if tolerance is not None else 0.1 * float(np.nanstd(y) or 1.0)
    reasons: list = [None] * len(df)
    merged = {}
    for g in groups:
        if len(g) < 2:
            continue
        vals = y[g]
        if np.nanmax(vals) - np.nanmin(vals) > tol:
            for i in g:
                reasons[i] = (f"conflicting duplicates: {len(g)} rows of one {'molecule' if 'smiles' in df else 'cell'}"
                              f" with labels {np.nanmin(vals):.4g} to {np.nanmax(vals):.4g} (tolerance {tol:.3g})")
            continue
        merged[g[0]] = float(np.nanmedian(vals))
        for i in g[1:]:
            reasons[i] = f"duplicate: merged into {df['id'].iloc[g[0]]!r}"
    return reasons, merged
