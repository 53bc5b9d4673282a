"""The universal potentials of the crystal oracle and their energy scales.

CHGNet (v0.3.0, weights in the ``chgnet`` wheel, so it works offline) is the first tier's potential; its energies
are MP2020-compatible (it was trained on MP2020-corrected MPtrj energies), so candidates and reference phases
relaxed with it share one phase diagram. The committee's SevenNet (:mod:`invdesign.oracles.committee`) speaks
uncorrected GGA/GGA+U energies: :func:`mp2020_energy` puts them on CHGNet's scale.

chgnet and pymatgen are imported lazily, so importing this module does not need them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.core import Structure

log = logging.getLogger(__name__)


class ChgnetBundle(NamedTuple):
    """The pretrained CHGNet model and an ASE calculator wrapping it."""

    model: CHGNet
    calculator: CHGNetCalculator


@functools.lru_cache(maxsize=4)
def load_chgnet(model_name: str = "0.3.0", use_device: str | None = None) -> ChgnetBundle:
    """Load chgnet's pretrained model (weights ship in its wheel) and a ``CHGNetCalculator``; cached.

    ``use_device`` is passed to chgnet (None: CUDA when available, else CPU).
    """
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its banner and device
        model = CHGNet.load(model_name=model_name, use_device=use_device, verbose=False)
        calculator = CHGNetCalculator(model=model, use_device=use_device)
    log.info("loaded CHGNet %s (%d parameters) on %s", model.version, model.n_params, calculator.device)
    return ChgnetBundle(model, calculator)


def calculator_or_chgnet(calculator):
    """``calculator``, or :func:`load_chgnet`'s ``CHGNetCalculator`` when it is None."""
    return calculator if calculator is not None else load_chgnet().calculator


def potential_name(calculator) -> str:
    """The potential an ASE calculator wraps, for messages: ``CHGNetCalculator`` -> ``CHGNet``."""
    return type(calculator).__name__.removesuffix("Calculator")


@functools.lru_cache(maxsize=1)
def _compatibility():
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_energy(structure: Structure, energy: float) -> float:
    """``energy`` (eV, total, uncorrected GGA/GGA+U scale) of ``structure`` with the MP2020 corrections; NaN when
    the compatibility scheme cannot place the composition. The run type follows MP's rules: GGA+U with MP's U
    values for the U metals of an oxide or fluoride, GGA otherwise."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    compat = _compatibility()
    symbols = {el.symbol for el in structure.composition.elements}
    hubbards = {}
    for anion in ("O", "F"):
        if anion in symbols:
            hubbards = {el: u for el, u in compat.u_settings[anion].items() if el in symbols}
            break
    params = {"run_type": "GGA+U", "hubbards": hubbards} if hubbards else {"run_type": "GGA"}
    out = compat.process_entry(ComputedStructureEntry(structure, energy, parameters=params), clean=True)
    return float(out.energy) if out is not None else math.nan
