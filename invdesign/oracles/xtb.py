"""GFN2-xTB verification of molecules with tblite: 3D embedding, geometry optimisation,
connectivity check, frontier orbitals, and sign-free atom-resolved HOMO/LUMO densities.

The HOMO/LUMO density on atom A is the Mulliken population of that orbital,
p_A = sum_{mu in A} c_mu (S c)_mu, which is quadratic in the coefficients and hence
independent of the orbital's arbitrary sign; hydrogens are summed onto their heavy atom,
so the result is aligned with the RDKit heavy-atom order and sums to 1.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

BOHR_PER_ANGSTROM = 1.0 / 0.52917721067
HARTREE_EV = 27.211386245988


def embed(smiles: str, seed: int = 0):
    """RDKit molecule with hydrogens and one ETKDG conformer (MMFF-relaxed), or None."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            return None
    try:
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    except Exception:  # noqa: BLE001  (no MMFF parameters: keep the ETKDG geometry)
        pass
    return mol


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

    Returns a dict; ``xtb_ok`` is False (with ``xtb_error``) when any stage fails.
    """
    from ase import Atoms
    from ase.optimize import BFGS
    from rdkit import Chem
    from tblite.ase import TBLite
    from tblite.interface import Calculator

    out: dict = {"xtb_ok": False, "xtb_error": ""}
    mol = embed(smiles, seed)
    if mol is None:
        out["xtb_error"] = "3D embedding failed"
        return out
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    atoms = Atoms(numbers=numbers, positions=mol.GetConformer().GetPositions())
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    try:
        opt = BFGS(atoms, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=max_steps))
        calc = Calculator("GFN2-xTB", numbers, atoms.get_positions() * BOHR_PER_ANGSTROM)
        calc.set("verbosity", 0)
        calc.set("save-integrals", 1)
        res = calc.singlepoint()
    except Exception as exc:  # noqa: BLE001  (SCF non-convergence and friends)
        out["xtb_error"] = f"xTB failed: {type(exc).__name__}"
        return out
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

    before = Chem.GetAdjacencyMatrix(mol)
    after = _adjacency_from_geometry(numbers, atoms.get_positions())
    conf = mol.GetConformer()
    for i, p in enumerate(atoms.get_positions()):
        conf.SetAtomPosition(i, p.tolist())
    out.update(
        xtb_ok=True, xtb_converged=converged, xtb_connectivity_ok=bool(np.array_equal(before, after)),
        xtb_energy_ev=float(res.get("energy")) * HARTREE_EV, xtb_homo_ev=float(eps[homo]),
        xtb_lumo_ev=float(eps[lumo]), xtb_gap_ev=float(eps[lumo] - eps[homo]),
        xtb_homo_density=grouped(p_homo), xtb_lumo_density=grouped(p_lumo), xtb_charges=grouped(charges),
        molblock=Chem.MolToMolBlock(mol),
    )
    return out


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
