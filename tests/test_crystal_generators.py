"""Crystal diffusion: wrapped-normal score, periodic/permutation invariance, and that it learns a lattice."""

import math

import pytest
import torch
from torch_geometric.data import Data

from invdesign.config import model_settings
from invdesign.config.generators import CrystalDiffusionSample, EBMSample, TrainSettings
from invdesign.models.crystal_diffusion import CrystalDiffusion, wrapped_normal_score

ELEMENTS = ["Na", "Mg", "Cl", "O"]


def meta(max_atoms=4):
    return {"domain": "crystals", "max_atoms": max_atoms, "elements": ELEMENTS, "lattice_mean": [1.0] * 3 + [1.5] * 3,
            "lattice_std": [0.1] * 6, "natoms_hist": [0, 0, 2, 0, 1][: max_atoms + 1], "y_mean": 0.0, "y_std": 1.0}


def diffusion(**settings):
    return CrystalDiffusion(meta(), model_settings("crystals", "diffusion", settings))


def ebm(**settings):
    from invdesign.models.crystal_ebm import CrystalEBM

    return CrystalEBM(meta(), model_settings("crystals", "ebm", settings))


# the sampling settings a campaign's defaults give, in the models' sample() keywords
_d = CrystalDiffusionSample()
DIFFUSION = {"guidance_scale": _d.guidance_scale, "sample_steps": 50, "composition_projection": _d.composition_projection}
_e = EBMSample()
EBM = {"guidance_scale": _e.guidance_scale, "steps": _e.langevin_steps, "property_tolerance": _e.property_tolerance}


def test_wrapped_normal_score_is_the_derivative_of_the_wrapped_log_density():
    sigma = torch.tensor([0.05, 0.2, 0.6], dtype=torch.float64).view(-1, 1)
    x = torch.linspace(-0.49, 0.49, 41, dtype=torch.float64).view(1, -1)

    def logp(v):
        k = torch.arange(-10, 11, dtype=torch.float64)
        return torch.logsumexp(-(v.unsqueeze(-1) + k) ** 2 / (2 * sigma.unsqueeze(-1) ** 2), -1)

    h = 1e-5
    numeric = (logp(x + h) - logp(x - h)) / (2 * h)
    assert torch.allclose(wrapped_normal_score(x, sigma, images=4), numeric, rtol=1e-4, atol=1e-4)
    # periodic in the offset
    assert torch.allclose(wrapped_normal_score(x + 1.0, sigma), wrapped_normal_score(x, sigma), atol=1e-8)


def test_denoiser_is_periodic_translation_invariant_and_permutation_equivariant():
    torch.manual_seed(0)
    model = diffusion(hidden=32, layers=2).eval()
    B, M = 3, 4
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    A = torch.randn(B, M, 4) * mask.unsqueeze(-1)
    Fr, L = torch.rand(B, M, 3), torch.randn(B, 6)
    t, c, has = torch.rand(B), torch.randn(B), torch.tensor([True, False, True])
    out = model._net(A, Fr, L, mask, t, c, has)
    # shift every atom by the same vector (and by lattice vectors): nothing changes
    shifted = model._net(A, (Fr + torch.tensor([0.3, -0.7, 1.25])) % 1.0, L, mask, t, c, has)
    for a, b in zip(out, shifted):
        assert torch.allclose(a * (mask.unsqueeze(-1) if a.dim() == 3 else 1), b * (mask.unsqueeze(-1) if b.dim() == 3 else 1),
                              atol=1e-5)
    # reorder the atoms of the full cell: per-atom outputs follow, the lattice output does not move
    perm = torch.tensor([2, 0, 3, 1])
    A2, F2 = A.clone(), Fr.clone()
    A2[2], F2[2] = A[2, perm], Fr[2, perm]
    out2 = model._net(A2, F2, L, mask, t, c, has)
    assert torch.allclose(out2[0][2], out[0][2, perm], atol=1e-5)
    assert torch.allclose(out2[1][2], out[1][2, perm], atol=1e-5)
    assert torch.allclose(out2[2], out[2], atol=1e-5)


def rocksalt(rng, y):
    """Two-atom primitive cell, Na at 0 and Cl at (1/2, 1/2, 1/2); cell size tied to the property."""
    shift = torch.rand(3, generator=rng)
    frac = torch.stack([shift, (shift + 0.5) % 1.0])
    lat = torch.tensor([(math.log(2.8 + 0.1 * y) - 1.0) / 0.1] * 3 + [(math.radians(60) - 1.5) / 0.1] * 3)
    return Data(types_t=torch.tensor([[0, 2, -1, -1]]), frac_t=torch.cat([frac, torch.zeros(2, 3)]).unsqueeze(0),
                lat_t=lat.view(1, 6), y=torch.tensor([y]), num_nodes=2)


