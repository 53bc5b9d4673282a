"""What the generators hand back: one typed shape per domain, whichever generator made the samples.

* :class:`MoleculeSamples`: molecules as SELFIES token ids (the VAE's decoder) or as dense heavy-atom graphs
  (diffusion, EBM); ``representation`` says which, and the domain decodes either into SMILES.
* :class:`CrystalSamples`: cells as element indices, fractional coordinates and lattice parameters (every
  crystal generator).

Both may carry the generator's own property estimate (``property_pred``, data units; ``property_pred_std``
for an ensemble). Torch only: the models return these, and the domains (rdkit / pymatgen) decode them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


def _cat(parts: list, name: str):
    values = [getattr(p, name) for p in parts]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f"cannot concatenate samples where only some have {name}")
    if torch.is_tensor(values[0]):
        return torch.cat(values)
    return values[0]  # flags are the same for every batch of one sampler


class _Samples:
    def __len__(self) -> int:
        for f in fields(self):
            v = getattr(self, f.name)
            if torch.is_tensor(v):
                return int(v.shape[0])
        return 0

    @classmethod
    def concat(cls, parts: list):
        """One set from the batches of one sampler (same fields filled in every batch)."""
        return cls(**{f.name: _cat(parts, f.name) for f in fields(cls)})

    def cpu(self):
        return type(self)(**{f.name: (v.cpu() if torch.is_tensor(v) else v)
                             for f in fields(self) for v in [getattr(self, f.name)]})


@dataclass
class MoleculeSamples(_Samples):
    #: [B, max_len] SELFIES token ids into ``meta['vocab']`` (VAE)
    tokens: torch.Tensor | None = None
    #: [B, N] element indices into ``meta['elements']`` (-1 = padding) and [B, N, N] Kekule bond orders 0-3
    atom_classes: torch.Tensor | None = None
    bonds: torch.Tensor | None = None
    #: [B, N, N] how strongly each pair wants a bond (EBM): the order in which valency correction drops bonds
    bond_scores: torch.Tensor | None = None
    #: decode the graphs with valency correction (continuous relaxations such as Langevin need it)
    valency_correction: bool = False
    property_pred: torch.Tensor | None = None
    property_pred_std: torch.Tensor | None = None

    @property
    def representation(self) -> str:
        return "selfies" if self.tokens is not None else "graph"


@dataclass
class CrystalSamples(_Samples):
    types: torch.Tensor | None = None          # [B, M] element indices (-1 = no atom)
    frac: torch.Tensor | None = None           # [B, M, 3] fractional coordinates
    lattice: torch.Tensor | None = None        # [B, 6] a, b, c (A), alpha, beta, gamma (degrees)
    num_atoms: torch.Tensor | None = None      # [B]
    property_pred: torch.Tensor | None = None
    property_pred_std: torch.Tensor | None = None
