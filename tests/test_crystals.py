"""Crystal domain: download/mirror with checksum, invariances, VAE decode, checks."""

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from invdesign.config.featurize import CrystalFeaturize
from invdesign.chem.crystals import (additive_volume, check_crystals, fit_atomic_volumes, min_distance,
                                    rescale_to_volume, structure_to_record)
from invdesign.data.materials import MP_ELASTICITY, fetch
from invdesign.domains import crystals as dom
from invdesign.errors import InvdesignError
from invdesign.featurize.crystal import element_descriptors, structure_to_graph
from invdesign.models.gnn import GraphEncoder

ELEMENTS = ["O", "Na", "Cl", "Mg", "Ti"]

#: the campaign defaults of the crystal featurization
FEATURIZE = CrystalFeaturize()


def graph(structure):
    """``structure``'s graph with the default cutoff and neighbour count."""
    return structure_to_graph(structure, ELEMENTS, FEATURIZE.cutoff, FEATURIZE.max_neighbors)


def rocksalt(a=5.64):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rutile():
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])


def env(g):
    """Per-atom environment multiset: (node features, sorted incoming edge features) per atom."""
    items = []
    for i in range(g.num_nodes):
        e = g.edge_attr[g.edge_index[1] == i]
        items.append(tuple(np.round(g.x[i].numpy(), 5)) + tuple(np.round(np.sort(e.numpy(), axis=0).ravel(), 4)))
    return sorted(items)


def rotate(s, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords)


def embed(graphs):
    torch.manual_seed(0)
    enc = GraphEncoder(graphs[0].x.size(1), 32, hidden=16, layers=2, out_dim=8,
                       edge_rbf={"cutoff": 5.0, "num_gaussians": 32}).eval()
    b = Batch.from_data_list(graphs)
    with torch.no_grad():
        return enc(b.x, b.edge_index, b.edge_attr, b.batch)


@pytest.mark.parametrize("make", [rocksalt, rutile])
def test_graph_invariances(make):
    s = make()
    g = graph(s)
    rot = graph(rotate(s))
    shifted = graph(Structure(s.lattice, s.species, (s.frac_coords + [0.13, 0.71, 0.29]) % 1.0))
    perm = np.random.default_rng(0).permutation(len(s))
    permuted = graph(Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm]))
    sc = s.copy()
    sc.make_supercell([2, 1, 1])
    supercell = graph(sc)
    for other in (rot, shifted, permuted):
        assert env(other) == env(g)
    # the supercell has every environment exactly twice
    assert sorted(env(supercell)[::2]) == env(g) and env(supercell)[::2] == env(supercell)[1::2]
    h = embed([g, rot, shifted, permuted])
    assert torch.allclose(h[0], h[1], atol=1e-4) and torch.allclose(h[0], h[2], atol=1e-4)
    assert torch.allclose(h[0], h[3], atol=1e-4)


def test_valence_orbital_occupations():
    d = dict(zip(["s", "p", "d", "f"], element_descriptors("Ti")[:4]))
    assert d["s"] == pytest.approx(2 / 2) and d["d"] == pytest.approx(2 / 10) and d["p"] == 0
    o = element_descriptors("O")
    assert o[0] == pytest.approx(1.0) and o[1] == pytest.approx(4 / 6)


def test_mirror_checksum_and_missing_download(tmp_path, mirror):
    path = fetch(MP_ELASTICITY, mirror, tmp_path)
    assert path.parent == __import__("pathlib").Path(mirror)
    bad = tmp_path / "bad_mirror"
    bad.mkdir()
    (bad / MP_ELASTICITY["fname"]).write_bytes(b"corrupted")
    with pytest.raises(InvdesignError, match="does not match the expected"):
        fetch(MP_ELASTICITY, str(bad), tmp_path)
    offline = dict(MP_ELASTICITY, url="http://127.0.0.1:9/nothing.json.gz", fname="nothing.json.gz")
    with pytest.raises(InvdesignError, match="INVDESIGN_DATA_MIRROR"):
        fetch(offline, None, tmp_path / "dl")
    with pytest.raises(InvdesignError, match=r"mirror folder .*nowhere does not exist, and cannot download"):
        fetch(offline, str(tmp_path / "nowhere"), tmp_path / "dl")
    with pytest.raises(InvdesignError, match=r"nothing.json.gz is not in the mirror folder"):
        fetch(offline, str(bad), tmp_path / "dl")


