"""Crystal diffusion: joint diffusion of lattice, fractional coordinates and atom types.

The three parts of a periodic structure are noised together, in the way of DiffCSP / MatterGen:

* **lattice**: six invariant parameters of the reduced cell (log lengths, angles; standardised) under
  a variance-preserving Gaussian diffusion (cosine schedule, noise prediction). Lengths and angles do
  not change when the structure is rotated, so no frame enters the model;
* **fractional coordinates**: a variance-exploding *wrapped* normal diffusion on the unit 3-torus
  (sigma from ``sigma_min`` to ``sigma_max``); the network predicts ``sigma * score`` of the wrapped
  normal transition kernel (a sum over periodic images), so the loss is periodic;
* **atom types**: one-hot vectors under the same variance-preserving diffusion as the lattice; the
  sample takes the arg-max element. In the second half of sampling each cell's predicted
  composition is restricted to its k most abundant elements, with k inside the data's range of
  distinct elements per cell (``composition_projection``).

The denoiser passes messages between all atom pairs of a cell. A pair message sees the two atoms'
states, Fourier features of their fractional-coordinate *difference* (periodic: unchanged by a
lattice translation and by a global shift of all atoms) and the lattice parameters; pooled messages
update the atoms. Outputs are therefore invariant to rotation and translation, and equivariant to the
order of the atoms.

Conditioning on the (standardised) property is classifier-free: the condition is dropped for a
fraction ``condition_dropout`` of training cells, and sampling mixes conditional and unconditional
predictions, ``(1 + w) * cond - w * uncond``, with guidance scale ``w`` from the config.

Samples are :class:`~invdesign.models.samples.CrystalSamples`, as the crystal VAE's decoder gives.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .gnn import mlp
from .graph_diffusion import cosine_alpha_bar
from .samples import CrystalSamples
from .sampling import sample_in_batches

if TYPE_CHECKING:
    from ..config.generators import CrystalDiffusionModel


def wrapped_normal_score(delta: torch.Tensor, sigma: torch.Tensor, images: int = 3) -> torch.Tensor:
    """Score d/dx log p(x) of a normal of width ``sigma`` wrapped on [0, 1), at offset ``delta`` = x - mean.

    ``sigma`` broadcasts against ``delta``; the sum runs over ``2 * images + 1`` periodic images.
    """
    k = torch.arange(-images, images + 1, device=delta.device, dtype=delta.dtype)
    d = (delta - torch.round(delta)).unsqueeze(-1) + k                     # [..., images]
    s2 = (sigma ** 2).unsqueeze(-1)
    logw = -d ** 2 / (2 * s2)
    w = torch.softmax(logw, dim=-1)
    return (w * (-d / s2)).sum(-1)


def fourier(d: torch.Tensor, k: int) -> torch.Tensor:
    """Periodic features of fractional differences [..., 3] -> [..., 6k]."""
    freqs = 2 * math.pi * torch.arange(1, k + 1, device=d.device, dtype=d.dtype)
    x = d.unsqueeze(-1) * freqs                                            # [..., 3, k]
    return torch.cat([torch.sin(x), torch.cos(x)], -1).flatten(-2)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    x = t.float().view(-1, 1) * 1000.0 * freqs
    return torch.cat([torch.sin(x), torch.cos(x)], -1)


def natoms_histogram(meta: dict, max_atoms: int) -> torch.Tensor:
    """Cells per atom count (index = count) from the featurization's meta; uniform over the counts seen
    when the meta predates the histogram."""
    hist = torch.zeros(max_atoms + 1)
    counts = meta.get("natoms_hist")
    if counts:
        c = torch.tensor(counts, dtype=torch.float32)[: max_atoms + 1]
        hist[: len(c)] = c
    else:
        hist[[n for n in meta.get("natoms_seen", range(1, max_atoms + 1)) if n <= max_atoms]] = 1.0
    return hist


def allowed_elements(x0: torch.Tensor, mask: torch.Tensor, n_elements_range) -> torch.Tensor:
    """[B, T] mask of each cell's k most abundant elements in a (continuous) one-hot type prediction.

    k counts the elements holding at least half an atom of the predicted mass, clipped to the data's
    range of distinct elements per cell and to the cell's atom count. Sampling switches the other
    elements off; without it, atoms pick elements independently and cells come out with implausibly
    many elements.
    """
    prob = torch.softmax(4.0 * x0, -1) * mask.unsqueeze(-1)
    mass = prob.sum(1)                                                   # [B, T] atoms per element
    lo, hi = n_elements_range
    k = (mass >= 0.5).sum(1).clamp(min=int(lo), max=int(hi))
    k = torch.minimum(k, mask.sum(1)).clamp(min=1)
    rank = torch.argsort(torch.argsort(mass, 1, descending=True), 1)
    return rank < k.unsqueeze(1)


def _vp_step(x, eps, ab, ab_next, bounds, noise, project=None):
    """One reverse step of the variance-preserving parts: the predicted clean value (clipped to ``bounds``,
    optionally projected), its DDIM-style mean at the next noise level, plus the DDPM posterior noise."""
    x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(*bounds)
    if project is not None:
        x0 = project(x0)
    var = ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp(min=0)
    dir_coef = (1 - ab_next - var).clamp(min=0).sqrt()
    return ab_next.sqrt() * x0 + dir_coef * eps + var.sqrt() * noise


class PeriodicLayer(nn.Module):
    def __init__(self, hidden: int, n_fourier: int):
        super().__init__()
        self.edge = mlp([2 * hidden + 6 * n_fourier + 6, hidden, hidden], final_act=True)
        self.node = mlp([2 * hidden, hidden, hidden])
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h, ff, lat, mask):
        B, M, H = h.shape
        hi = h.unsqueeze(2).expand(B, M, M, H)
        hj = h.unsqueeze(1).expand(B, M, M, H)
        m = self.edge(torch.cat([hi, hj, ff, lat.view(B, 1, 1, -1).expand(B, M, M, 6)], -1))
        pm = (mask.unsqueeze(1) & mask.unsqueeze(2)).unsqueeze(-1).float()
        agg = (m * pm).sum(2) / pm.sum(2).clamp(min=1.0)
        return self.norm(h + self.node(torch.cat([h, agg], -1))) * mask.unsqueeze(-1)


class CellGenerator(nn.Module):
    """Shared set-up of whole-cell generators: sizes, property and lattice scaling, the data's element range."""

    def __init__(self, meta: dict, cfg):
        super().__init__()
        self.meta = dict(meta)
        self.settings = cfg
        self.max_atoms = int(meta["max_atoms"])
        self.n_types = len(meta["elements"])
        self.register_buffer("y_mean", torch.tensor(float(meta.get("y_mean", 0.0))))
        self.register_buffer("y_std", torch.tensor(float(meta.get("y_std", 1.0))))
        self.register_buffer("lat_mean", torch.tensor(meta["lattice_mean"], dtype=torch.float32))
        self.register_buffer("lat_std", torch.tensor(meta["lattice_std"], dtype=torch.float32))
        self.register_buffer("n_hist", natoms_histogram(meta, self.max_atoms))
        lo, hi = meta.get("n_elements_range", [1, self.n_types])
        self.n_elements_range = (int(lo), int(hi))

    def _targets(self, batch):
        """(one-hot types [B,M,T], fractional coordinates [B,M,3], standardised lattice [B,6], atom mask [B,M])."""
        types = batch.types_t[:, : self.max_atoms]
        mask = types >= 0
        A = F.one_hot(types.clamp(min=0), self.n_types).float() * mask.unsqueeze(-1)
        return A, batch.frac_t[:, : self.max_atoms].float(), batch.lat_t.float(), mask

    def _lattice(self, L: torch.Tensor) -> torch.Tensor:
        """Standardised parameters -> (a, b, c in A, alpha, beta, gamma in degrees)."""
        raw = L * self.lat_std + self.lat_mean
        return torch.cat([torch.exp(raw[:, :3]), torch.rad2deg(raw[:, 3:])], dim=1)

    def _sizes(self, count, sizes, generator) -> torch.Tensor:
        if sizes is None:
            sizes = torch.multinomial(self.n_hist.cpu(), int(count), replacement=True, generator=generator)
        return torch.as_tensor(sizes).long().clamp(1, self.max_atoms).cpu()


