"""3D geometries of molecules from SMILES (RDKit ETKDG + MMFF), for the xTB oracle, the SDF export and the filters'
check that a candidate has 3D coordinates at all."""

from __future__ import annotations

#: SD tag (and molecule property) naming where a record's coordinates come from
COORDINATES_TAG = "coordinates"


def embed(smiles: str, seed: int = 0, *, relax: bool = True):
    """RDKit molecule with hydrogens and one ETKDG conformer (MMFF-relaxed unless ``relax`` is off), or None when
    ETKDG finds no 3D coordinates (after a second try from random coordinates). The molecule's
    :data:`COORDINATES_TAG` property says how its coordinates were made."""
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
    how = "RDKit ETKDG"
    if relax:  # MMFFOptimizeMolecule returns -1 without parameters for the molecule: the ETKDG geometry stays
        how += " + MMFF94" if AllChem.MMFFOptimizeMolecule(mol, maxIters=500) != -1 else " (no MMFF94 parameters)"
    mol.SetProp(COORDINATES_TAG, how)
    return mol


def has_3d_coordinates(smiles: str) -> bool:
    """Whether ETKDG embeds ``smiles`` in 3D as :func:`embed` does for the SDF export (same seed, no relaxation)."""
    return embed(smiles, relax=False) is not None