def test_cif_folder_with_bad_files(tmp_path):
    folder = tmp_path / "cifs"
    folder.mkdir()
    rocksalt().to(filename=str(folder / "nacl.cif"))
    rutile().to(filename=str(folder / "tio2.cif"))
    (folder / "broken.cif").write_text("data_broken\n_this is not a cif\n")
    pd.DataFrame({"id": ["nacl", "tio2", "broken", "missing"], "k": [25.0, 210.0, 1.0, 2.0]}).to_csv(
        tmp_path / "props.csv", index=False)
    ds = {"source": "cif_folder", "path": str(folder), "table": str(tmp_path / "props.csv"),
          "property_column": "k", "max_atoms": 20, "on_bad_rows": "skip"}
    df = dom.load_source(ds, mirror=None, cache_dir=str(tmp_path))
    assert df["id"].tolist() == ["nacl", "tio2"] and df["formula"].tolist() == ["NaCl", "TiO2"]
    with pytest.raises(InvdesignError, match="broken.cif"):
        dom.load_source(ds | {"on_bad_rows": "error"}, mirror=None, cache_dir=str(tmp_path))
    with pytest.raises(InvdesignError, match="no column 'K_VRH'"):
        dom.load_source(ds | {"property_column": "K_VRH"}, mirror=None, cache_dir=str(tmp_path))


