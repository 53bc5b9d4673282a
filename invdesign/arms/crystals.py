"""The classical crystal arm: element substitution into the data set's binary cells (``substitution``,
:mod:`invdesign.chem.substitution`)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InvdesignError
from .base import ArmRequest

log = logging.getLogger("invdesign")


class Substitution:
    """``n_substitutions`` random (binary cell of the data set, ordered pair of ``elements``) draws, each cell
    rescaled to the sum of its new atoms' volumes fitted on the data set's cells (as the crystal oracle fits them).
    The campaign's filters judge validity and novelty, its predictor ranks them."""

    def __init__(self, sample_settings) -> None:
        self.settings = sample_settings

    def propose(self, request: ArmRequest) -> pd.DataFrame:
        from ..chem.crystals import fit_atomic_volumes, structure_from_record
        from ..chem.substitution import binary_prototypes, substitutions

        s, data = self.settings, request.dataset
        structures = [structure_from_record(r) for r in data["structure"]]
        elements = list(s.elements) or sorted({el.symbol for c in structures for el in c.composition.elements})
        protos = binary_prototypes(data["id"], structures)
        if not protos:
            raise InvdesignError("the substitution generator needs binary cells in the data set and it has none; "
                                 "remove the generator or use a data set with binary compounds")
        log.info("substitution: %d binary prototypes, %d elements", len(protos), len(elements))
        table = substitutions(protos, elements, fit_atomic_volumes(structures), s.n_substitutions,
                              np.random.default_rng(s.seed))
        return table.drop(columns=["sample_id"]).assign(generator_pred=request.aim)
