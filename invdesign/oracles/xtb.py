"""GFN2-xTB verification of molecules with tblite: 3D embedding, geometry optimisation,
connectivity check, frontier orbitals, and sign-free atom-resolved HOMO/LUMO densities.

The HOMO/LUMO density on atom A is the Mulliken population of that orbital,
p_A = sum_{mu in A} c_mu (S c)_mu, which is quadratic in the coefficients and hence
independent of the orbital's arbitrary sign; hydrogens are summed onto their heavy atom,
so the result is aligned with the RDKit heavy-atom order and sums to 1.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..chem.geometry import embed  # noqa: F401  (re-exported: the SDF export and tests use it from here)
from ..config.oracles import XtbOracleSettings
from ..properties import HARTREE_EV
from .dft import DEBYE_PER_AU
from . import ERROR_COLUMN, MEASURED, CardField, CardFigure, Measure, Oracle, Tier

log = logging.getLogger(__name__)

BOHR_PER_ANGSTROM = 1.0 / 0.52917721067


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


def xtb_verify(smiles: str, *, seed: int | None = None, fmax: float | None = None, max_steps: int | None = None,
               conformers: int | None = None, polarizability: bool = False) -> dict:
    """Optimise ``smiles`` with GFN2-xTB and report gap, connectivity and frontier-orbital densities.

    Settings left out take :class:`~invdesign.config.oracles.XtbOracleSettings`' defaults. ``polarizability`` adds
    ``xtb_polarizability_bohr3`` (:func:`xtb_polarizability`) at the kept geometry.

    ``conformers`` > 1 embeds that many ETKDG geometries (seeds ``seed``, ``seed + 1``, ...; a SMILES without
    stereo can give different stereoisomers too), optimises each and keeps the lowest xTB energy among those that
    keep the SMILES' connectivity (``xtb_conformers`` says how many were tried).

    Never raises for a molecule: when any stage fails (embedding, optimisation, the single point or the orbital
    analysis after it) ``xtb_ok`` is False and ``oracle_error`` says which stage and why.
    """
    from ..config.oracles import XtbOracleSettings

    default = XtbOracleSettings()  # a setting left out takes the oracle's default: one place holds it
    seed, fmax, max_steps, conformers = (default.seed if seed is None else seed, fmax or default.fmax,
                                         max_steps or default.max_steps, conformers or default.conformers)
    runs = [_verify_one(smiles, seed=seed + k, fmax=fmax, max_steps=max_steps) for k in range(max(conformers, 1))]
    good = [r for r in runs if r.get("xtb_ok") and r.get("xtb_connectivity_ok")]
    best = min(good, key=lambda r: r["xtb_energy_ev"]) if good else runs[0]
    if polarizability and best.get("xtb_ok"):
        best["xtb_polarizability_bohr3"] = xtb_polarizability(best["molblock"])
    return {**best, "xtb_conformers": len(runs)}


def _xtb_singlepoint(numbers, positions_bohr, field_au=None):
    """A GFN2-xTB single point (tblite), in a uniform electric field (atomic units) where one is given."""
    from tblite.interface import Calculator
    from tblite.library import ffi

    calc = Calculator("GFN2-xTB", numbers, positions_bohr)
    calc.set("verbosity", 0)
    if field_au is not None:
        calc.add("electric-field", ffi.new("double[3]", [float(f) for f in field_au]))
    return calc.singlepoint()


def xtb_polarizability(molblock: str, field_au: float = 1e-3) -> float:
    """Isotropic static GFN2-xTB polarizability (bohr^3) at the geometry of ``molblock``: the mean of the diagonal of
    d(mu)/dF by forward finite fields. GFN2-xTB's minimal basis gives about 55-65% of the B3LYP value on QM9 molecules;
    the oracle's calibration maps it onto the data's scale."""
    from rdkit import Chem

    mol = Chem.MolFromMolBlock(molblock, removeHs=False)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    pos = mol.GetConformer().GetPositions() * BOHR_PER_ANGSTROM
    d0 = np.asarray(_xtb_singlepoint(numbers, pos).get("dipole"))
    diag = [(np.asarray(_xtb_singlepoint(numbers, pos, np.eye(3)[i] * field_au).get("dipole"))[i] - d0[i]) / field_au
            for i in range(3)]
    return float(np.mean(diag))


def _verify_one(smiles: str, *, seed: int, fmax: float, max_steps: int) -> dict:
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
        xtb_dipole_debye=float(np.linalg.norm(np.asarray(res.get("dipole"))) * DEBYE_PER_AU),
        xtb_homo_density=grouped(p_homo), xtb_lumo_density=grouped(p_lumo), xtb_charges=grouped(charges),
        molblock=Chem.MolToMolBlock(mol),
    )


def fit_calibration(xtb_value, reference, *, folds: int = 5, seed: int = 0) -> dict:
    """Monotone calibration reference ~ f(xTB) with out-of-fold residuals for honest intervals.

    A straight line fitted on data-set molecules regresses to their mean: with a slope well below one it maps an
    xTB gap far below the data's range onto a value inside a typical target window. A monotone fit instead only
    interpolates between the calibration molecules (:func:`apply_calibration` gives no estimate outside their xTB
    range), and the residuals of K-fold held-out predictions give the spread of the estimate
    (:func:`target_probability`). The fit is centred isotonic regression (Oron and Flournoy, 2017): the isotonic
    fit's blocks of equal value become single points at their molecules' mean xTB value, joined by straight lines
    (continued to the ends of the range), so that the map rises strictly and a run of molecules with different
    xTB values never shares one estimate (a plain isotonic fit gave 15 candidates with xTB gaps of 1.8-2.1 eV the
    same 4.55 eV). The Pearson ``r`` and the least-squares line are kept for the record.
    """
    from scipy.optimize import isotonic_regression

    x, y = np.asarray(xtb_value, float), np.asarray(reference, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        raise ValueError("need at least 3 molecules to calibrate")

    def knots(xs, ys):
        order = np.argsort(xs, kind="stable")
        xs, fit = xs[order], isotonic_regression(ys[order]).x
        block = np.concatenate([[0], np.cumsum(np.diff(fit) != 0)])  # the isotonic fit's runs of one value
        cx = np.array([xs[block == b].mean() for b in range(block[-1] + 1)])
        cy = np.array([fit[block == b][0] for b in range(block[-1] + 1)])
        if len(cx) > 1:  # the end segments continued to the ends of the calibration range
            def slope(i, j):
                return (cy[j] - cy[i]) / (cx[j] - cx[i]) if cx[j] > cx[i] else 0.0

            cy = np.concatenate([[cy[0] - slope(0, 1) * (cx[0] - xs[0])], cy,
                                 [cy[-1] + slope(-2, -1) * (xs[-1] - cx[-1])]])
            cx = np.concatenate([[xs[0]], cx, [xs[-1]]])
        else:
            cx, cy = np.array([xs[0], xs[-1]]), np.array([cy[0], cy[0]])
        return cx, cy

    kx, ky = knots(x, y)
    fold = np.random.default_rng(seed).permutation(len(x)) % max(2, min(folds, len(x)))
    resid = np.full(len(x), np.nan)
    for f in np.unique(fold):
        train, held = fold != f, fold == f
        if train.sum() < 2:
            continue
        fx, fy = knots(x[train], y[train])
        inside = held & (x >= fx[0]) & (x <= fx[-1])
        resid[inside] = y[inside] - np.interp(x[inside], fx, fy)
    resid = resid[np.isfinite(resid)]
    slope, intercept = np.polyfit(x, y, 1)
    return {"method": "centred isotonic", "knots_x": kx.tolist(), "knots_y": ky.tolist(),
            "x_min": float(kx[0]), "x_max": float(kx[-1]), "residuals": resid.tolist(),
            "residual_std_ev": float(np.std(resid, ddof=1)) if len(resid) > 1 else float("nan"),
            "mae_ev": float(np.mean(np.abs(resid))) if len(resid) else float("nan"),
            "r": float(np.corrcoef(x, y)[0, 1]), "linear_slope": float(slope), "linear_intercept": float(intercept),
            "n": int(len(x))}


def apply_calibration(xtb_value, calib: dict) -> np.ndarray:
    """The calibrated estimate of each xTB value; NaN outside the calibration molecules' xTB range (no
    extrapolation: an xTB value unlike any calibration molecule's has no estimate)."""
    x = np.asarray(xtb_value, float)
    kx, ky = np.asarray(calib["knots_x"], float), np.asarray(calib["knots_y"], float)
    est = np.interp(x, kx, ky)
    return np.where(np.isfinite(x) & (x >= calib["x_min"]) & (x <= calib["x_max"]), est, np.nan)