def test_checks_reject_overlaps_nonneutral_duplicates_and_known():
    nacl, tio2 = rocksalt(), rutile()
    squeezed = Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    na3cl = Structure(Lattice.cubic(5.64), ["Na", "Na", "Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                                      [0.5, 0.5, 0.5]])
    shifted = Structure(nacl.lattice, nacl.species, (nacl.frac_coords + 0.25) % 1)
    samples = pd.DataFrame({"structure": [structure_to_record(x) for x in (squeezed, na3cl, tio2, shifted, nacl)]})
    samples["formula"] = [structure_from(x).composition.reduced_formula for x in samples["structure"]]
    reference = pd.DataFrame({"formula": ["TiO2"], "structure": [structure_to_record(tio2)]})
    out = check_crystals(samples, reference, {"min_distance": 0.5, "allow_alloys": False})
    assert out["min_distance"].iloc[0] < 0.5 and not out["min_distance_ok"].iloc[0]
    assert not out["charge_neutral"].iloc[1]                    # Na3Cl has no neutral oxidation-state assignment
    assert out["valid"].tolist() == [False, False, True, True, True]
    assert out["unique"].tolist() == [False, False, True, True, False]  # shifted NaCl == NaCl
    assert out["novel"].tolist() == [False, False, False, True, False]  # TiO2 is known
    assert out["passes"].tolist() == [False, False, False, True, False]
    assert min_distance(nacl) == pytest.approx(5.64 / 2, abs=1e-3)
    # a campaign can bar elements (e.g. radioactive ones): the candidate stays valid/unique/novel but fails
    barred = check_crystals(samples, reference, {"min_distance": 0.5, "allow_alloys": False,
                                                 "exclude_elements": ["Na"]})
    assert barred["novel"].tolist() == out["novel"].tolist()
    assert not barred["passes"].any() and "Na (filters.exclude_elements)" in barred["reject_reason"].iloc[3]
    with pytest.raises(InvdesignError, match="Xq is not an element symbol"):
        check_crystals(samples, reference, {"exclude_elements": ["Xq"]})


def test_known_matches_after_relaxation():
    """A relaxed candidate that landed on a known phase is found whatever its cell, pose or atom order."""
    from invdesign.chem.crystals import known_matches

    nacl, tio2 = rocksalt(), rutile()
    strained = Structure.from_sites(list(reversed(nacl.sites)))  # other atom order and volume
    strained.scale_lattice(nacl.volume * 1.1)
    supercell = nacl.copy()
    supercell.make_supercell([2, 1, 1])
    cscl_type = Structure(Lattice.cubic(3.3), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # another NaCl polymorph
    reference = pd.DataFrame({"id": ["mp-22862", "mp-2657"], "formula": ["NaCl", "TiO2"],
                              "structure": [structure_to_record(nacl), structure_to_record(tio2)]})
    assert known_matches([strained, supercell, cscl_type, None, tio2], reference) == \
        ["mp-22862", "mp-22862", None, None, "mp-2657"]


def structure_from(record):
    from invdesign.chem.crystals import structure_from_record

    return structure_from_record(record)


def test_mp_vae_trains_and_decodes(mirror, tmp_path):
    from invdesign.config import model_settings
    from invdesign.models.crystal_vae import CrystalVAE
    from invdesign.config.generators import TrainSettings
    from invdesign.models.train import fit

    df = dom.load_source({"source": "mp_elasticity", "max_rows": 200, "max_atoms": 12, "seed": 0,
                          "property_column": "bulk_modulus_gpa"}, mirror=mirror, cache_dir="data/cache")
    assert len(df) == 200 and df["num_sites"].max() <= 12 and (df["property"] > 0).all()
    graphs, meta = dom.featurize(df, {})
    meta.update(y_mean=float(df.property.mean()), y_std=float(df.property.std()))
    model = CrystalVAE(meta, model_settings("crystals", "vae", {"latent_dim": 16, "hidden": 32}))
    fit(model, graphs[:160], graphs[160:], TrainSettings(epochs=2, batch_size=32, lr=3e-3),
        device=torch.device("cpu"), workers=0)
    out = model.decode(torch.randn(40, 16))
    assert ((out.types >= 0).sum(1) == out.num_atoms).all()
    samples = dom.decode(out, meta)
    assert len(samples) == 40
    checked = dom.filter_candidates(samples, df, {})
    assert {"valid", "unique", "novel", "passes", "min_distance_ok", "charge_neutral"} <= set(checked.columns)
    assert checked["structure"].notna().sum() > 0


def test_additive_volumes_recover_known_atomic_volumes_and_rescale_keeps_shape():
    # cells built from two known atomic volumes (Ir 14, N 8 A^3): the fit recovers them
    def cell(species, vol_per):
        s = Structure(Lattice.cubic(3.0), species, [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]][: len(species)])
        s.scale_lattice(sum(vol_per[e] for e in species))
        return s

    true = {"Ir": 14.0, "N": 8.0}
    cells = [cell(["Ir", "Ir"], true), cell(["Ir", "N"], true), cell(["N", "N"], true), cell(["Ir"], true)]
    vols = fit_atomic_volumes(cells)
    assert vols == pytest.approx(true, rel=1e-6)
    squeezed = Structure(Lattice.from_parameters(2.0, 2.5, 3.0, 80, 95, 100), ["Ir", "N"],
                         [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8]])
    out = rescale_to_volume(squeezed, vols)
    assert out.volume == pytest.approx(22.0)
    assert squeezed.volume == pytest.approx(Lattice.from_parameters(2.0, 2.5, 3.0, 80, 95, 100).volume)  # a copy
    np.testing.assert_allclose(out.frac_coords, squeezed.frac_coords)
    np.testing.assert_allclose(out.lattice.angles, squeezed.lattice.angles)
    ratios = np.array(out.lattice.abc) / np.array(squeezed.lattice.abc)
    np.testing.assert_allclose(ratios, ratios[0])
    unknown = Structure(Lattice.cubic(3.0), ["Os"], [[0, 0, 0]])
    assert rescale_to_volume(unknown, vols) is unknown  # no fitted volume: left as generated
    assert additive_volume(unknown, vols) is None and additive_volume(squeezed, vols) == pytest.approx(22.0)
