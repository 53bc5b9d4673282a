"""Kohn-Sham DFT single points with PySCF: the frontier orbitals of a molecule at a given geometry.

This is the molecule oracle's top tier. QM9's gaps are B3LYP/6-31G(2df,p) (Gaussian 09), so the default
functional and basis are those; in PySCF (libxc) ``b3lyp`` is the same VWN(RPA) form Gaussian calls B3LYP.
Density fitting makes the Coulomb/exchange build cheap; on a machine with a CUDA GPU and ``gpu4pyscf``
installed, the same calculation runs there (``device``).

Never raises for a molecule: a failed or unconverged SCF is reported in ``dft_error``.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from ..properties import HARTREE_EV

log = logging.getLogger(__name__)

#: Debye per atomic unit of dipole moment (e a0)
DEBYE_PER_AU = 2.541746473
#: the finite field (atomic units) of the polarizability
FIELD_AU = 1e-3


def gpu_available() -> bool:
    """True where gpu4pyscf (an optional extra: ``pip install gpu4pyscf-cuda12x``) imports and sees a CUDA device."""
    import importlib

    try:
        importlib.import_module("gpu4pyscf")
        return importlib.import_module("cupy").cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (no GPU stack: the CPU path)
        return False


def frontier_orbitals(numbers, positions, *, functional: str = "b3lyp", basis: str = "6-31g(2df,p)",
                      charge: int = 0, density_fit: bool = True, device: str = "auto", conv_tol: float = 1e-8,
                      max_cycle: int = 100, threads: int | None = None, max_memory_mb: int = 4000,
                      polarizability: bool = False, field_au: float = FIELD_AU) -> dict:
    """Restricted Kohn-Sham single point at ``positions`` (Angstrom); HOMO, LUMO and gap in eV, dipole moment.

    ``device``: ``cpu``, ``gpu`` (gpu4pyscf; an error row if it is missing) or ``auto`` (the GPU where
    gpu4pyscf finds one). Returns ``dft_ok``, ``dft_converged``, ``dft_homo_ev``, ``dft_lumo_ev``,
    ``dft_gap_ev``, ``dft_energy_ev``, ``dft_dipole_debye`` (the norm of the dipole moment of the same SCF,
    electrons and nuclei, in Debye), ``dft_n_basis``, ``dft_seconds``, ``dft_device`` and ``dft_error``. With
    ``polarizability`` also ``dft_polarizability_bohr3``: the isotropic static polarizability (bohr^3 = atomic units),
    the mean of the diagonal of d(mu)/dF from three finite-field SCFs of strength ``field_au`` (forward
    differences; each starts from the field-free density).
    """
    out = {"dft_ok": False, "dft_error": ""}
    t0 = time.monotonic()
    try:
        from pyscf import gto, lib

        if threads:
            lib.num_threads(int(threads))
        use_gpu = device == "gpu" or (device == "auto" and gpu_available())
        atoms = [(int(z), tuple(float(c) for c in p)) for z, p in zip(numbers, positions)]
        mol = gto.M(atom=atoms, unit="Angstrom", basis=basis, charge=charge, spin=0, verbose=0,
                    max_memory=max_memory_mb)
        if use_gpu:
            import importlib

            mf = importlib.import_module("gpu4pyscf.dft").RKS(mol, xc=functional)
        else:
            from pyscf import dft

            mf = dft.RKS(mol, xc=functional)
        if density_fit:
            mf = mf.density_fit()
        mf.conv_tol, mf.max_cycle = conv_tol, max_cycle
        energy = mf.kernel()
        dipole = _dipole_au(mf)
        mo_e = np.asarray(mf.mo_energy.get() if hasattr(mf.mo_energy, "get") else mf.mo_energy)
        occ = np.asarray(mf.mo_occ.get() if hasattr(mf.mo_occ, "get") else mf.mo_occ)
        homo = int(np.flatnonzero(occ > 0)[-1])
        out.update(dft_ok=bool(mf.converged), dft_converged=bool(mf.converged),
                   dft_homo_ev=float(mo_e[homo] * HARTREE_EV), dft_lumo_ev=float(mo_e[homo + 1] * HARTREE_EV),
                   dft_gap_ev=float((mo_e[homo + 1] - mo_e[homo]) * HARTREE_EV),
                   dft_energy_ev=float(energy * HARTREE_EV), dft_n_basis=int(mol.nao),
                   dft_dipole_debye=float(np.linalg.norm(dipole) * DEBYE_PER_AU), dft_device="gpu" if use_gpu else "cpu")
        if not mf.converged:
            out["dft_error"] = f"SCF not converged in {max_cycle} cycles"
        elif polarizability:
            alpha, ok = finite_field_polarizability(mf, dipole, field_au)
            out.update(dft_polarizability_bohr3=alpha)
            if not ok:
                out.update(dft_ok=False, dft_error="SCF in a finite field not converged")
    except Exception as exc:  # noqa: BLE001  (one molecule's failure is an error row)
        out["dft_error"] = f"DFT failed: {type(exc).__name__}: {exc}"[:300]
    out["dft_seconds"] = time.monotonic() - t0
    return out


def _dipole_au(mf) -> np.ndarray:
    """The dipole moment (atomic units, electrons and nuclei) of a converged SCF, on the CPU."""
    d = mf.dip_moment(unit="AU", verbose=0)
    return np.asarray(d.get() if hasattr(d, "get") else d, float)


def finite_field_polarizability(mf, dipole: np.ndarray, field_au: float = FIELD_AU) -> tuple[float, bool]:
    """(isotropic polarizability in bohr^3, every field SCF converged): alpha_ii = (mu_i(F e_i) - mu_i(0)) / F.

    The field enters the one-electron Hamiltonian as +F.r (an electron's energy in a uniform field F is -(-1) F.r),
    with r taken from the nuclear charge centre, so the dipole grows along the field and alpha is positive.
    """
    mol = mf.mol
    charges = mol.atom_charges()
    centre = np.einsum("i,ix->x", charges, mol.atom_coords()) / charges.sum()
    with mol.with_common_orig(centre):
        r = mol.intor_symmetric("int1e_r", comp=3)
    h0 = mf.get_hcore()
    dm0 = mf.make_rdm1()
    diag, ok = [], True
    for i in range(3):
        h = h0 + field_au * _to_device(r[i], h0)
        mf_f = mf.copy()  # the same functional, grids and density fitting; only the core Hamiltonian changes
        mf_f.get_hcore = lambda *_, h=h: h
        mf_f.kernel(dm0=dm0)
        ok = ok and bool(mf_f.converged)
        diag.append((_dipole_au(mf_f)[i] - dipole[i]) / field_au)
    return float(np.mean(diag)), ok


def _to_device(array, like):
    """``array`` on the device of ``like`` (a CuPy array on a GPU run)."""
    import importlib

    return importlib.import_module("cupy").asarray(array) if hasattr(like, "get") else array


def frontier_from_molblock(molblock: str, **kw) -> dict:
    """:func:`frontier_orbitals` at the geometry of an MDL mol block (hydrogens included), e.g. xTB's."""
    from rdkit import Chem

    mol = Chem.MolFromMolBlock(molblock, removeHs=False)
    if mol is None:
        return {"dft_ok": False, "dft_error": "unreadable geometry (mol block)", "dft_seconds": 0.0}
    charge = Chem.GetFormalCharge(mol)
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    return frontier_orbitals(numbers, mol.GetConformer().GetPositions(), charge=charge, **kw)


def default_threads() -> int:
    """Threads for one DFT job: what the scheduler gave the process (OMP_NUM_THREADS), else 1."""
    return int(os.environ.get("OMP_NUM_THREADS") or 1)
