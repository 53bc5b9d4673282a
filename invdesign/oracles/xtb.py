"""GFN2-xTB verification of molecules with tblite: 3D embedding, geometry optimisation,
connectivity check, frontier orbitals, and sign-free atom-resolved HOMO/LUMO densities.

The HOMO/LUMO density on atom A is the Mulliken population of that orbital,
p_A = sum_{mu in A} c_mu (S c)_mu, which is quadratic in the coefficients and hence
independent of the orbital's arbitrary sign; hydrogens are summed onto their heavy atom,
so the result is aligned with the RDKit heavy-atom order and sums to 1.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd

from ..chem.geometry import embed  # noqa: F401  (re-exported: the SDF export and tests use it from here)
from . import ERROR_COLUMN, Oracle

log = logging.getLogger(__name__)

BOHR_PER_ANGSTROM = 1.0 / 0.52917721067
HARTREE_EV = 27.211386245988


def _adjacency_from_geometry(numbers, positions) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    table = Chem.GetPeriodicTable()
    block = f"{len(numbers)}\n\n" + "\n".join(
        f"{table.GetElementSymbol(int(z))} {x:.6f} {y:.6f} {w:.6f}" for z, (x, y, w) in zip(numbers, positions))
    geo = Chem.MolFromXYZBlock(block)
    rdDetermineBonds.DetermineConnectivity(geo)
    return Chem.GetAdjacencyMatrix(geo)


def _atom_projection(coeff: np.ndarray, overlap: np.ndarray, ao_atom: np.ndarray, n_atoms: int) -> np.ndarray:
    pop = coeff * (overlap @ coeff)
    return np.bincount(ao_atom, weights=pop, minlength=n_atoms)


def xtb_verify(smiles: str, *, seed: int = 0, fmax: float = 0.05, max_steps: int = 300) -> dict:
    """Optimise ``smiles`` with GFN2-xTB and report gap, connectivity and frontier-orbital densities.

    Never raises for a molecule: when any stage fails (embedding, optimisation, the single point or the orbital
    analysis after it) ``xtb_ok`` is False and ``oracle_error`` says which stage and why.
    """
    out: dict = {"xtb_ok": False, ERROR_COLUMN: ""}
    stage = ["3D embedding"]  # the stage running, appended to as the work goes on
    try:
        mol = embed(smiles, seed)
        if mol is None:
            out[ERROR_COLUMN] = "3D embedding failed"
            return out
        out.update(_optimise_and_analyse(mol, fmax=fmax, max_steps=max_steps, stage=stage))
    except Exception as exc:  # noqa: BLE001  (one molecule's failure is an error row, never a crashed job)
        out[ERROR_COLUMN] = f"{stage[-1]} failed: {type(exc).__name__}: {exc}"[:300]
    return out


def _optimise_and_analyse(mol, *, fmax: float, max_steps: int, stage: list) -> dict:
    from ase import Atoms
    from ase.optimize import BFGS
    from rdkit import Chem
    from tblite.ase import TBLite
    from tblite.interface import Calculator

    stage.append("xTB optimisation")
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    atoms = Atoms(numbers=numbers, positions=mol.GetConformer().GetPositions())
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    opt = BFGS(atoms, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    stage.append("xTB single point")
    calc = Calculator("GFN2-xTB", numbers, atoms.get_positions() * BOHR_PER_ANGSTROM)
    calc.set("verbosity", 0)
    calc.set("save-integrals", 1)
    res = calc.singlepoint()
    stage.append("orbital analysis")
    eps = np.asarray(res.get("orbital-energies")) * HARTREE_EV
    occ = np.asarray(res.get("orbital-occupations"))
    homo = int(np.flatnonzero(occ > 1.0)[-1])
    lumo = homo + 1
    coeff = np.asarray(res.get("orbital-coefficients"))
    overlap = np.asarray(res.get("overlap-matrix"))
    ao_atom = np.asarray(calc.get("shell-map"))[np.asarray(calc.get("orbital-map"))]
    n = len(numbers)
    # tblite returns coefficients with orbitals as rows or columns depending on version: pick the layout
    # whose populations sum to one
    cols = coeff if np.isclose(np.sum(coeff[:, homo] * (overlap @ coeff[:, homo])), 1.0, atol=1e-3) else coeff.T
    p_homo = _atom_projection(cols[:, homo], overlap, ao_atom, n)
    p_lumo = _atom_projection(cols[:, lumo], overlap, ao_atom, n) if lumo < cols.shape[1] else np.full(n, np.nan)
    charges = np.asarray(res.get("charges"))

    heavy = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
    owner = {a.GetIdx(): (a.GetIdx() if a.GetAtomicNum() > 1 else a.GetNeighbors()[0].GetIdx())
             for a in mol.GetAtoms()}

    def grouped(values):
        acc = {i: 0.0 for i in heavy}
        for i, v in enumerate(values):
            acc[owner[i]] += float(v)
        return [acc[i] for i in heavy]

    stage.append("connectivity check")
    before = Chem.GetAdjacencyMatrix(mol)
    after = _adjacency_from_geometry(numbers, atoms.get_positions())
    conf = mol.GetConformer()
    for i, p in enumerate(atoms.get_positions()):
        conf.SetAtomPosition(i, p.tolist())
    return dict(
        xtb_ok=True, xtb_converged=converged, xtb_connectivity_ok=bool(np.array_equal(before, after)),
        xtb_energy_ev=float(res.get("energy")) * HARTREE_EV, xtb_homo_ev=float(eps[homo]),
        xtb_lumo_ev=float(eps[lumo]), xtb_gap_ev=float(eps[lumo] - eps[homo]),
        xtb_homo_density=grouped(p_homo), xtb_lumo_density=grouped(p_lumo), xtb_charges=grouped(charges),
        molblock=Chem.MolToMolBlock(mol),
    )


def fit_calibration(xtb_gap, dft_gap) -> dict:
    """Least-squares line DFT ~ slope * xTB + intercept, with correlation and residual spread."""
    x, y = np.asarray(xtb_gap, float), np.asarray(dft_gap, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        raise ValueError("need at least 3 molecules to calibrate")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    return {"slope": float(slope), "intercept": float(intercept), "r": float(np.corrcoef(x, y)[0, 1]),
            "residual_std_ev": float(np.std(resid, ddof=2) if len(x) > 2 else np.nan),
            "mae_ev": float(np.mean(np.abs(resid))), "n": int(len(x))}


def apply_calibration(xtb_gap, calib: dict):
    return calib["slope"] * np.asarray(xtb_gap, float) + calib["intercept"]


def target_probability(mean, sigma: float, target: dict) -> np.ndarray:
    """P(low <= value <= high) for a normal with the given mean (array) and spread."""
    from scipy.stats import norm

    from ..targets import target_bounds

    lo, hi = target_bounds(target)
    mean = np.asarray(mean, float)
    return norm.cdf((hi - mean) / sigma) - norm.cdf((lo - mean) / sigma)


def run_xtb(smiles_list, settings, what: str) -> list[dict]:
    """:func:`xtb_verify` on each SMILES with the oracle's settings, logging progress every 10 molecules."""
    import time

    out, t0 = [], time.monotonic()
    for i, smi in enumerate(smiles_list, start=1):
        out.append(xtb_verify(smi, seed=settings.seed, fmax=settings.fmax, max_steps=settings.max_steps))
        if i % 10 == 0 or i == len(smiles_list):
            el = time.monotonic() - t0
            log.info("GFN2-xTB %s: %d/%d molecules [%.0fs elapsed, ETA %.0fs]", what, i, len(smiles_list), el,
                     el / i * (len(smiles_list) - i))
    return out


