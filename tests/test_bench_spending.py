"""The alpha-spending rule of the crystal replication study (bench/crystals_feedback_ranking.py, protocol v6)."""

import pytest

from bench.crystals_feedback_ranking import spending_look


def test_interim_look_spends_obrien_fleming_alpha():
    look = spending_look(150, 160, 300, 0.025, 0.0)
    assert look["information"] == pytest.approx(0.5)
    assert not look["final"]
    assert look["alpha_nominal"] == pytest.approx(0.00153, abs=2e-5)  # 2 (1 - Phi(2.2414 / sqrt 0.5))


def test_final_look_gets_what_is_left():
    look = spending_look(300, 305, 300, 0.025, 0.0015)
    assert look["final"]
    assert look["alpha_nominal"] == pytest.approx(0.0235)


def test_smaller_arm_sets_the_information():
    assert spending_look(300, 90, 300, 0.025, 0.0)["information"] == pytest.approx(0.3)