def target_probability(mean, calib: dict, target: dict) -> np.ndarray:
    """P(low <= value <= high) for each estimate, from the calibration's out-of-fold residuals (NaN where there is
    no estimate)."""
    from ..targets import target_bounds

    lo, hi = target_bounds(target)
    mean = np.asarray(mean, float)
    r = np.asarray(calib.get("residuals") or [0.0], float)
    values = mean[:, None] + r[None, :]
    p = ((values >= lo) & (values <= hi)).mean(axis=1)
    return np.where(np.isfinite(mean), p, np.nan)


def calibration_note(xtb_value, calib: dict, quantity: str) -> list[str]:
    """Why a row has no calibrated estimate ('' where it has one)."""
    out = []
    for v in np.asarray(xtb_value, float):
        if not np.isfinite(v):
            out.append("")
        elif v < calib["x_min"]:
            out.append(f"{quantity} {v:.2f} below the calibration range {calib['x_min']:.2f}-{calib['x_max']:.2f}")
        elif v > calib["x_max"]:
            out.append(f"{quantity} {v:.2f} above the calibration range {calib['x_min']:.2f}-{calib['x_max']:.2f}")
        else:
            out.append("")
    return out


def run_xtb(smiles_list, settings, what: str, polarizability: bool = False) -> list[dict]:
    """:func:`xtb_verify` on each SMILES with the oracle's settings, logging progress every 10 molecules."""
    import time

    out, t0 = [], time.monotonic()
    for i, smi in enumerate(smiles_list, start=1):
        out.append(xtb_verify(smi, seed=settings.seed, fmax=settings.fmax, max_steps=settings.max_steps,
                              conformers=settings.conformers, polarizability=polarizability))
        if i % 10 == 0 or i == len(smiles_list):
            el = time.monotonic() - t0
            log.info("GFN2-xTB %s: %d/%d molecules [%.0fs elapsed, ETA %.0fs]", what, i, len(smiles_list), el,
                     el / i * (len(smiles_list) - i))
    return out


