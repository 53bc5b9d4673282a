"""Crystal featurizer and encoder invariances: rotation, translation, site order and choice of unit cell.

Graphs are compared as multisets of per-atom environments (node features + sorted incoming edge
distances); embeddings of the shared GraphEncoder are compared numerically.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from invdesign.config.featurize import CrystalFeaturize
from invdesign.domains import crystals as dom
from invdesign.featurize.crystal import DESCRIPTORS, element_descriptors, structure_to_graph
from invdesign.models.gnn import GraphEncoder

pytestmark = pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")

CIFS = Path(__file__).parent / "data" / "crystals_cifs"
ELEMENTS = ["N", "O", "Na", "Mg", "Cl", "Ti", "Ga"]

#: the campaign defaults of the crystal featurization
FEATURIZE = CrystalFeaturize()


def graph(structure):
    """``structure``'s graph with the default cutoff and neighbour count."""
    return structure_to_graph(structure, ELEMENTS, FEATURIZE.cutoff, FEATURIZE.max_neighbors)


def load(name):
    return Structure.from_file(CIFS / f"{name}.cif")


def env(g):
    items = []
    for i in range(g.num_nodes):
        d = np.sort(g.edge_attr[g.edge_index[1] == i].numpy().ravel())
        items.append(tuple(np.round(g.x[i].numpy(), 5)) + tuple(np.round(d, 4)))
    return sorted(items)


def random_rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def variants(s):
    """Structures that describe the same crystal (and one that is a different cell of the same crystal)."""
    rng = np.random.default_rng(1)
    rot = Structure(Lattice(s.lattice.matrix @ random_rotation(2).T), s.species, s.frac_coords)
    shifted = Structure(s.lattice, s.species, (s.frac_coords + rng.random(3)) % 1.0)
    perm = rng.permutation(len(s))
    permuted = Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])
    sheared = s.copy()
    sheared.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])   # unimodular: same cell volume, other vectors
    return {"rotated": rot, "translated": shifted, "permuted": permuted, "other_cell": sheared}


def encoder(node_dim):
    torch.manual_seed(0)
    return GraphEncoder(node_dim, 16, hidden=24, layers=3, out_dim=8,
                        edge_rbf={"cutoff": 5.0, "num_gaussians": 16}).eval()


@pytest.mark.parametrize("name", ["nacl", "tio2", "mgo", "gan"])
def test_graph_and_embedding_invariance(name):
    s = load(name)
    ref = graph(s)
    graphs = {k: graph(v) for k, v in variants(s).items()}
    for k, g in graphs.items():
        assert env(g) == env(ref), k
    enc = encoder(ref.x.size(1))
    b = Batch.from_data_list([ref, *graphs.values()])
    with torch.no_grad():
        h = enc(b.x, b.edge_index, b.edge_attr, b.batch)
    for i, k in enumerate(graphs, start=1):
        assert torch.allclose(h[0], h[i], atol=1e-5), k
    # sanity: the encoder is not constant (a different crystal embeds differently)
    other = graph(load("tio2" if name != "tio2" else "nacl"))
    b2 = Batch.from_data_list([ref, other])
    with torch.no_grad():
        assert not torch.allclose(enc(b2.x, b2.edge_index, b2.edge_attr, b2.batch)[1], h[0], atol=1e-3)


@pytest.mark.parametrize("name,scale", [("mgo", [2, 1, 1]), ("gan", [1, 2, 1]), ("tio2", [1, 1, 2])])
def test_supercell_gives_the_same_atom_environments(name, scale):
    s = load(name)
    sc = s.copy()
    sc.make_supercell(scale)
    g, gs = graph(s), graph(sc)
    assert gs.num_nodes == 2 * g.num_nodes
    e, es = env(g), env(gs)
    assert es[::2] == e and es[1::2] == e                   # every environment exactly twice
    enc = encoder(g.x.size(1))
    with torch.no_grad():
        h = enc.node_embeddings(g.x, g.edge_index, g.edge_attr).mean(0)
        hs = enc.node_embeddings(gs.x, gs.edge_index, gs.edge_attr).mean(0)
        assert torch.allclose(h, hs, atol=1e-5)           # mean-pooled per-atom embeddings agree
        assert torch.allclose(g.x.mean(0), gs.x.mean(0), atol=1e-6)


def test_decoder_targets_do_not_depend_on_pose_or_cell_choice():
    s = load("gan")
    df = __import__("pandas").DataFrame({"structure": [dom.structure_to_record(x) for x in [s, *variants(s).values()]],
                                         "property": [1.0] * 5})
    graphs, _ = dom.featurize(df, {})
    for g in graphs[1:]:
        assert torch.allclose(g.lat_t, graphs[0].lat_t, atol=1e-4)           # Niggli-reduced lattice parameters
        assert sorted(g.types_t[0].tolist()) == sorted(graphs[0].types_t[0].tolist())


def test_node_features_are_element_scalars():
    g = graph(load("tio2"))
    assert g.x.shape == (6, len(ELEMENTS) + len(DESCRIPTORS)) and g.edge_attr.shape[1] == 1
    ti = dict(zip(DESCRIPTORS, element_descriptors("Ti")))
    o = dict(zip(DESCRIPTORS, element_descriptors("O")))
    assert (ti["valence_s"], ti["valence_d"], ti["valence_p"], ti["valence_f"]) == (1.0, 0.2, 0.0, 0.0)  # [Ar]3d2 4s2
    assert (o["valence_s"], o["valence_p"]) == (1.0, pytest.approx(4 / 6))                            # [He]2s2 2p4
    assert ti["is_metal"] == 1.0 and o["is_metal"] == 0.0 and o["electronegativity"] > ti["electronegativity"]
    assert o["group"] == pytest.approx(16 / 18) and ti["period"] == pytest.approx(4 / 7)