class XtbOracle(Oracle):
    """GFN2-xTB check of molecules: optimised geometry, connectivity kept, frontier orbitals; the xTB quantity of
    the campaign property mapped to the data's DFT scale by a line fitted on training molecules (``prepare``)."""

    name = "xtb"
    columns = {
        "xtb_ok": "xTB optimisation and single point ran",
        "xtb_converged": "the geometry optimisation met fmax within max_steps",
        "xtb_connectivity_ok": "the optimised geometry has the bonds of the SMILES (no fragmentation or rearrangement)",
        "xtb_energy_ev": "GFN2-xTB total energy (eV)",
        "xtb_homo_ev": "xTB HOMO energy (eV)", "xtb_lumo_ev": "xTB LUMO energy (eV)",
        "xtb_gap_ev": "xTB HOMO-LUMO gap (eV)",
        "xtb_homo_density": "HOMO density on each heavy atom (Mulliken population of |psi|^2, JSON list)",
        "xtb_lumo_density": "LUMO density on each heavy atom (JSON list)",
        "xtb_charges": "xTB partial charge of each heavy atom with its hydrogens (JSON list)",
        "molblock": "the xTB-optimised geometry (MDL mol block)",
        ERROR_COLUMN: "why xTB could not check the molecule ('' when it could)",
    }

    @property
    def quantity(self) -> str | None:
        """The xTB column calibrated onto the campaign property (None: the property has no xTB counterpart)."""
        from ..properties import XTB_QUANTITY

        return XTB_QUANTITY.get(self.property.name) if self.measures else None

    def prepare(self, dataset: pd.DataFrame) -> dict:
        """Fit property ~ slope * xTB counterpart + intercept on ``calibration_size`` training molecules."""
        s = self.settings
        if self.quantity is None:
            return {"applicable": False, "property": self.property_column, "reason": self.not_measured_note}
        train = dataset[dataset["split"] == "train"]
        sample = train.sample(n=min(s.calibration_size, len(train)), random_state=s.seed)
        runs = run_xtb(sample["smiles"].tolist(), s, "calibration")
        ok = [bool(r.get("xtb_ok") and r.get("xtb_connectivity_ok")) for r in runs]
        x = np.array([r[self.quantity] if good else np.nan for r, good in zip(runs, ok)])
        y = sample["property"].to_numpy(float)
        fit = fit_calibration(x, y)
        log.info("calibration on %d training molecules: %s = %.3f * %s + %.3f (r %.3f, residual %.3f)", fit["n"],
                 self.property_column, fit["slope"], self.quantity, fit["intercept"], fit["r"],
                 fit["residual_std_ev"])
        return {"applicable": True, "property": self.property_column, "xtb_quantity": self.quantity, **fit,
                "n_failed": int(len(runs) - sum(ok)),
                "points": [{"id": i, "xtb": float(a), "reference": float(b)}
                           for i, a, b in zip(sample["id"], x, y) if np.isfinite(a)]}

    def evaluate(self, batch: pd.DataFrame, dataset: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        runs = run_xtb(batch["smiles"].tolist(), self.settings, "verification")
        out = batch.reset_index(drop=True).copy()
        for key in self.columns:
            values = [r.get(key) for r in runs]
            if key.endswith(("density", "charges")):
                values = [json.dumps([round(v, 4) for v in x]) if x is not None else None for x in values]
            out[key] = pd.Series(values, index=out.index, dtype=object)
        return out

    def finalize(self, checked, candidates, dataset, prepared):
        from ..chem.descriptors import nearest_neighbours, qed_and_sa
        from ..targets import distance_to_target

        t0 = time.monotonic()
        cands = candidates[candidates["passes"].astype(bool)].reset_index(drop=True)
        cands["qed"], cands["sa_score"] = qed_and_sa(cands["smiles"])
        cands["nearest_known"], cands["nearest_known_similarity"] = nearest_neighbours(cands["smiles"],
                                                                                     dataset["smiles"])
        log.info("QED, SA score and nearest known molecule for %d candidates in %.1fs", len(cands),
                 time.monotonic() - t0)
        cols = list(self.columns)
        cands = cands.merge(checked[["rank", *cols]], on="rank", how="left")
        cands["xtb_verified"] = cands["xtb_ok"].eq(True) & cands["xtb_connectivity_ok"].eq(True)  # NaN: not run
        if prepared.get("applicable"):
            est = apply_calibration(pd.to_numeric(cands[prepared["xtb_quantity"]], errors="coerce"), prepared)
            est = np.where(cands["xtb_verified"], est, np.nan)
            cands["xtb_calibrated"] = est
            cands["xtb_in_target"] = self.in_target(est)
            cands["xtb_distance_to_target"] = distance_to_target(est, self.target)
            cands["predictor_vs_xtb"] = np.abs(cands["predicted_property"].to_numpy(float) - est)
            # a linear calibration is a conditional mean with a residual spread: report the chance that the
            # DFT-scale value lies in the target, not only whether the point estimate does
            cands["xtb_target_probability"] = target_probability(est, prepared["residual_std_ev"], self.target)
        else:
            cands["xtb_in_target"] = pd.Series(pd.NA, index=cands.index, dtype="boolean")
            cands["xtb_target_probability"] = np.nan
            cands["property_check"] = self.not_measured_note
            log.warning("%s", self.not_measured_note)
        cands = cands.sort_values(["xtb_verified", "xtb_target_probability", "rank"], ascending=[False, False, True],
                                  kind="stable", na_position="last").reset_index(drop=True)
        cands.insert(0, "final_rank", np.arange(1, len(cands) + 1))
        ran = cands["xtb_ok"].notna()
        verified = cands[cands["xtb_verified"]]
        metrics = {"oracle": self.name, "n_candidates": int(len(cands)), "n_xtb_run": int(ran.sum()),
                   "n_xtb_verified": int(len(verified)),
                   "n_xtb_broken_connectivity": int((cands["xtb_ok"].eq(True)
                                                     & cands["xtb_connectivity_ok"].eq(False)).sum()),
                   "n_oracle_errors": int((cands[ERROR_COLUMN].fillna("") != "").sum()),
                   "property_measured": bool(prepared.get("applicable")),
                   "n_xtb_in_target": int(cands["xtb_in_target"].eq(True).sum()),
                   "expected_xtb_hits": float(np.nansum(cands["xtb_target_probability"])),
                   "xtb_in_target_share": float(cands["xtb_in_target"].eq(True).sum() / max(len(verified), 1)),
                   "predictor_vs_xtb_mae": float(np.nanmean(cands["predictor_vs_xtb"]))
                   if "predictor_vs_xtb" in cands and cands["predictor_vs_xtb"].notna().any() else None,
                   "calibration": {k: v for k, v in prepared.items() if k != "points"}}
        log.info("xTB verified %d of %d checked candidates (connectivity kept); %d inside the target by calibrated "
                 "xTB, %.1f expected from the calibration's spread", metrics["n_xtb_verified"], metrics["n_xtb_run"],
                 metrics["n_xtb_in_target"], metrics["expected_xtb_hits"])
        return cands, metrics

    def report_extras(self, verified):
        hist, funnel = {}, {}
        if "xtb_calibrated" in verified:
            hist["xTB-verified (calibrated)"] = verified["xtb_calibrated"].to_numpy(float)
        funnel["xTB verified"] = int(verified["xtb_verified"].sum())
        return hist, funnel
