"""Molecular graphs with invariant atom and bond descriptors (heavy atoms only).

Every feature is a property of the bonded graph or a per-atom scalar (Mulliken group
charge), so a graph does not change under rotation or translation of the geometry, and
re-ordering the atoms only re-orders its rows (the encoder's pooled readout is invariant).
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data

ELEMENTS = ["C", "N", "O", "F", "S", "Cl", "Br", "P", "other"]
HYBRIDISATIONS = ["SP", "SP2", "SP3", "other"]
BOND_TYPES = ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"]

NODE_FEATURES = ([f"element_{e}" for e in ELEMENTS] + ["formal_charge", "aromatic"]
                 + [f"hybridisation_{h}" for h in HYBRIDISATIONS]
                 + ["num_h", "degree", "in_ring", "mulliken_group_charge", "mulliken_available",
                    "xtb_homo_density", "xtb_lumo_density", "xtb_orbitals_available"])
EDGE_FEATURES = [f"bond_{b.lower()}" for b in BOND_TYPES] + ["conjugated", "in_ring"]
# features that a freshly generated molecule does not have (no quantum-chemistry run yet)
QM_FEATURES = ["mulliken_group_charge", "mulliken_available", "xtb_homo_density", "xtb_lumo_density",
               "xtb_orbitals_available"]


def atom_features(atom, mulliken: float | None, orbitals: tuple[float, float] | None = None) -> list[float]:
    sym = atom.GetSymbol()
    el = [float(sym == e) for e in ELEMENTS[:-1]] + [float(sym not in ELEMENTS[:-1])]
    hyb = str(atom.GetHybridization())
    hy = [float(hyb == h) for h in HYBRIDISATIONS[:-1]] + [float(hyb not in HYBRIDISATIONS[:-1])]
    return el + [float(atom.GetFormalCharge()), float(atom.GetIsAromatic())] + hy + [
        float(atom.GetTotalNumHs()), float(atom.GetDegree()), float(atom.IsInRing()),
        float(mulliken) if mulliken is not None else 0.0, float(mulliken is not None),
        *(orbitals if orbitals is not None else (0.0, 0.0)), float(orbitals is not None)]


def bond_features(bond) -> list[float]:
    bt = str(bond.GetBondType())
    return [float(bt == b) for b in BOND_TYPES] + [float(bond.GetIsConjugated()), float(bond.IsInRing())]


def mol_to_graph(mol, mulliken=None, y: float = float("nan"), orbitals=None) -> Data:
    """Graph of an RDKit molecule (heavy atoms).

    ``mulliken``: per-atom charges in atom order, or None. ``orbitals``: (HOMO densities, LUMO densities)
    per atom in atom order (sign-free projections, e.g. from GFN2-xTB), or None.
    """
    n = mol.GetNumAtoms()
    if mulliken is not None and len(mulliken) != n:
        raise ValueError(f"{len(mulliken)} charges for {n} atoms")
    if orbitals is not None and (len(orbitals[0]) != n or len(orbitals[1]) != n):
        raise ValueError(f"orbital densities do not match the {n} atoms")
    x = [atom_features(a, None if mulliken is None else mulliken[a.GetIdx()],
                       None if orbitals is None else (orbitals[0][a.GetIdx()], orbitals[1][a.GetIdx()]))
         for a in mol.GetAtoms()]
    src, dst, ea, order = [], [], [], []
    kekule = kekule_orders(mol)
    for b in mol.GetBonds():
        i, j, f = b.GetBeginAtomIdx(), b.GetEndAtomIdx(), bond_features(b)
        src += [i, j]
        dst += [j, i]
        ea += [f, f]
        order += [kekule[b.GetIdx()]] * 2
    return Data(x=torch.tensor(x, dtype=torch.float32),
                edge_index=torch.tensor([src, dst], dtype=torch.long).view(2, -1),
                edge_attr=torch.tensor(ea, dtype=torch.float32).view(-1, len(EDGE_FEATURES)),
                y=torch.tensor([y], dtype=torch.float32),
                atom_type=torch.tensor([element_index(a.GetSymbol()) for a in mol.GetAtoms()], dtype=torch.long),
                bond_order=torch.tensor(order, dtype=torch.long))


def element_index(symbol: str) -> int:
    return ELEMENTS.index(symbol) if symbol in ELEMENTS[:-1] else len(ELEMENTS) - 1


def kekule_orders(mol) -> list[int]:
    """Bond orders 1/2/3 of a Kekule structure (the whole-graph generators' bond classes)."""
    from rdkit import Chem

    k = Chem.Mol(mol)
    try:
        Chem.Kekulize(k, clearAromaticFlags=True)
    except Exception:  # noqa: BLE001  (a molecule RDKit cannot kekulize keeps its aromatic bonds as single)
        k = mol
    out = []
    for b in k.GetBonds():
        bt = b.GetBondType()
        out.append(3 if bt == Chem.BondType.TRIPLE else 2 if bt == Chem.BondType.DOUBLE else 1)
    return out


def feature_index(names: list[str]) -> list[int]:
    return [NODE_FEATURES.index(n) for n in names]