def test_crystal_diffusion_learns_rocksalt_and_follows_the_condition():
    from invdesign.models.train import fit

    rng = torch.Generator().manual_seed(0)
    ys = torch.rand(400, generator=rng) * 4 - 2
    graphs = [rocksalt(rng, float(y)) for y in ys]
    model = diffusion(hidden=64, layers=2, diffusion_steps=200)
    fit(model, graphs[:360], graphs[360:], TrainSettings(epochs=120, batch_size=64, lr=3e-3),
        device=torch.device("cpu"), workers=0)
    model.eval()
    out = model.sample(sizes=torch.full((64,), 2), target=torch.tensor(2.0), generator=torch.Generator().manual_seed(1),
                       **DIFFUSION)
    types = out.types[:, :2].sort(1).values
    assert (types == torch.tensor([0, 2])).all(1).float().mean() > 0.8
    d = out.frac[:, 1] - out.frac[:, 0]
    d = (d - d.round()).abs()
    assert (d - 0.5).abs().max(1).values.median() < 0.08           # Cl sits at the cell's body centre
    assert (out.lattice[:, 3:] - 60).abs().median() < 5
    lo = model.sample(sizes=torch.full((64,), 2), target=torch.tensor(-2.0), generator=torch.Generator().manual_seed(1),
                      **DIFFUSION)
    assert out.lattice[:, 0].median() > lo.lattice[:, 0].median() + 0.2   # the condition moves the cell size
    # structure prediction for a given composition: the types are kept as given (either order), only the
    # geometry is generated, and it is the learnt one
    csp = model.sample(types=[[0, 2]] * 16 + [[2, 0]] * 16, generator=torch.Generator().manual_seed(2), **DIFFUSION)
    assert (csp.types[:16, :2] == torch.tensor([0, 2])).all() and (csp.types[16:, :2] == torch.tensor([2, 0])).all()
    assert (csp.types[:, 2:] == -1).all() and (csp.num_atoms == 2).all()
    d = csp.frac[:, 1] - csp.frac[:, 0]
    d = (d - d.round()).abs()
    assert (d - 0.5).abs().max(1).values.median() < 0.08
    assert (csp.lattice[:, 3:] - 60).abs().median() < 5
    with pytest.raises(ValueError, match="element index"):
        model.sample(types=[[0, 7]], **DIFFUSION)
    with pytest.raises(ValueError, match="1-4"):
        model.sample(types=[[0, 1, 2, 3, 0]], **DIFFUSION)


def test_crystal_ebm_energy_is_invariant_and_scores_batches():
    from torch_geometric.loader import DataLoader

    torch.manual_seed(0)
    model = ebm(hidden=32, layers=2).eval()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    A = torch.rand(2, 4, 4) * mask.unsqueeze(-1)
    Fr, L = torch.rand(2, 4, 3), torch.randn(2, 6)
    e = model.energy(A, Fr, L, mask)
    assert torch.allclose(model.energy(A, (Fr + torch.tensor([0.4, 1.0, -0.3])) % 1.0, L, mask), e, atol=1e-5)
    perm = torch.tensor([3, 1, 0, 2])
    assert torch.allclose(model.energy(A[1:, perm], Fr[1:, perm], L[1:], mask[1:]), e[1:], atol=1e-5)
    # the padding slot of cell 0 does not matter
    A2 = A.clone()
    A2[0, 3] = 5.0
    assert torch.allclose(model.energy(A2 * mask.unsqueeze(-1), Fr, L, mask)[0], e[0], atol=1e-6)
    rng = torch.Generator().manual_seed(0)
    graphs = [rocksalt(rng, 0.5) for _ in range(5)]
    scores = torch.cat([model.score_graphs(b) for b in DataLoader(graphs, batch_size=2)])
    assert scores.shape == (5,) and torch.isfinite(scores).all()


def test_crystal_ebm_property_energy_pulls_samples_to_the_target():
    torch.manual_seed(0)
    model = ebm(hidden=32, layers=2, langevin_step_size=0.1).eval()
    kw = {"steps": 40, "property_tolerance": 0.2}
    class CellSize(torch.nn.Module):  # a property head that reads the mean log lattice length
        def forward(self, A, Fr, L, mask):
            return L[:, :3].mean(1)

    model.property_net = CellSize()
    gen = torch.Generator().manual_seed(0)
    free = model.sample(sizes=torch.full((32,), 2), generator=gen, guidance_scale=1.0, **kw)
    hi = model.sample(sizes=torch.full((32,), 2), target=torch.tensor(3.0), guidance_scale=5.0,
                      generator=torch.Generator().manual_seed(0), **kw)
    assert hi.property_pred.mean() > free.property_pred.mean() + 0.5
    assert (hi.types[:, :2] >= 0).all() and (hi.types[:, 2:] == -1).all()
    assert ((hi.frac >= 0) & (hi.frac < 1)).all()
