"""Crystal VAE: order- and image-invariant reconstruction loss, batched decoding, tiny end-to-end run."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from invdesign.domains import crystals as dom
from invdesign.models.samples import CrystalSamples
from invdesign.config import model_settings
from invdesign.models.crystal_vae import CrystalVAE, periodic_sq

DATA = Path(__file__).parent / "data"
DS = {"source": "cif_folder", "path": str(DATA / "crystals_cifs"), "table": str(DATA / "crystals_props.csv"),
      "property_column": "bulk_modulus_gpa"}


@pytest.fixture(scope="module")
def user_graphs():
    df = dom.load_source(DS, mirror=None, cache_dir="unused")
    graphs, meta = dom.featurize(df, {})
    meta.update(y_mean=150.0, y_std=60.0)
    return df, graphs, meta


def test_periodic_distance():
    a = torch.tensor([[0.02, 0.5, 0.99]])
    assert periodic_sq(a, torch.tensor([[0.98, 0.5, 0.01]])).item() == pytest.approx(0.04 ** 2 + 0.02 ** 2, abs=1e-6)
    assert periodic_sq(a, a + torch.tensor([1.0, -2.0, 3.0])).item() == pytest.approx(0.0, abs=1e-10)


def test_reconstruction_loss_ignores_site_order_and_periodic_images(user_graphs):
    _, graphs, meta = user_graphs
    torch.manual_seed(0)
    model = CrystalVAE(meta, model_settings("crystals", "vae", {"latent_dim": 8, "hidden": 16})).eval()
    batch = Batch.from_data_list(graphs)
    z = torch.randn(batch.num_graphs, 8)
    loss, metrics = model.reconstruction_loss(z, batch)
    shuffled = []
    rng = np.random.default_rng(0)
    for g in graphs:
        g = g.clone()
        n = int((g.types_t >= 0).sum())
        perm = torch.as_tensor(np.r_[rng.permutation(n), np.arange(n, g.types_t.size(1))])
        g.types_t = g.types_t[:, perm]
        g.frac_t = g.frac_t[:, perm] + torch.as_tensor(rng.integers(-2, 3, size=(1, perm.numel(), 3)),
                                                       dtype=torch.float32)
        shuffled.append(g)
    loss2, _ = model.reconstruction_loss(z, Batch.from_data_list(shuffled))
    assert torch.isfinite(loss) and loss2.item() == pytest.approx(loss.item(), rel=1e-5)
    assert {"type_ce", "coord_sq", "natoms_acc", "lattice_mse", "composition_acc"} <= set(metrics)


def test_decode_is_batched_and_consistent(user_graphs):
    _, _, meta = user_graphs
    model = CrystalVAE(meta, model_settings("crystals", "vae", {"latent_dim": 8, "hidden": 16})).eval()
    out = model.decode(torch.randn(500, 8))
    assert out.types.shape == (500, meta["max_atoms"]) and out.frac.shape == (500, meta["max_atoms"], 3)
    assert out.lattice.shape == (500, 6) and out.num_atoms.shape == (500,)
    assert ((out.types >= 0).sum(1) == out.num_atoms).all()
    assert out.types.max() < len(meta["elements"]) and ((out.frac >= 0) & (out.frac <= 1)).all()
    samples = dom.decode(out, meta)
    assert len(samples) == 500 and {"formula", "structure", "num_sites"} <= set(samples.columns)
    ok = samples["structure"].notna()
    n = out.num_atoms.numpy()[ok.to_numpy()]
    assert (samples.loc[ok, "num_sites"] + samples.loc[ok, "merged_sites"] == n).all()
    # a degenerate lattice keeps its row with None identifiers
    out.lattice[0] = torch.tensor([3.0, 3.0, 3.0, 170.0, 170.0, 170.0])
    bad = dom.decode(CrystalSamples(types=out.types[:1], frac=out.frac[:1], lattice=out.lattice[:1],
                                    num_atoms=out.num_atoms[:1]), meta)
    assert bad["structure"].iloc[0] is None and bad["formula"].iloc[0] is None


def test_tiny_end_to_end_on_mp(mirror, tmp_path):
    """MP subset -> graphs -> VAE (few epochs) -> prior samples -> structures -> filters."""
    from invdesign.config.generators import TrainSettings
    from invdesign.models.train import fit

    df = dom.load_source({"source": "mp_elasticity", "max_rows": 200, "max_atoms": 4, "seed": 0,
                          "property_column": "bulk_modulus_gpa"}, mirror=mirror, cache_dir=str(tmp_path))
    assert len(df) == 200 and df["num_sites"].max() <= 4 and df["id"].str.startswith("mp-").all()
    assert {"id", "formula", "structure", "num_sites", "property", "bulk_modulus_gpa", "shear_modulus_gpa"} <= set(df)
    graphs, meta = dom.featurize(df, {})
    meta.update(y_mean=float(df.property.mean()), y_std=float(df.property.std()))
    model = CrystalVAE(meta, model_settings("crystals", "vae", {"latent_dim": 16, "hidden": 48}))
    info = fit(model, graphs[:170], graphs[170:], TrainSettings(epochs=6, batch_size=32, lr=5e-3),
               device=torch.device("cpu"), workers=0)
    assert info["history"][-1]["train_recon"] < info["history"][0]["train_recon"]
    torch.manual_seed(0)
    samples = dom.decode(model.decode(torch.randn(300, 16)), meta)
    samples["latent_pred"] = 1.0                           # an extra column of the lead's must survive
    # a 6-epoch VAE puts atoms closer than real crystals do: the default contact bound (0.7 of the covalent bond
    # length; every MP elasticity cell is above 0.71) rejects them and says why; without it (0) the rest runs on
    strict = dom.filter_candidates(samples, df, {})
    too_close = strict["reject_reason"].str.contains("covalent bond length")
    assert too_close.sum() > 0 and (strict.loc[too_close, "contact_ratio"] < 0.7).all()
    out = dom.filter_candidates(samples, df, {"min_contact_ratio": 0.0})
    assert out["valid"].sum() >= strict["valid"].sum()
    for col in ("valid", "unique", "novel", "passes", "min_distance_ok", "charge_neutral", "min_distance",
                "contact_ratio", "reject_reason", "latent_pred"):
        assert col in out.columns, col
    assert len(out) == 300 and out["valid"].sum() >= 30 and out["unique"].sum() >= 10
    assert not (out["unique"] & ~out["valid"]).any() and not (out["novel"] & ~out["unique"]).any()
    assert (out["passes"] == (out["valid"] & out["unique"] & out["novel"])).all()
    assert (out.loc[out["passes"], "reject_reason"] == "").all() and (out.loc[~out["passes"], "reject_reason"] != "").all()
    graphs_like = dom.featurize_like(out[out["valid"]], meta)
    assert all(g is not None and g.x.size(1) == meta["node_dim"] for g in graphs_like)


def test_same_element_atoms_on_one_spot_are_merged_but_clashes_are_kept():
    from pymatgen.core import Lattice, Structure

    from invdesign.chem.crystals import merge_duplicate_sites, min_distance

    # two Na slots 0.2 A apart across the periodic boundary + one Na-Cl clash + a normal Cl
    s = Structure(Lattice.cubic(5.0), ["Na", "Na", "Cl", "Cl", "Na"],
                  [[0.99, 0, 0], [0.03, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.04, 0.5]])
    merged, removed = merge_duplicate_sites(s, 0.5)
    assert removed == 1 and len(merged) == 4 and merged.composition.reduced_formula == "NaCl"
    na = [site.frac_coords for site in merged if site.specie.symbol == "Na"]
    assert any(np.allclose(f, [0.01, 0, 0], atol=1e-6) for f in na)       # periodic mean, not 0.51
    assert min_distance(merged) == pytest.approx(0.2, abs=1e-6)            # the Na-Cl clash stays
    assert merge_duplicate_sites(s, 0.0) == (s, 0)
