"""Structure prediction for given compositions: formulas, the composition space from feedback, cells, errors."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Data

from invdesign.oracles import measured_by
from invdesign.chem.crystals import binary_formulas, formula_counts
from invdesign.config import model_settings, validate_config
from invdesign.config.generators import Compositions, CrystalDiffusionSample
from invdesign.domains import get_domain
from invdesign.errors import InvdesignError
from invdesign.models.crystal_diffusion import CrystalDiffusion
from invdesign.pipeline import compositions
from invdesign.properties import PROPERTIES
from invdesign.sampling import SampleRequest, make_sampler

ELEMENTS = ["Co", "Ir", "Ni", "Re", "Sn"]
META = {"domain": "crystals", "max_atoms": 8, "elements": ELEMENTS, "lattice_mean": [1.1] * 3 + [1.5] * 3,
        "lattice_std": [0.1] * 6, "natoms_hist": [0, 1, 1, 1, 1, 0, 0, 0, 1], "y_mean": 250.0, "y_std": 50.0}


def test_formula_counts_and_the_binary_space():
    assert formula_counts("Ir6Re2") == {"Ir": 3, "Re": 1}
    assert formula_counts("CoIr") == {"Co": 1, "Ir": 1}
    for bad, match in (("Xx3", "not a chemical formula"), ("Ir0.5Re0.5", "fractional")):
        with pytest.raises(ValueError, match=match):
            formula_counts(bad)
    space = binary_formulas(["Ir", "Re", "Co"], max_reduced_atoms=4)
    # pairs x coprime (a, b) with a + b <= 4: (1,1) (1,2) (2,1) (1,3) (3,1) -> 3 pairs x 5, none twice
    assert len(space) == 15 and len({frozenset(c.items()) for c in space.values()}) == 15
    assert space["ReIr3"] == {"Ir": 3, "Re": 1}                # keys are pymatgen's reduced formulas
    assert all(sum(c.values()) <= 4 and len(c) == 2 for c in space.values())


def test_composition_cells_keep_the_formula_and_fit_the_model():
    types, owner = compositions.composition_cells(["Ir3Re", "CoNi3Ir2"], META, cells_per_formula=2)
    assert owner == ["ReIr3", "ReIr3", "CoNi3Ir2", "CoNi3Ir2"]   # pymatgen's reduced formulas
    assert [len(t) for t in types] == [4, 8, 6, 6]            # 2 x 6 atoms do not fit 8: one unit again
    assert sorted(types[1]) == sorted([1] * 6 + [3] * 2)


TARGET = {"min": 300.0}


def formulas(comp: dict, feedback=()):
    return compositions.structure_prediction_formulas(Compositions.parse(comp), META, list(feedback), TARGET,
                                                      measured_by("bulk_modulus_gpa")["chgnet"])


def test_guided_sampling_predicts_structures_for_the_given_formulas():
    torch.manual_seed(0)
    model = CrystalDiffusion(META, model_settings("crystals", "diffusion", {"hidden": 16, "layers": 1,
                                                                           "diffusion_steps": 20})).eval()
    train = [Data(y=torch.tensor([v]), num_nodes=2) for v in (200.0, 310.0, 350.0)]
    comp = Compositions.parse({"formulas": ["Ir3Re", "CoIr"], "cells_per_formula": 2})
    types, owner = compositions.composition_cells(formulas(comp.to_dict()), META, comp.cells_per_formula)
    sampler = make_sampler("diffusion", model, CrystalDiffusionSample.parse({"n_samples": 4, "sample_steps": 5,
                                                                            "compositions": comp.to_dict()}))
    out = sampler.sample(SampleRequest(target=TARGET, train=train, compositions=types, composition_formulas=owner))
    df = get_domain("crystals").decode(out.structures, META).assign(**out.columns)
    assert list(df["requested_formula"]) == ["ReIr3", "ReIr3", "CoIr", "CoIr"]
    built = df[df["structure"].notna() & df["merged_sites"].eq(0)]
    assert len(built) >= 2 and (built["formula"] == built["requested_formula"]).all()
    assert (df["requested_property"] >= 300).all()            # conditioned on values inside the target


def test_listed_formulas_are_reduced_and_deduplicated():
    assert formulas({"formulas": ["Ir6Re2", "ReIr3", "CoIr"]}) == ["ReIr3", "CoIr"]


@pytest.mark.parametrize("formula, match", [("Ir3Pt", "never saw"), ("Ir7Re2", "needs 9 atoms"),
                                            ("Ir3Q", "not a chemical formula")])
def test_bad_formulas_get_one_line_errors(formula, match):
    with pytest.raises(InvdesignError, match=match) as err:
        formulas({"formulas": [formula]})
    assert "\n" not in str(err.value) and "compositions.formulas" in str(err.value)


def test_formulas_from_feedback_are_unverified_binaries_of_the_raising_elements(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(120):  # Ir and Re make cells stiff, Sn soft; Co neutral-ish; all stable
        a, b = rng.choice(["Co", "Ir", "Re", "Sn"], size=2, replace=False)
        k = {"Co": 230.0, "Ir": 330.0, "Re": 340.0, "Sn": 60.0}
        rows.append({"formula": f"{a}{b}", "predicted_property": 250.0 + rng.normal(0, 20),
                     "stable": True, "eos_bulk_modulus_gpa": (k[a] + k[b]) / 2 + rng.normal(0, 5)})
    rows.append({"formula": "IrRe", "predicted_property": 300.0, "stable": True, "eos_bulk_modulus_gpa": 335.0})
    path = tmp_path / "candidates_verified.parquet"
    pd.DataFrame(rows).to_parquet(path)
    comp = {"from_feedback": True, "max_reduced_atoms": 4, "max_formulas": 500}
    got = formulas(comp, [str(path)])
    elements = {el for f in got for el in formula_counts(f)}
    assert elements <= {"Ir", "Re", "Co"} and {"Ir", "Re"} <= elements and "Sn" not in elements
    assert "ReIr" not in got                                   # verified already (as "IrRe")
    assert len(got) == len(set(got))
    assert formulas(dict(comp, max_formulas=3), [str(path)]) == got[:3]


@pytest.fixture
def base(repo):
    import yaml

    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("where, compositions, match", [
    ("qm9_gap", {"formulas": ["CO2"]}, "setting of the crystals diffusion generator"),
    ("mp_bulk", {"from_feedback": True}, "needs oracle.feedback_from"),
    ("mp_bulk", {}, "names no formula"),
])
def test_config_checks_compositions(base, where, compositions, match):
    bad = copy.deepcopy(base)
    camp = bad["campaigns"][where]
    gens = camp.pop("generators", None) or [camp.pop("generator", {"type": "diffusion"})]
    if not any(g.get("type") == "diffusion" for g in gens):
        gens[0] = {"type": "diffusion"}
    camp["generators"] = [dict(g, compositions=compositions) if g.get("type") == "diffusion" else g for g in gens]
    with pytest.raises(InvdesignError, match=match):
        validate_config(bad)
