"""Chemist-facing descriptors: QED, synthetic accessibility, nearest known molecule."""

from __future__ import annotations

import numpy as np


def qed_and_sa(smiles_list) -> tuple[np.ndarray, np.ndarray]:
    from rdkit import Chem
    from rdkit.Chem import QED
    from rdkit.Contrib.SA_Score import sascorer

    qed, sa = [], []
    for smi in smiles_list:
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) else None
        qed.append(QED.qed(mol) if mol is not None else np.nan)
        sa.append(sascorer.calculateScore(mol) if mol is not None else np.nan)
    return np.array(qed), np.array(sa)


def nearest_neighbours(query_smiles, reference_smiles, radius: int = 2, n_bits: int = 2048):
    """For each query, the most similar reference molecule (Morgan/Tanimoto) and the similarity."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    ref_smiles = list(reference_smiles)
    ref_fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in ref_smiles]
    names, sims = [], []
    for smi in query_smiles:
        mol = Chem.MolFromSmiles(smi) if isinstance(smi, str) else None
        if mol is None or not ref_fps:
            names.append(None), sims.append(np.nan)
            continue
        s = np.array(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(mol), ref_fps))
        best = int(np.argmax(s))
        names.append(ref_smiles[best]), sims.append(float(s[best]))
    return names, np.array(sims)
