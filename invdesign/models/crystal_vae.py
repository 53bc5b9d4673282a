"""Crystal VAE: invariant periodic-graph encoder; decoder for lattice + composition + coordinates.

The decoder predicts the number of atoms, six lattice parameters (log lengths and angles of
the Niggli-reduced cell, standardised) and a fixed set of atom slots, each with element
logits (plus an 'empty' class) and fractional coordinates. Slots are matched to the true
atoms with the Hungarian algorithm on a type + periodic-distance cost, so the loss does not
depend on the order of the sites.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

from .gnn import mlp
from typing import TYPE_CHECKING

from .samples import CrystalSamples
from .vae import GraphVAE

if TYPE_CHECKING:
    from ..config.generators import CrystalVAEModel


def periodic_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance on the unit 3-torus between broadcastable fractional coordinates."""
    d = a - b
    d = d - torch.round(d)
    return (d ** 2).sum(-1)


class CrystalVAE(GraphVAE):
    def __init__(self, meta: dict, cfg: CrystalVAEModel):
        super().__init__(meta, cfg)
        hidden = cfg.hidden
        self.max_atoms = int(meta["max_atoms"])
        self.n_types = len(meta["elements"])
        self.register_buffer("lat_mean", torch.tensor(meta["lattice_mean"], dtype=torch.float32))
        self.register_buffer("lat_std", torch.tensor(meta["lattice_std"], dtype=torch.float32))
        self.trunk = mlp([self.latent_dim, hidden, 2 * hidden], final_act=True)
        self.natoms_head = nn.Linear(2 * hidden, self.max_atoms)
        self.lattice_head = mlp([2 * hidden, hidden, 6])
        self.slot_embed = nn.Parameter(0.1 * torch.randn(self.max_atoms, hidden))
        self.slot_head = mlp([3 * hidden, 2 * hidden, hidden, self.n_types + 1 + 3])
        self.coord_weight = cfg.coord_weight
        # crystal-level composition: which elements are present and how many distinct ones
        self.max_elements = 4
        self.presence_head = nn.Linear(2 * hidden, self.n_types)
        self.nelem_head = nn.Linear(2 * hidden, self.max_elements)
        # decoding only proposes atom counts and numbers of elements that occur in the training data
        seen = torch.zeros(self.max_atoms, dtype=torch.bool)
        seen[[n - 1 for n in meta.get("natoms_seen", range(1, self.max_atoms + 1)) if 1 <= n <= self.max_atoms]] = True
        lo, hi = meta.get("n_elements_range", [1, self.max_elements])
        lo = min(int(lo), self.max_elements)
        self.register_buffer("natoms_allowed", seen, persistent=False)
        self.register_buffer("nelem_allowed", torch.tensor([lo <= k + 1 <= hi for k in range(self.max_elements)]),
                             persistent=False)

    def _decode_raw(self, z):
        h = self.trunk(z)
        slots = torch.cat([h.unsqueeze(1).expand(-1, self.max_atoms, -1),
                           self.slot_embed.unsqueeze(0).expand(z.size(0), -1, -1)], dim=-1)
        out = self.slot_head(slots)
        return (self.natoms_head(h), self.lattice_head(h), out[..., : self.n_types + 1],
                torch.sigmoid(out[..., self.n_types + 1:]), self.presence_head(h), self.nelem_head(h))

    def reconstruction_loss(self, z, batch):
        nat_logits, lat, type_logits, frac, presence, nelem_logits = self._decode_raw(z)
        types_t = batch.types_t[:, : self.max_atoms]      # [B, M], -1 = no atom
        frac_t = batch.frac_t[:, : self.max_atoms]        # [B, M, 3]
        n_t = (types_t >= 0).sum(1)
        logp = F.log_softmax(type_logits, -1)             # [B, M, T+1]
        gathered = logp.gather(2, types_t.clamp(min=0).unsqueeze(1).expand(-1, self.max_atoms, -1))
        dist = periodic_sq(frac.unsqueeze(2), frac_t.unsqueeze(1))            # [B, slot, atom]
        cost = (-gathered + self.coord_weight * dist).detach().cpu().numpy()
        target_types = torch.full_like(types_t, self.n_types)                  # 'empty'
        rows_b, rows_s, rows_a = [], [], []
        for b in range(z.size(0)):
            n = int(n_t[b])
            if n == 0:
                continue
            slot_idx, atom_idx = linear_sum_assignment(cost[b, :, :n])
            rows_b.append(np.full(n, b)), rows_s.append(slot_idx), rows_a.append(atom_idx)
        bi = torch.as_tensor(np.concatenate(rows_b), device=z.device)
        si = torch.as_tensor(np.concatenate(rows_s), device=z.device)
        ai = torch.as_tensor(np.concatenate(rows_a), device=z.device)
        target_types[bi, si] = types_t[bi, ai]
        type_loss = F.cross_entropy(type_logits.reshape(-1, self.n_types + 1), target_types.reshape(-1))
        coord_loss = dist[bi, si, ai].mean()
        nat_loss = F.cross_entropy(nat_logits, (n_t - 1).clamp(min=0))
        lat_loss = F.mse_loss(lat, batch.lat_t)
        present = torch.zeros(z.size(0), self.n_types + 1, device=z.device)
        present.scatter_(1, torch.where(types_t >= 0, types_t, self.n_types), 1.0)
        present = present[:, : self.n_types]
        presence_loss = F.binary_cross_entropy_with_logits(presence, present) * self.n_types / 4
        n_elem = present.sum(1).long().clamp(1, self.max_elements)
        nelem_loss = F.cross_entropy(nelem_logits, n_elem - 1)
        with torch.no_grad():
            comp_acc = (type_logits.argmax(-1) == target_types).all(1).float().mean()
            nat_acc = (nat_logits.argmax(-1) == n_t - 1).float().mean()
        loss = (type_loss * self.max_atoms / 4 + self.coord_weight * coord_loss + nat_loss + lat_loss
                + presence_loss + nelem_loss)
        return loss, {"type_ce": float(type_loss.detach()), "coord_sq": float(coord_loss.detach()),
                      "natoms_acc": float(nat_acc), "lattice_mse": float(lat_loss.detach()),
                      "composition_acc": float(comp_acc), "presence_bce": float(presence_loss.detach())}

    @staticmethod
    def _use_every_element(types, probs, allowed, keep):
        """Make each element of the chosen set appear at least once (when there are enough atoms):
        an unused element takes over the kept slot that likes it most, among slots whose element
        occurs more than once."""
        types, probs, allowed, keep = types.cpu(), probs.cpu(), allowed.cpu(), keep.cpu()
        for b in range(types.size(0)):
            wanted = torch.nonzero(allowed[b]).view(-1).tolist()
            slots = torch.nonzero(keep[b]).view(-1)
            if len(wanted) > len(slots):
                continue
            for el in wanted:
                current = types[b, slots]
                if (current == el).any():
                    continue
                counts = torch.bincount(current, minlength=probs.size(-1))
                movable = slots[counts[current] > 1]
                if len(movable):
                    types[b, movable[probs[b, movable, el].argmax()]] = el
        return types

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> dict:
        nat_logits, lat, type_logits, frac, presence, nelem_logits = self._decode_raw(z)
        n = nat_logits.masked_fill(~self.natoms_allowed, -torch.inf).argmax(-1) + 1
        # element set first (top-k by presence, k = predicted number of elements, at most n atoms),
        # then every slot picks its element from that set
        k = torch.minimum(nelem_logits.masked_fill(~self.nelem_allowed, -torch.inf).argmax(-1) + 1, n)
        order_el = torch.argsort(presence, dim=1, descending=True)
        allowed = torch.argsort(order_el, dim=1) < k.unsqueeze(1)             # [B, T]
        masked = type_logits.clone()
        masked[..., : self.n_types] = masked[..., : self.n_types].masked_fill(~allowed.unsqueeze(1), -torch.inf)
        probs = F.softmax(masked, -1)
        occupied = 1.0 - probs[..., self.n_types]
        order = torch.argsort(occupied, dim=1, descending=True)
        rank = torch.argsort(order, dim=1)                   # rank of each slot by occupancy
        keep = rank < n.unsqueeze(1)
        types = probs[..., : self.n_types].argmax(-1).masked_fill(~keep, -1)
        types = self._use_every_element(types, probs[..., : self.n_types], allowed, keep)
        raw = lat * self.lat_std + self.lat_mean
        lattice = torch.cat([torch.exp(raw[:, :3]), torch.rad2deg(raw[:, 3:])], dim=1)
        return CrystalSamples(types=types, frac=frac, lattice=lattice, num_atoms=n)
