"""The oracle-feedback ranker learns which chemistry the oracle calls stable and on target."""

import numpy as np
import pytest

from invdesign.search.feedback import OracleFeedbackRanker


def _verdicts(n=300, seed=0):
    """Binary alloys of X with A (hard, often stable), B (soft, stable) or C (hard but unstable).
    The predictor's value is the same noisy number for all three, so only the composition separates them."""
    rng = np.random.default_rng(seed)
    partner = rng.choice(["A", "B", "C"], size=n)
    x = rng.uniform(0.2, 0.8, size=n)
    comps = [{p: float(f), "X": float(1 - f)} for p, f in zip(partner, x)]
    pred = rng.normal(320, 20, size=n)
    hard = {"A": 330.0, "B": 220.0, "C": 330.0}
    value = np.array([hard[p] * f + 250 * (1 - f) for p, f in zip(partner, x)]) + rng.normal(0, 10, size=n)
    p_stable = np.array([{"A": 0.8, "B": 0.8, "C": 0.1}[p] for p in partner])
    stable = rng.random(n) < p_stable
    measured = np.where(stable, value, np.nan)
    return comps, pred, stable, measured


def test_ranker_prefers_the_chemistry_the_oracle_rewards():
    comps, pred, stable, measured = _verdicts()
    ranker = OracleFeedbackRanker((290.0, None)).fit(comps, pred, stable, measured)
    new = [{"A": 0.7, "X": 0.3}, {"B": 0.7, "X": 0.3}, {"C": 0.7, "X": 0.3}]
    s = ranker.score(new, [320.0, 320.0, 320.0])
    assert s["p_stable"][0] > 0.6 and s["p_stable"][2] < 0.3
    assert s["expected"][0] > 290 > s["expected"][1]
    assert s["score"].idxmax() == 0 and s["score"][0] > 5 * max(s["score"][1], s["score"][2])
    # held-out verdicts: the ranker's order finds the hits better than chance
    comps2, pred2, stable2, measured2 = _verdicts(seed=1)
    hit = stable2 & (np.nan_to_num(measured2) >= 290)
    order = np.argsort(-ranker.score(comps2, pred2)["score"].to_numpy())
    assert hit[order[:30]].mean() > 2 * hit.mean()


def test_window_target_and_unseen_elements():
    comps, pred, stable, measured = _verdicts()
    window = OracleFeedbackRanker((250.0, 280.0)).fit(comps, pred, stable, measured)
    s = window.score([{"A": 0.7, "X": 0.3}, {"A": 0.1, "X": 0.9}], [320.0, 320.0])
    assert s["p_on_target"][1] > s["p_on_target"][0]  # ~258 GPa sits in the window, ~306 GPa above it
    # an element the oracle never judged carries no weight: Z alone scores like an empty composition
    z = window.score([{"Z": 1.0}, {"Z": 0.5, "Q": 0.5}], [320.0, 320.0])
    assert np.allclose(z["score"][0], z["score"][1])
    assert set(window.weights().index) == {"A", "B", "C", "X", "predicted", "intercept"}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="lower bound"):
        OracleFeedbackRanker((None, None))
    with pytest.raises(ValueError, match="above the upper"):
        OracleFeedbackRanker((300.0, 200.0))
    r = OracleFeedbackRanker((300.0, None))
    with pytest.raises(RuntimeError, match="fit"):
        r.score([{"A": 1.0}], [300.0])
    with pytest.raises(ValueError, match="at least 2 stable"):
        r.fit([{"A": 1.0}, {"B": 1.0}], [300.0, 310.0], [False, False], [np.nan, np.nan])
    with pytest.raises(ValueError, match="same length"):
        r.fit([{"A": 1.0}], [300.0, 310.0], [True, True], [300.0, 310.0])


def test_raising_elements_need_a_positive_weight_and_enough_verdicts():
    comps, pred, stable, measured = _verdicts()
    # one stable, very stiff cell of a rare element D: a single verdict is not evidence
    comps = comps + [{"D": 0.5, "X": 0.5}]
    pred, stable, measured = np.append(pred, 320.0), np.append(stable, True), np.append(measured, 400.0)
    ranker = OracleFeedbackRanker((290.0, None)).fit(comps, pred, stable, measured)
    w = ranker.weights()["value"]
    assert w["D"] > 0 and w["A"] > w["X"]
    assert "D" not in ranker.raising_elements(min_verdicts=2) and "D" in ranker.raising_elements(min_verdicts=1)
    up = ranker.raising_elements(min_verdicts=2)
    assert "A" in up and "B" not in up            # B makes cells softer than X
    assert up == sorted(up, key=lambda el: -w[el])
    with pytest.raises(RuntimeError, match="fit"):
        OracleFeedbackRanker((300.0, None)).raising_elements(min_verdicts=2)