class XtbOracle(Oracle):
    """GFN2-xTB check of molecules: optimised geometry, connectivity kept, frontier orbitals; the xTB quantity of
    the campaign property mapped to the data's DFT scale by a line fitted on training molecules (``prepare``)."""

    settings_class = XtbOracleSettings
    domain = "molecules"
    default = True
    tiers = (
        Tier("xTB", {"gap_ev": Measure("xtb_calibrated", "eV", raw="xtb_gap_ev"),
                     "homo_ev": Measure("xtb_calibrated", "eV", raw="xtb_homo_ev"),
                     "lumo_ev": Measure("xtb_calibrated", "eV", raw="xtb_lumo_ev"),
                     "dipole_debye": Measure("xtb_calibrated", "D", raw="xtb_dipole_debye"),
                     "polarizability_bohr3": Measure("xtb_calibrated", "bohr^3", raw="xtb_polarizability_bohr3")},
             probability="xtb_target_probability", note="xtb_calibration_note",
             figures=(CardFigure("orbital_density", "HOMO density (xTB)", {"density": "xtb_homo_density"}),
                      CardFigure("orbital_density", "LUMO density (xTB)", {"density": "xtb_lumo_density"})),
             large=("molblock", "xtb_homo_density", "xtb_lumo_density", "xtb_charges")),
        Tier("DFT", {"gap_ev": Measure("dft_gap_ev", "eV"), "homo_ev": Measure("dft_homo_ev", "eV"),
                     "lumo_ev": Measure("dft_lumo_ev", "eV"), "dipole_debye": Measure("dft_dipole_debye", "D"),
                     "polarizability_bohr3": Measure("dft_polarizability_bohr3", "bohr^3")},
             error="dft_error", error_model="dft_protocol_qm9.json", probability="dft_target_probability",
             card=(CardField("chance the DFT value is in the target", "dft_target_probability", explain=False),)),
    )
    report_columns = ("xtb_target_probability",)
    columns = {
        "xtb_ok": "xTB optimisation and single point ran",
        "xtb_converged": "the geometry optimisation met fmax within max_steps",
        "xtb_connectivity_ok": "the optimised geometry has the bonds of the SMILES (no fragmentation or rearrangement)",
        "xtb_energy_ev": "GFN2-xTB total energy (eV)",
        "xtb_homo_ev": "xTB HOMO energy (eV)", "xtb_lumo_ev": "xTB LUMO energy (eV)",
        "xtb_gap_ev": "xTB HOMO-LUMO gap (eV)",
        "xtb_dipole_debye": "xTB dipole moment, norm (Debye)",
        "xtb_polarizability_bohr3": "xTB isotropic polarizability by finite fields (bohr^3; only where the campaign "
                                    "targets the polarizability)",
        "xtb_homo_density": "HOMO density on each heavy atom (Mulliken population of |psi|^2, JSON list)",
        "xtb_lumo_density": "LUMO density on each heavy atom (JSON list)",
        "xtb_charges": "xTB partial charge of each heavy atom with its hydrogens (JSON list)",
        "molblock": "the xTB-optimised geometry (MDL mol block)",
        ERROR_COLUMN: "why xTB could not check the molecule ('' when it could)",
    }

    def table_columns(self):
        return [("dft_confirmed", ""), (MEASURED, ""), ("dft_target_probability", ""), ("dft_choice_probability", ""),
                ("xtb_target_probability", ""),
                ("predicted_property", "{unit}"), ("qed", ""), ("sa_score", ""), ("nearest_known_similarity", ""),
                ("generator", ""), ("dft_error", ""), (ERROR_COLUMN, "")]

    @property
    def quantity(self) -> str | None:
        """The xTB column calibrated onto the campaign property (None: the property has no xTB counterpart)."""
        m = self.tier_measure(self.tiers[0])
        return m.raw if m else None

    @property
    def _polarizability(self) -> bool:
        """Whether the xTB tier computes the polarizability (three more single points a molecule)."""
        return self.quantity == "xtb_polarizability_bohr3"

    def prepare(self, dataset: pd.DataFrame) -> dict:
        """Fit property ~ slope * xTB counterpart + intercept on ``calibration_size`` training molecules."""
        s = self.settings
        if self.quantity is None:
            return {"applicable": False, "property": self.property_column, "reason": self.not_measured_note}
        train = dataset[dataset["split"] == "train"]
        sample = train.sample(n=min(s.calibration_size, len(train)), random_state=s.seed)
        runs = run_xtb(sample["smiles"].tolist(), s, "calibration", self._polarizability)
        ok = [bool(r.get("xtb_ok") and r.get("xtb_connectivity_ok")) for r in runs]
        x = np.array([r[self.quantity] if good else np.nan for r, good in zip(runs, ok)])
        y = sample["property"].to_numpy(float)
        fit = fit_calibration(x, y)
        log.info("centred isotonic calibration of %s on %s over %d training molecules (xTB range %.2f-%.2f; r %.3f; "
                 "held-out MAE %.3f, residual std %.3f)", self.property_column, self.quantity, fit["n"], fit["x_min"],
                 fit["x_max"], fit["r"], fit["mae_ev"], fit["residual_std_ev"])
        return {"applicable": True, "property": self.property_column, "xtb_quantity": self.quantity, **fit,
                "n_failed": int(len(runs) - sum(ok)),
                "points": [{"id": i, "xtb": float(a), "reference": float(b)}
                           for i, a, b in zip(sample["id"], x, y) if np.isfinite(a)]}

    def evaluate(self, batch: pd.DataFrame, dataset: pd.DataFrame, prepared: dict) -> pd.DataFrame:
        runs = run_xtb(batch["smiles"].tolist(), self.settings, "verification", self._polarizability)
        out = batch.reset_index(drop=True).copy()
        for key in self.columns:
            values = [r.get(key) for r in runs]
            if key.endswith(("density", "charges")):
                values = [json.dumps([round(v, 4) for v in x]) if x is not None else None for x in values]
            out[key] = pd.Series(values, index=out.index, dtype=object)
        return out

    def finalize(self, checked, candidates, known, prepared):
        from ..chem.descriptors import nearest_neighbours, qed_and_sa
        from ..targets import distance_to_target

        t0 = time.monotonic()
        cands = candidates[candidates["passes"].astype(bool)].reset_index(drop=True)
        if not {"qed", "sa_score"} <= set(cands):  # filter_rank computed them already for filters.objectives
            cands["qed"], cands["sa_score"] = qed_and_sa(cands["smiles"])
        cands["nearest_known"], cands["nearest_known_similarity"] = nearest_neighbours(cands["smiles"],
                                                                                     known["smiles"])
        log.info("QED, SA score and nearest known molecule for %d candidates in %.1fs", len(cands),
                 time.monotonic() - t0)
        cols = list(self.columns)
        cands = cands.merge(checked[["rank", *cols]], on="rank", how="left")
        cands["xtb_verified"] = cands["xtb_ok"].eq(True) & cands["xtb_connectivity_ok"].eq(True)  # NaN: not run
        choice = None
        if prepared.get("applicable"):
            raw = pd.to_numeric(cands[prepared["xtb_quantity"]], errors="coerce").where(cands["xtb_verified"])
            est = apply_calibration(raw, prepared)
            cands["xtb_calibrated"] = est
            cands["xtb_calibration_note"] = calibration_note(raw, prepared, prepared["xtb_quantity"])
            cands["xtb_in_target"] = self.in_target(est)
            cands["xtb_distance_to_target"] = distance_to_target(est, self.target)
            cands["predictor_vs_xtb"] = np.abs(cands["predicted_property"].to_numpy(float) - est)
            # the calibration is a conditional estimate with a held-out residual spread: report the chance that
            # the data-scale value lies in the target, not only whether the point estimate does
            cands["xtb_target_probability"] = target_probability(est, prepared, self.target)
            if self._dft_tier():
                cands, choice = self._confirm_chance(cands, prepared)
        else:
            cands["xtb_in_target"] = pd.Series(pd.NA, index=cands.index, dtype="boolean")
            cands["xtb_target_probability"] = np.nan
            cands["property_check"] = self.not_measured_note
            log.warning("%s", self.not_measured_note)
        order = [c for c in ("xtb_verified", "dft_choice_probability", "xtb_target_probability") if c in cands]
        cands = cands.sort_values([*order, "rank"], ascending=[*(False for _ in order), True], kind="stable",
                                  na_position="last").reset_index(drop=True)
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
                   "n_outside_calibration": int((cands.get("xtb_calibration_note", pd.Series(dtype=str))
                                                 .fillna("") != "").sum()),
                   "dft_choice": choice,
                   "calibration": {k: v for k, v in prepared.items()
                                   if k not in ("points", "knots_x", "knots_y", "residuals")}}
        log.info("xTB verified %d of %d checked candidates (connectivity kept); %d inside the target by calibrated "
                 "xTB, %.1f expected from the calibration's spread; %d outside the calibration's range (no estimate)",
                 metrics["n_xtb_verified"], metrics["n_xtb_run"], metrics["n_xtb_in_target"],
                 metrics["expected_xtb_hits"], metrics["n_outside_calibration"])
        return cands, metrics

    @staticmethod
    def _guided_by_predictor(rows: pd.DataFrame) -> np.ndarray:
        """Rows whose generator optimised its proposals against the campaign's predictor (the graph GA): the
        predictor is their guide, not an independent estimate, so the DFT tier's choice leaves it out for them."""
        from ..config.generators import registry

        steered = {t for (d, t), g in registry().items() if d == "molecules" and g.steered_by_predictor}
        gen = rows["generator"] if "generator" in rows else pd.Series("", index=rows.index)
        return gen.isin(steered).to_numpy(bool)

    def _chance(self, rows: pd.DataFrame, fit: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, sd, chance that DFT confirms it) of each row from its calibrated xTB value and the predictor's, each
        less its ``offset_*`` and with its spread ``s_*`` (:func:`invdesign.oracles.choice.refit`'s keys); the
        predictor left out on the rows of a generator it steered (:meth:`_guided_by_predictor`); NaN where the row
        has no calibrated estimate (the DFT tier never extrapolates the calibration)."""
        from ..targets import target_bounds
        from .choice import combine, confirmation_probability

        c = rows["xtb_calibrated"].to_numpy(float)
        pred = np.where(self._guided_by_predictor(rows), np.nan, rows["predicted_property"].to_numpy(float))
        mean, sd = combine(c - fit["offset_x"], fit["s_x"], pred - fit["offset_p"], fit["s_p"])
        chance = confirmation_probability(mean, sd, target_bounds(self.target), self.protocol_errors[0],
                                          self.settings.dft.confirm_probability)
        has = np.isfinite(c)
        return np.where(has, mean, np.nan), np.where(has, sd, np.nan), np.where(has, chance, np.nan)

    def _confirm_chance(self, cands: pd.DataFrame, prepared: dict) -> tuple[pd.DataFrame, dict]:
        """``estimate``, ``estimate_sd`` and ``dft_choice_probability`` (:meth:`_chance`) of each row, with the
        calibration's held-out spread and the predictor's spread measured on these rows
        (:func:`invdesign.oracles.choice.predictor_spread`); and that choice model for the metrics."""
        from .choice import predictor_spread

        s_x = float(prepared["residual_std_ev"])
        pred = np.where(self._guided_by_predictor(cands), np.nan, cands["predicted_property"].to_numpy(float))
        s_p = predictor_spread(cands["xtb_calibrated"].to_numpy(float), pred, s_x)
        cands["estimate"], cands["estimate_sd"], cands["dft_choice_probability"] = self._chance(
            cands, {"offset_x": 0.0, "offset_p": 0.0, "s_x": s_x, "s_p": s_p})
        log.info("DFT choice: calibrated xTB (held-out spread %.3f) and the predictor (spread %.3f on %d xTB-verified "
                 "rows) combined", s_x, s_p, int(cands["estimate"].notna().sum()))
        best = np.sort(cands["dft_choice_probability"].fillna(0).to_numpy())[::-1][:self.settings.dft.top_k]
        return cands, {"calibration_spread": s_x, "predictor_spread": s_p,
                       "expected_confirmations_top_k": float(best.sum())}

    # ------------------------------------------------------------------ the DFT tier
    @property
    def dft_quantity(self) -> str | None:
        """The DFT column that measures the campaign property (None: DFT does not measure it)."""
        m = self.tier_measure(self.tiers[1])
        return m.column if m else None

    @property
    def confirm_batch_size(self) -> int:
        return self.settings.dft.batch_size

    confirm_columns = {
        "dft_ok": "the DFT single point converged",
        "dft_homo_ev": "DFT HOMO energy (eV)", "dft_lumo_ev": "DFT LUMO energy (eV)",
        "dft_gap_ev": "DFT HOMO-LUMO gap (eV)", "dft_energy_ev": "DFT total energy (eV)",
        "dft_dipole_debye": "DFT dipole moment, norm (Debye)",
        "dft_polarizability_bohr3": "DFT isotropic polarizability by finite fields (bohr^3; only where the campaign "
                                    "targets it)",
        "dft_n_basis": "basis functions", "dft_seconds": "wall time of the single point (s)",
        "dft_device": "cpu or gpu (gpu4pyscf)", "dft_method": "functional/basis",
        "dft_error": "why DFT could not check the molecule ('' when it could)",
        "dft_round": "the DFT round that chose the molecule (oracle.dft.rounds; 1 = the first)",
    }

    @property
    def confirm_rounds(self) -> int:
        return self.settings.dft.rounds if self._dft_tier() else 1

    def round_sizes(self) -> list[int]:
        """DFT single points per round: ``dft.top_k`` split as evenly as it goes, the first rounds one larger."""
        k, r = self.settings.dft.top_k, self.confirm_rounds
        return [k // r + (1 if i < k % r else 0) for i in range(r)]

    def confirm_select(self, checked, earlier=None, round_no=1, tier_metrics=None):
        """The molecules DFT checks in round ``round_no``: those most likely to be confirmed
        (``dft_choice_probability``: calibrated xTB and the predictor combined; :meth:`finalize` ranks by it), each
        with a chance above zero: a molecule outside the calibration's xTB range (no calibrated estimate), or that
        cannot reach the target, is not sent to DFT. In a later round (``dft.rounds``) the chance is refitted on the
        ``earlier`` rounds' DFT values (:func:`invdesign.oracles.choice.refit`), and each pick goes to the
        generator that wins a Thompson draw on its confirmed rate so far (Beta(1 + confirmed, 1 + not)), which
        then gives its most likely molecule not yet checked."""
        if not self._dft_tier() or "xtb_target_probability" not in checked:
            return checked.head(0)
        k = self.round_sizes()[round_no - 1]
        column = "dft_choice_probability" if "dft_choice_probability" in checked else "xtb_target_probability"
        checked = checked.copy()
        p = pd.to_numeric(checked[column], errors="coerce")
        ok = checked["xtb_verified"].eq(True) & checked["molblock"].notna() & (p > 0)
        if earlier is None or not len(earlier) or column != "dft_choice_probability":
            return checked[ok].sort_values("final_rank").head(k).assign(dft_round=round_no).reset_index(drop=True)
        ok &= ~checked["final_rank"].isin(earlier["final_rank"])
        checked["dft_choice_probability"] = self._refitted_chance(checked, earlier, tier_metrics or {})
        pool = checked[ok & checked["dft_choice_probability"].gt(0)].sort_values(
            ["dft_choice_probability", "final_rank"], ascending=[False, True])
        verdict = self._dft_verdicts(earlier)
        rng = np.random.default_rng([self.settings.seed, round_no])
        picks = []
        for _ in range(min(k, len(pool))):
            left = pool[~pool["final_rank"].isin(picks)]
            arms = sorted(left["generator"].dropna().unique()) if "generator" in left else []
            if len(arms) > 1:
                draws = {g: rng.beta(1 + verdict.get(g, (0, 0))[0], 1 + verdict.get(g, (0, 0))[1]) for g in arms}
                left = left[left["generator"] == max(draws, key=draws.get)]
            picks.append(left["final_rank"].iloc[0])
        out = checked.set_index("final_rank", drop=False).loc[picks].reset_index(drop=True)
        log.info("DFT round %d: %d picks, by generator %s (refitted on %d earlier DFT values)", round_no, len(out),
                 out["generator"].value_counts().to_dict() if "generator" in out else {}, len(earlier))
        return out.assign(dft_round=round_no)

    def _dft_verdicts(self, rows) -> dict[str, tuple[int, int]]:
        """Each generator's (confirmed, not confirmed) DFT verdicts among ``rows``, by the rule of
        :meth:`merge_confirmed` (the earlier rounds' batches carry values, not verdicts)."""
        value = pd.to_numeric(rows[self.dft_quantity], errors="coerce").where(rows["dft_ok"].eq(True))
        gen = rows["generator"] if "generator" in rows else pd.Series("", index=rows.index)
        ran = value.notna()
        table = pd.DataFrame({"generator": gen[ran], "confirmed": self.dft_probability(value[ran].to_numpy(float))
                              >= self.settings.dft.confirm_probability})
        return {g: (int(p["confirmed"].sum()), int((~p["confirmed"]).sum())) for g, p in table.groupby("generator")}

    def _refitted_chance(self, checked, earlier, tier_metrics: dict) -> np.ndarray:
        """The chance of confirmation of every row, with the choice model refitted on ``earlier``'s DFT values."""
        from .choice import refit

        model = tier_metrics.get("dft_choice") or {}
        s_x, s_p = model.get("calibration_spread"), model.get("predictor_spread")
        if s_x is None or s_p is None:
            return checked["dft_choice_probability"].to_numpy(float)
        seen = checked[["final_rank"]].merge(earlier[["final_rank", self.dft_quantity, "dft_ok"]], how="left",
                                             on="final_rank")
        measured = pd.to_numeric(seen[self.dft_quantity], errors="coerce").where(seen["dft_ok"].eq(True))
        pred = np.where(self._guided_by_predictor(checked), np.nan, checked["predicted_property"].to_numpy(float))
        fit = refit(checked["xtb_calibrated"].to_numpy(float), pred, measured.to_numpy(float), s_x, s_p,
                    float(np.mean(self.protocol_errors[0])))
        log.info("choice model refitted on %d DFT values: calibrated xTB offset %+.3f (spread %.3f), predictor "
                 "offset %+.3f (spread %.3f)", fit["n"], fit["offset_x"], fit["s_x"], fit["offset_p"], fit["s_p"])
        return self._chance(checked, fit)[2]

    def confirm(self, batch, known, prepared):
        from .dft import default_threads, frontier_from_molblock

        d = self.settings.dft
        out = batch.reset_index(drop=True).copy()
        runs, t0 = [], time.monotonic()
        for i, mb in enumerate(out["molblock"], start=1):
            runs.append(frontier_from_molblock(mb, functional=d.functional, basis=d.basis, density_fit=d.density_fit,
                                               device=d.device, threads=default_threads(),
                                               max_memory_mb=d.max_memory_mb,
                                               polarizability=self.dft_quantity == "dft_polarizability_bohr3"))
            log.info("DFT %s/%s %d/%d: %s %s (%.0fs) %s", d.functional, d.basis, i, len(out), self.dft_quantity,
                     f"{runs[-1].get(self.dft_quantity, float('nan')):.3f}", runs[-1]["dft_seconds"],
                     runs[-1]["dft_error"])
        for key in self.confirm_columns:
            if key != "dft_round":
                out[key] = pd.Series([r.get(key) for r in runs], index=out.index, dtype=object)
        out["dft_method"] = f"{d.functional}/{d.basis}"
        if "dft_round" not in out:  # a batch chosen before rounds existed
            out["dft_round"] = 1
        log.info("DFT single points of %d molecules in %.0fs", len(out), time.monotonic() - t0)
        return out

    @functools.cached_property
    def protocol_errors(self) -> tuple[np.ndarray, str]:
        """(the DFT tier's signed errors against the data's own values for the campaign property, where they come
        from): ``dft.error_model``, default the DFT tier's declared error model, the QM9 measurement shipped with the
        package. Where the shipped model has no measurement of the property yet, one zero error: the verdict is the
        point value, and the note says so (a file the user names must hold the property)."""
        from importlib import resources

        path = self.settings.dft.error_model
        text = Path(path).read_text() if path else \
            resources.files("invdesign.oracles").joinpath(self.tiers[1].error_model).read_text()
        model = json.loads(text)
        errors = model.get("errors") or model["errors_ev"]  # errors_ev: files written before non-eV properties
        name = self.property.name if self.property else ""
        if name in errors:
            return np.asarray(errors[name], float), f"{len(errors[name])} measured errors ({path or 'shipped model'})"
        if path:
            from ..errors import InvdesignError

            raise InvdesignError(f"{path} has no errors for {name!r}; give oracle.dft.error_model a file with them "
                                 "(bench/dft_protocol.py writes one) or leave it out")
        log.warning("the shipped DFT error model has no measurement for %s yet: DFT verdicts are point values", name)
        return np.zeros(1), f"none measured for {name} yet: the verdict is the point value"

    def dft_probability(self, values) -> np.ndarray:
        """For each DFT value, the share of the protocol's errors that leave the data-scale value in the target (the
        data's value is the DFT value minus the error: the errors are DFT - reference)."""
        return target_probability(values, {"residuals": (-self.protocol_errors[0]).tolist()}, self.target)

    def merge_confirmed(self, checked, confirmed, metrics):
        """DFT verdicts on the rows that got one: ``dft_in_target`` (the point value), ``dft_target_probability``
        (the share of the protocol's measured errors that keep the value in the target) and ``dft_confirmed`` (that
        share at least ``dft.confirm_probability``); DFT-confirmed molecules rank first, then the molecules DFT did not
        check (by the xTB ranking), then those DFT puts in the target without confirming them, then those it puts
        outside (:meth:`Oracle.rerank`)."""
        d = self.settings.dft
        out = self.with_confirmations(checked, confirmed)
        quantity = self.dft_quantity
        ran = out["dft_ok"].eq(True)
        if quantity is not None:
            value = pd.to_numeric(out[quantity], errors="coerce").where(ran).to_numpy(float)
            out["dft_in_target"] = pd.array(np.where(ran, self.in_target(value), pd.NA), dtype="boolean")
            prob = self.dft_probability(value) if ran.any() else np.full(len(out), np.nan)
            out["dft_target_probability"] = prob
            out["dft_confirmed"] = pd.array(np.where(ran, prob >= d.confirm_probability, pd.NA), dtype="boolean")
        else:
            out["dft_in_target"] = out["dft_confirmed"] = pd.Series(pd.NA, index=out.index, dtype="boolean")
            out["dft_target_probability"] = np.nan
        out = self.rerank(out, ["dft_confirmed", "dft_in_target"], "xtb_rank")
        n_dft = int(out["dft_ok"].notna().sum())
        tier = self._dft_tier()
        dft = {"dft_method": f"{d.functional}/{d.basis}", "dft_confirm_probability": d.confirm_probability,
               "dft_error_model": self.protocol_errors[1] if quantity is not None else None,
               "n_dft_run": n_dft,
               "n_dft_ok": int(ran.sum()), "n_dft_in_target": int(out["dft_in_target"].eq(True).sum()),
               "n_dft_confirmed": int(out["dft_confirmed"].eq(True).sum()),
               "dft_seconds_total": float(pd.to_numeric(out["dft_seconds"], errors="coerce").sum()),
               "dft_rounds": {str(int(r)): {"n_dft_run": int(len(g)),
                                            "n_dft_confirmed": int(g["dft_confirmed"].eq(True).sum())}
                              for r, g in out[out["dft_ok"].notna()].groupby(
                                  pd.to_numeric(out["dft_round"], errors="coerce").fillna(1))}}
        if tier:
            measured = len(self.protocol_errors[0]) > 1
            rule = (f"in the target for at least {d.confirm_probability:.0%} of the protocol's measured errors"
                    if measured else "the point value in the target: no protocol error measured for this property yet")
            lead = {"confirmed_by": f"DFT {d.functional}/{d.basis} ({rule})",
                    "n_confirmed": dft["n_dft_confirmed"],
                    "n_checked_by_confirming_tier": n_dft}
        else:
            lead = {"confirmed_by": "xTB calibrated (no DFT tier: oracle.dft.top_k is 0 or the property has no DFT "
                                    "measure)", "n_confirmed": metrics.get("n_xtb_in_target", 0),
                    "n_checked_by_confirming_tier": metrics.get("n_xtb_verified", 0)}
        log.info("DFT: %d run, %d converged, %d in the target, %d confirmed (probability >= %.2f)", n_dft,
                 dft["n_dft_ok"], dft["n_dft_in_target"], dft["n_dft_confirmed"], d.confirm_probability)
        return out, {**lead, **metrics, **dft}

    def _dft_tier(self) -> bool:
        return self.settings.dft.top_k > 0 and self.dft_quantity is not None

    def confirmed(self, verified):
        """DFT-confirmed rows (the calibrated-xTB verdict where there is no DFT tier), as ``n_confirmed`` counts."""
        if self._dft_tier() and "dft_confirmed" in verified:
            return verified["dft_confirmed"].eq(True)
        return verified.get("xtb_in_target", pd.Series(False, index=verified.index)).eq(True)

    def confirm_ran(self, verified):
        if self._dft_tier() and "dft_ok" in verified:
            return verified["dft_ok"].notna()
        return verified.get("xtb_ok", pd.Series(index=verified.index, dtype=object)).notna()

    def first_tier_checked(self, verified):
        return verified.get("xtb_verified", pd.Series(False, index=verified.index)).eq(True)

    def report_extras(self, verified):
        hist, funnel = {}, {}
        if "xtb_calibrated" in verified:
            hist["xTB-verified (calibrated)"] = verified["xtb_calibrated"].to_numpy(float)
        funnel["xTB verified"] = int(verified["xtb_verified"].sum())
        if "dft_ok" in verified and verified["dft_ok"].notna().any():
            funnel["DFT run"] = int(verified["dft_ok"].notna().sum())
            funnel["DFT confirmed"] = int(verified["dft_confirmed"].eq(True).sum())
        return hist, funnel
