"""The crystal oracle's second judge: SevenNet, a universal potential of another family than CHGNet.

A cell CHGNet calls a hit is re-relaxed with SevenNet (``sevenn``, weights in its wheel; an optional extra,
``pip install 'invdesign[committee]'``), placed on a hull of SevenNet energies of the same known phases and
elemental references, and given a SevenNet EOS bulk modulus. The committee confirms a cell only where both
potentials agree that it is stable, in the target and novel.

Energy conventions differ: SevenNet-0 was trained on uncorrected MPtrj energies (GGA and GGA+U mixed), CHGNet
reproduces MP2020-corrected ones. SevenNet energies are therefore put through pymatgen's
``MaterialsProject2020Compatibility`` (anion corrections, GGA/GGA+U mixing for the U metals of oxides and
fluorides; :func:`invdesign.oracles.potentials.mp2020_energy`) before any hull, for candidates and references
alike.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Iterable

from .hull import ReferenceEnergies
from .relax import relax

log = logging.getLogger(__name__)


def sevennet_available() -> bool:
    return importlib.util.find_spec("sevenn") is not None


@functools.lru_cache(maxsize=2)
def load_sevennet(model: str, device: str = "cpu"):
    """SevenNet's ASE calculator for a pretrained ``model`` shipped in the ``sevenn`` wheel (``committee.model``;
    cached)."""
    import warnings

    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor product accelerator": the CPU path is the plain one
        calc = SevenNetCalculator(model, device=device)
    log.info("loaded SevenNet %s on %s", model, device)
    return calc


def relax_ase(structures: Iterable, calculator, *, fmax: float, steps: int) -> list[dict]:
    """The committee's relaxation: :func:`invdesign.oracles.relax.relax` with ``calculator`` (SevenNet's), the
    energies MP2020-corrected."""
    return relax(structures, calculator, fmax=fmax, steps=steps, mp2020=True)


class CorrectedReferences(ReferenceEnergies):
    """:class:`ReferenceEnergies` of a potential trained on uncorrected energies, MP2020-corrected (SevenNet's
    hull)."""

    mp2020 = True
