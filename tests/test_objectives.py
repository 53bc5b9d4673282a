"""Objectives beside the target: hard bounds, Pareto fronts and the weighted ranking."""

import numpy as np
import pandas as pd
import pytest

from invdesign.config.filters import CrystalFilters, MoleculeFilters
from invdesign.errors import InvdesignError
from invdesign.objectives import apply_objectives, objective_values, pareto_fronts
from invdesign.pipeline.filter import rank


def test_pareto_fronts_peel_the_non_dominated_sets():
    costs = np.array([[0, 3], [1, 1], [3, 0], [2, 2], [3, 3], [np.nan, 0]])
    # front 1: (0,3), (1,1), (3,0); (2,2) is dominated by (1,1) only; (3,3) by (2,2); NaN counts as worst
    assert pareto_fronts(costs).tolist() == [1, 1, 1, 2, 3, 2]


def table():
    return pd.DataFrame({"smiles": ["CCO", "c1ccccc1O", "C1C2CC3CC1CC(C2)C3", "CC(=O)Nc1ccc(O)cc1"],
                         "passes": True, "reject_reason": "", "in_target": [True, True, True, False],
                         "distance_to_target": [0.0, 0.0, 0.0, 0.5], "generator_disagreement": 0.0})


def test_bounds_reject_and_name_the_objective():
    f = MoleculeFilters.parse({"objectives": [{"name": "qed", "min": 0.45}]})
    out = apply_objectives(table(), f.objectives, f.ranking)
    qed = objective_values("qed", table())
    assert np.allclose(out["qed"], qed) and (out["passes"] == (qed >= 0.45)).all()
    assert out.loc[~out["passes"], "reject_reason"].str.match(r"objective qed 0\.\d+ below min 0.45").all()
    assert np.isinf(out.loc[~out["passes"], "objective_rank"]).all()


def test_pareto_ranking_puts_the_trade_off_front_first_and_weighted_follows_the_weights():
    f = MoleculeFilters.parse({"objectives": [{"name": "qed"}, {"name": "sa_score"}]})
    out = rank(apply_objectives(table(), f.objectives, "pareto"))
    # QED / SA: ethanol 0.41 / 1.98, phenol 0.51 / 1.18, adamantane 0.48 / 3.06, paracetamol 0.60 / 1.41 (but 0.5
    # from the target): phenol dominates ethanol and adamantane; paracetamol trades distance for QED
    front1 = set(out.loc[out["objective_rank"] == 1, "smiles"])
    assert front1 == {"c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"}
    assert out["smiles"].iloc[0] == "c1ccccc1O"  # inside the target, front 1
    assert out.set_index("smiles").loc["CCO", "objective_rank"] == 2
    heavy_sa = MoleculeFilters.parse({"objectives": [{"name": "qed", "weight": 0}, {"name": "sa_score",
                                                                                     "weight": 10}]})
    w = rank(apply_objectives(table(), heavy_sa.objectives, "weighted"))
    # inside the target first, then by SA (1.18, 1.98, 3.06); paracetamol (outside) last
    assert w["smiles"].tolist() == ["c1ccccc1O", "CCO", "C1C2CC3CC1CC(C2)C3", "CC(=O)Nc1ccc(O)cc1"]


def test_crystal_cost_objective_and_bad_settings():
    cost = objective_values("cost_usd_per_kg", pd.DataFrame({"formula": ["Fe2O3", "IrOs3"]}))
    assert cost[0] < 10 < 10000 < cost[1]
    CrystalFilters.parse({"objectives": [{"name": "cost_usd_per_kg", "max": 1000}], "ranking": "weighted"})
    with pytest.raises(InvdesignError, match="min 2 is above max 1; swap them"):
        MoleculeFilters.parse({"objectives": [{"name": "qed", "min": 2, "max": 1}]}, "filters")
    with pytest.raises(InvdesignError, match="is not allowed; use one of \\['qed', 'sa_score'\\]"):
        MoleculeFilters.parse({"objectives": [{"name": "cost_usd_per_kg"}]}, "filters")
