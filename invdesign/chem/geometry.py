"""3D geometries of molecules from SMILES (RDKit ETKDG + MMFF), for the xTB oracle and the SDF export."""

from __future__ import annotations


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
