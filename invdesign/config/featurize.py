"""Settings of each domain's featurization (a campaign's ``featurize:``). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Spec, setting


@dataclass(frozen=True, kw_only=True)
class MoleculeFeaturize(Spec):
    xtb_orbitals: bool = setting(False, doc="add atom-resolved GFN2-xTB HOMO/LUMO densities as node features "
                                            "(about 0.2-1 s per molecule)")


@dataclass(frozen=True, kw_only=True)
class CrystalFeaturize(Spec):
    cutoff: float = setting(5.0, gt=0, doc="radius-graph cutoff (Angstrom)")
    max_neighbors: int = setting(12, ge=1, doc="neighbours kept per atom")
    num_gaussians: int = setting(32, ge=2, doc="distance expansion size")


#: domain -> its featurize settings class
FEATURIZE = {"molecules": MoleculeFeaturize, "crystals": CrystalFeaturize}