class CrystalDiffusion(CellGenerator):
    """Periodic crystal generator; trains on the crystal graphs' decoder targets (types_t, frac_t, lat_t)."""

    #: sample(types=...) predicts structures for given compositions
    supports_given_types = True

    def __init__(self, meta: dict, cfg: CrystalDiffusionModel):
        super().__init__(meta, cfg)
        hidden = cfg.hidden
        self.n_fourier = cfg.fourier_features
        self.T = cfg.diffusion_steps
        self.sigma_min = cfg.sigma_min
        self.sigma_max = cfg.sigma_max
        self.cond_drop = cfg.condition_dropout
        abar, _ = cosine_alpha_bar(self.T)
        self.register_buffer("abar", abar)
        self.embed_type = nn.Linear(self.n_types, hidden)
        self.embed_ctx = mlp([hidden + 2 + 6, hidden, hidden])           # time, condition (+flag), lattice
        self.layers = nn.ModuleList(PeriodicLayer(hidden, self.n_fourier) for _ in range(cfg.layers))
        self.out_type = mlp([hidden, hidden, self.n_types])
        self.out_frac = mlp([hidden, hidden, 3])
        self.out_lat = mlp([2 * hidden + 6, hidden, 6])
        self.t_dim = hidden

    # ------------------------------------------------------------------ schedule
    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """VE width at continuous time t in [0, 1]."""
        return self.sigma_min ** (1 - t) * self.sigma_max ** t

    def _abar(self, t: torch.Tensor) -> torch.Tensor:
        return self.abar[(t * self.T).round().long().clamp(0, self.T)]

    # ------------------------------------------------------------------ network
    def _net(self, A, Fr, L, mask, t, cond, has):
        B, M, _ = A.shape
        ctx = self.embed_ctx(torch.cat([time_embedding(t, self.t_dim), (cond * has).view(-1, 1),
                                        has.float().view(-1, 1), L], -1))
        h = (self.embed_type(A) + ctx.unsqueeze(1)) * mask.unsqueeze(-1)
        ff = fourier(Fr.unsqueeze(1) - Fr.unsqueeze(2), self.n_fourier)    # [B, M, M, 6k]
        for layer in self.layers:
            h = layer(h, ff, L, mask)
        pooled = torch.cat([(h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1), ctx, L], -1)
        return self.out_type(h), self.out_frac(h), self.out_lat(pooled)

    def loss(self, batch):
        A0, F0, L0, mask = self._targets(batch)
        B = A0.size(0)
        dev = A0.device
        t = torch.rand(B, device=dev) * (1 - 1e-3) + 1e-3
        ab = self._abar(t).view(-1, 1)
        eps_l = torch.randn_like(L0)
        Lt = ab.sqrt() * L0 + (1 - ab).sqrt() * eps_l
        eps_a = torch.randn_like(A0)
        At = (ab.sqrt().view(-1, 1, 1) * A0 + (1 - ab).sqrt().view(-1, 1, 1) * eps_a) * mask.unsqueeze(-1)
        sig = self.sigma(t).view(-1, 1, 1)
        Ft = (F0 + sig * torch.randn_like(F0)) % 1.0
        target_f = sig * wrapped_normal_score(Ft - F0, sig)
        y = batch.y.view(-1)
        c = ((y - self.y_mean) / self.y_std).nan_to_num(0.0)
        has = torch.isfinite(y) & (torch.rand(B, device=dev) >= self.cond_drop)
        pa, pf, pl = self._net(At, Ft, Lt, mask, t, c, has)
        m = mask.unsqueeze(-1).float()
        loss_a = ((pa - eps_a) ** 2 * m).sum() / (m.sum() * self.n_types)
        loss_f = ((pf - target_f) ** 2 * m).sum() / (m.sum() * 3)
        loss_l = F.mse_loss(pl, eps_l)
        return loss_a + loss_f + loss_l, {"type_mse": float(loss_a.detach()), "frac_mse": float(loss_f.detach()),
                                          "lattice_mse": float(loss_l.detach())}

    # ------------------------------------------------------------------ sampling
    def _guided(self, At, Ft, Lt, mask, t, c, has, w):
        pa, pf, pl = self._net(At, Ft, Lt, mask, t, c, has)
        if w != 0 and bool(has.any()):
            ua, uf, ul = self._net(At, Ft, Lt, mask, t, c, torch.zeros_like(has))
            pa, pf, pl = (1 + w) * pa - w * ua, (1 + w) * pf - w * uf, (1 + w) * pl - w * ul
        return pa, pf, pl

    @torch.no_grad()
    def sample(self, count: int | None = None, *, sizes=None, target=None, guidance_scale: float, sample_steps: int,
               composition_projection: float, generator: torch.Generator | None = None, batch_size: int = 512,
               progress=None, types=None) -> dict:
        """Sample cells. ``sizes``: atoms per cell (else drawn from the training histogram); ``target``:
        property values in data units (one, or one per cell) for classifier-free guidance with weight
        ``guidance_scale``; ``sample_steps`` reverse-time steps; from noise level ``composition_projection`` on
        (1 = pure noise, 0 = never) each cell keeps only its most abundant elements (see ``allowed_elements``).

        ``types``: structure prediction for given compositions (as in DiffCSP's CSP task): one sequence of
        element indices (into ``meta["elements"]``) per cell; the cell's size is its length, and only the
        lattice and the coordinates are generated. The joint model is conditioned on the known types by
        replacement: at every step the type channel is the given composition noised to that step's level."""
        fixed = None
        if types is not None:
            types = [torch.as_tensor(t, dtype=torch.long).view(-1) for t in types]
            if sizes is not None or count is not None:
                raise ValueError("give either types (one composition per cell) or count/sizes, not both")
            if not types:
                raise ValueError("types is empty: give at least one composition")
            for t in types:
                if len(t) < 1 or len(t) > self.max_atoms:
                    raise ValueError(f"a cell of {len(t)} atoms: this model makes cells of 1-{self.max_atoms}")
                if int(t.min()) < 0 or int(t.max()) >= self.n_types:
                    raise ValueError(f"element index outside 0-{self.n_types - 1} (the model's element list)")
            sizes = torch.tensor([len(t) for t in types])
            fixed = torch.full((len(types), self.max_atoms), -1, dtype=torch.long)
            for i, t in enumerate(types):
                fixed[i, : len(t)] = t
        sizes = self._sizes(count, sizes, generator)
        w, n, proj = float(guidance_scale), int(sample_steps), float(composition_projection)
        return sample_in_batches(sizes, target, batch_size,
                                 lambda sz, t, fx=None: self._sample_batch(sz, t, w, n, proj, generator, fx),
                                 progress, fixed)

    def _sample_batch(self, sizes, target, w, n, projection_from, gen, fixed=None):
        dev = self.abar.device
        # with given types the batch needs only as many slots as its largest cell (the network ignores padding)
        B, M = len(sizes), (self.max_atoms if fixed is None else int(sizes.max()))

        def randn(*shape):
            return torch.randn(*shape, generator=gen).to(dev)

        mask = (torch.arange(M).view(1, -1) < sizes.view(-1, 1)).to(dev)
        m = mask.unsqueeze(-1).float()
        At, Lt = randn(B, M, self.n_types) * m, randn(B, 6)
        Ft = torch.rand(B, M, 3, generator=gen).to(dev)
        if target is not None:
            c, has = (target.to(dev) - self.y_mean) / self.y_std, torch.ones(B, dtype=torch.bool, device=dev)
        else:
            c, has = torch.zeros(B, device=dev), torch.zeros(B, dtype=torch.bool, device=dev)

        def project(x0):  # each cell keeps its most abundant elements; the others are switched off
            keep = allowed_elements(x0, mask, self.n_elements_range)
            return torch.where(keep.unsqueeze(1), x0, x0.clamp(max=0.0))

        A0 = None
        if fixed is not None:  # given composition: one-hot of the given types
            fixed = fixed[:, :M].to(dev)
            A0 = F.one_hot(fixed.clamp(min=0), self.n_types).float() * m
        grid = torch.linspace(1.0, 0.0, n + 1, device=dev)
        for t_now, t_next in zip(grid[:-1], grid[1:]):
            t = torch.full((B,), float(t_now), device=dev)
            pa, pf, pl = self._guided(At, Ft, Lt, mask, t, c, has, w)
            # VP parts (DDIM-style deterministic mean + the DDPM posterior noise)
            ab, ab_next = self._abar(t_now.view(1)), self._abar(t_next.view(1))
            late = float(t_now) <= projection_from
            if A0 is None:
                At = _vp_step(At, pa, ab, ab_next, (-1.5, 2.5), randn(*At.shape), project if late else None) * m
            else:  # replacement: the type channel is the known composition at the next step's noise level
                At = (ab_next.sqrt() * A0 + (1 - ab_next).sqrt() * randn(*At.shape)) * m
            Lt = _vp_step(Lt, pl, ab, ab_next, (-4.0, 4.0), randn(*Lt.shape))
            # VE torus part: reverse SDE, Euler-Maruyama, wrapped
            s_now, s_next = self.sigma(t_now), self.sigma(t_next) if t_next > 0 else torch.tensor(0.0, device=dev)
            score = pf / s_now
            dvar = s_now ** 2 - s_next ** 2
            Ft = (Ft + dvar * score + dvar.clamp(min=0).sqrt() * randn(B, M, 3) * (t_next > 0)) % 1.0
        if fixed is not None:
            pad = self.max_atoms - M
            types = F.pad(torch.where(mask, fixed, torch.full_like(fixed, -1)), (0, pad), value=-1)
            Ft = F.pad(Ft, (0, 0, 0, pad))
        else:
            allowed = (allowed_elements(At, mask, self.n_elements_range) if projection_from > 0
                       else torch.ones_like(At[:, 0], dtype=torch.bool))
            types = torch.where(mask, At.masked_fill(~allowed.unsqueeze(1), -torch.inf).argmax(-1),
                                torch.full_like(mask, -1, dtype=torch.long))
        return CrystalSamples(types=types.cpu(), frac=Ft.cpu(), lattice=self._lattice(Lt).cpu(), num_atoms=sizes.cpu())
