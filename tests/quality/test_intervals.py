"""Win-rate intervals on synthetic judgments whose true rate is known."""

import numpy as np
import pytest

from labeling.quality.intervals import pooled_ratio
from training.evaluation.winrate import win_rate
from training.ml.evaluation import win_rate_interval


def test_an_exact_rate_and_an_interval_as_wide_as_the_binomial_one():
    # 1000 tasks, one judgment each, 600 wins: the rate is exactly 0.6 and the 95% interval about
    # +/- 1.96 * sqrt(0.6 * 0.4 / 1000) = +/- 0.0304
    outcomes = [[1.0]] * 600 + [[0.0]] * 400
    est = win_rate(outcomes)
    assert est.value == 0.6 and est.tasks == 1000
    half_width = 1.96 * np.sqrt(0.6 * 0.4 / 1000)
    assert est.low == pytest.approx(0.6 - half_width, abs=0.006)
    assert est.high == pytest.approx(0.6 + half_width, abs=0.006)


def test_ties_count_half():
    assert win_rate([[1.0], [0.5], [0.0], [0.5]]).value == 0.5


def test_the_interval_covers_the_true_rate_about_95_times_in_100():
    # 200 synthetic evaluations of 300 prompts, 2 labelers each, true win probability 0.7
    rng = np.random.default_rng(7)
    true_rate, covered, trials = 0.7, 0, 200
    for trial in range(trials):
        wins = (rng.random((300, 2)) < true_rate).astype(float)
        est = pooled_ratio(wins.sum(axis=1), np.full(300, 2.0), n_resamples=400, seed=trial)
        covered += est.low <= true_rate <= est.high
    assert 0.89 <= covered / trials <= 0.99


def test_one_task_gives_a_value_but_no_interval():
    est = win_rate([[1.0, 0.0, 1.0]])
    assert est.value == pytest.approx(2 / 3) and est.low is None and est.high is None


def test_the_training_side_interval_agrees():
    rate, low, high = win_rate_interval([1.0] * 70 + [0.0] * 30, seed=1)
    assert (
        rate == pytest.approx(0.7)
        and low < 0.7 < high
        and high - low == pytest.approx(2 * 1.96 * 0.0458, abs=0.03)
    )
