"""Periodic crystal graphs with invariant descriptors.

Nodes carry element descriptors that are functions of the element alone: valence-orbital
occupations (s, p, d, f electrons outside the noble-gas core, i.e. |psi|^2-level shell
populations, never orbital phases), group, period, electronegativity and covalent radius.
Edges connect atoms within a cutoff across periodic images and carry only the distance
(Gaussian-expanded inside the model). Rotation, translation, site order and the choice of unit cell
therefore leave the graph's node/edge multisets (and pooled embeddings) unchanged.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from torch_geometric.data import Data

DESCRIPTORS = ["valence_s", "valence_p", "valence_d", "valence_f", "group", "period", "electronegativity",
               "covalent_radius", "is_metal"]
_L = {"s": 0, "p": 1, "d": 2, "f": 3}
_CAP = [2.0, 6.0, 10.0, 14.0]
_NOBLE = ["He", "Ne", "Ar", "Kr", "Xe", "Rn"]


@functools.lru_cache(maxsize=None)
def element_descriptors(symbol: str) -> tuple[float, ...]:
    from pymatgen.core import Element

    el = Element(symbol)
    full = el.full_electronic_structure
    core = []
    for noble in reversed(_NOBLE):
        ne = Element(noble)
        if ne.Z < el.Z:
            core = ne.full_electronic_structure
            break
    occ = [0.0, 0.0, 0.0, 0.0]
    core_set = {(n, l) for n, l, _ in core}
    for n, l, e in full:
        if (n, l) not in core_set:
            occ[_L[l]] += float(e)
    x = el.X if el.X == el.X else 0.0  # NaN for some noble gases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about elements without tabulated radii
        radius = float(el.atomic_radius_calculated or el.atomic_radius or 1.5)
    return tuple([o / c for o, c in zip(occ, _CAP)] + [float(el.group) / 18.0, float(el.row) / 7.0, float(x) / 4.0,
                                                       radius / 2.5, float(el.is_metal)])


def node_features(symbols: list[str], elements: list[str]) -> torch.Tensor:
    index = {e: i for i, e in enumerate(elements)}
    onehot = np.zeros((len(symbols), len(elements)), dtype=np.float32)
    for i, s in enumerate(symbols):
        onehot[i, index[s]] = 1.0
    desc = np.array([element_descriptors(s) for s in symbols], dtype=np.float32)
    return torch.from_numpy(np.concatenate([onehot, desc], axis=1))


def radius_edges(structure, cutoff: float, max_neighbors: int):
    """(edge_index [2, E], distances [E]) of each site's nearest neighbours within ``cutoff``."""
    centers, neighbors, _, dists = structure.get_neighbor_list(r=cutoff)
    keep = dists > 1e-8
    centers, neighbors, dists = centers[keep], neighbors[keep], dists[keep]
    src, dst, dd = [], [], []
    for c in np.unique(centers):
        idx = np.flatnonzero(centers == c)
        idx = idx[np.argsort(dists[idx], kind="stable")][:max_neighbors]
        src.append(neighbors[idx]), dst.append(centers[idx]), dd.append(dists[idx])
    if not src:
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0)
    return np.stack([np.concatenate(src), np.concatenate(dst)]).astype(np.int64), np.concatenate(dd)


def structure_to_graph(structure, elements: list[str], cutoff: float, max_neighbors: int,
                       y: float = float("nan")) -> Data:
    symbols = [site.specie.symbol for site in structure]
    ei, d = radius_edges(structure, cutoff, max_neighbors)
    # edges carry the bare distance; models expand it (GraphEncoder's edge_rbf, see meta["edge_rbf"])
    return Data(x=node_features(symbols, elements), edge_index=torch.from_numpy(ei),
                edge_attr=torch.from_numpy(d.astype(np.float32)).view(-1, 1),
                y=torch.tensor([y], dtype=torch.float32))
