"""The DFT tier's choice (invdesign.oracles.choice): a chance of confirmation from calibrated xTB and the predictor,
with no plateau of ties (issue #35)."""

import numpy as np
import pytest

from invdesign.oracles.choice import combine, confirmation_probability, predictor_spread
from invdesign.oracles.xtb import apply_calibration, fit_calibration


def test_the_calibration_rises_strictly_where_an_isotonic_fit_is_flat():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(1.0, 10.0, 200))
    y = 0.5 * x + 3.5 + rng.normal(0, 0.5, len(x))
    fit = fit_calibration(x, y)
    grid = np.linspace(1.2, 9.8, 300)
    est = apply_calibration(grid, fit)
    assert np.all(np.diff(est) > 0)  # no two xTB values share one estimate
    assert len(np.unique(np.round(apply_calibration(x, fit), 9))) == len(np.unique(x))


def test_the_chance_matches_a_normal_interval_with_an_exact_protocol():
    from scipy.stats import norm

    mean, sd = np.array([4.5, 4.0, 3.2, np.nan]), np.array([0.3, 0.3, 0.3, 0.3])
    p = confirmation_probability(mean, sd, (4.0, 5.0), [0.0], 0.8)
    expected = norm.cdf((5.0 - mean[:3]) / 0.3) - norm.cdf((4.0 - mean[:3]) / 0.3)
    assert p[:3] == pytest.approx(expected, abs=0.01)
    assert np.isnan(p[3])
    # a protocol error spread makes a verdict at the window's edge unconfirmable: the chance falls
    wide = confirmation_probability(mean[:1], sd[:1], (4.0, 5.0), np.linspace(-0.3, 0.3, 41), 0.8)
    assert wide[0] < p[0]


def test_two_estimates_in_conflict_give_a_wide_interval_not_a_confident_middle():
    mean, sd = combine([4.5, 4.5], 0.3, [4.5, 6.5], 0.3)
    assert mean[0] == pytest.approx(4.5) and sd[0] == pytest.approx(0.3 / np.sqrt(2))
    assert mean[1] == pytest.approx(5.5)
    assert sd[1] > 0.9  # the Birge ratio: a 2 eV disagreement with 0.3 eV spreads is not a 0.21 eV interval
    # a molecule with one estimate keeps it
    m, s = combine([np.nan], 0.3, [4.2], 0.5)
    assert m[0] == pytest.approx(4.2) and s[0] == pytest.approx(0.5)


def test_the_predictor_spread_is_what_the_calibration_does_not_explain():
    rng = np.random.default_rng(1)
    truth = rng.uniform(3, 6, 4000)
    cal = truth + rng.normal(0, 0.3, truth.size)
    pred = truth + rng.normal(0, 0.4, truth.size)
    assert predictor_spread(cal, pred, 0.3) == pytest.approx(0.4, abs=0.02)
    # an offset between the two is counted as the predictor's error
    assert predictor_spread(cal, pred + 0.5, 0.3) == pytest.approx(np.hypot(0.4, 0.5), abs=0.03)
    # too few rows to tell the spreads apart: their disagreement, at least the calibration's spread
    assert predictor_spread(cal[:3], pred[:3] + 2.0, 0.3) == pytest.approx(np.sqrt(np.mean((pred[:3] + 2 - cal[:3]) ** 2)))
    assert predictor_spread(cal[:3], cal[:3], 0.3) == 0.3


def test_refit_learns_an_offset_from_dft_and_shrinks_it_with_few_molecules():
    from invdesign.oracles.choice import refit

    rng = np.random.default_rng(2)
    truth = rng.uniform(3, 6, 200)
    cal, pred = truth + 0.6 + rng.normal(0, 0.1, 200), truth + rng.normal(0, 0.3, 200)
    fit = refit(cal, pred, truth, 0.45, 0.3)
    assert fit["offset_x"] == pytest.approx(0.6, abs=0.05) and fit["s_x"] < 0.2
    assert abs(fit["offset_p"]) < 0.1 and fit["s_p"] == pytest.approx(0.3, abs=0.05)
    few = np.full(200, np.nan)
    few[:2] = truth[:2]
    small = refit(cal, pred, few, 0.45, 0.3)
    assert 0.2 < small["offset_x"] < 0.45 and small["n"] == 2  # two molecules move it halfway, not all the way
    none = refit(cal, pred, np.full(200, np.nan), 0.45, 0.3)
    assert none == {"n": 0, "offset_x": 0.0, "offset_p": 0.0, "s_x": 0.45, "s_p": 0.3}


def test_the_choice_does_not_take_the_guide_of_a_generator_as_its_judge():
    """The graph GA optimises its proposals against the campaign's predictor: on its rows the DFT tier's estimate is
    the calibrated xTB value alone; on the rows of the other generators the two are combined."""
    import pandas as pd

    from invdesign.pipeline.verify import make_oracle

    o = make_oracle("molecules", {"dft": {"top_k": 2}}, {"window": [4.0, 5.0]}, "gap_ev")
    rows = pd.DataFrame({"generator": ["graph_ga", "vae"] * 5, "xtb_calibrated": [4.9] * 10,
                         "predicted_property": [4.5] * 10})
    out, model = o._confirm_chance(rows, {"residual_std_ev": 0.4})
    ga, vae = out[out["generator"] == "graph_ga"].iloc[0], out[out["generator"] == "vae"].iloc[0]
    assert ga["estimate"] == pytest.approx(4.9) and ga["estimate_sd"] == pytest.approx(0.4)
    assert vae["estimate"] < 4.9 and vae["estimate_sd"] < 0.4
