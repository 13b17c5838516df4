"""Paired intervals and McNemar's test: coverage at the nominal rate, exact p-values, verdicts, bad input."""

import math

import numpy as np
import pytest

from memory import InputError
from router import PairedDifference, mcnemar_p, paired_difference


def test_the_interval_covers_a_known_difference_at_about_its_nominal_rate():
    rng = np.random.default_rng(1)
    n, trials = 400, 400
    # each query is one of four outcomes with fixed probabilities: the true difference is known exactly
    outcomes = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=bool)
    probs = np.array([0.55, 0.08, 0.12, 0.25])
    true = probs[2] - probs[1]  # P(only B right) − P(only A right) = +0.04
    covered = 0
    for t in range(trials):
        rows = outcomes[rng.choice(4, n, p=probs)]
        r = paired_difference(rows[:, 0], rows[:, 1], reps=2000, seed=t)
        covered += r.low <= true <= r.high
    rate = covered / trials
    assert 0.92 <= rate <= 0.975, rate  # 95% nominal; the binomial sd of 400 trials is about 1.1 points


def test_continuous_scores_get_an_interval_and_no_mcnemar():
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 1.0, 3000)
    b = a - 0.3 + rng.normal(0, 0.5, 3000)  # a paired shift of −0.3
    r = paired_difference(a, b)
    assert r.p_value is None and r.a_only is None
    assert r.low < -0.3 < r.high and r.high - r.low < 0.06
    assert r.verdict == "A better" and not r.tie


def test_mcnemar_is_exact():
    assert mcnemar_p(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_p(3, 3) == 1.0 and mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 20) == pytest.approx(2 * 0.5 ** 20)
    a = np.array([1] * 10 + [0] * 2 + [1] * 50 + [0] * 38, dtype=bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 50 + [0] * 38, dtype=bool)
    r = paired_difference(a, b)
    assert (r.a_only, r.b_only, r.n) == (10, 2, 100)
    assert r.p_value == pytest.approx(mcnemar_p(10, 2)) and r.difference == pytest.approx(-0.08)


def test_a_difference_whose_interval_holds_zero_is_a_tie():
    rng = np.random.default_rng(3)
    a = rng.random(2000) < 0.6
    b = a.copy()
    b[rng.choice(np.flatnonzero(a), 20, replace=False)] = False  # 20 broken
    b[rng.choice(np.flatnonzero(~a), 20, replace=False)] = True  # 20 fixed
    r = paired_difference(a, b)
    assert r.tie and r.verdict == "tie" and r.p_value > 0.05
    d = r.to_dict()
    assert d["verdict"] == "tie" and d["interval_95"][0] <= 0 <= d["interval_95"][1] and d["n"] == 2000
    assert "tie" in str(r) and "McNemar" in str(r)
    again = paired_difference(a, b)
    assert (again.low, again.high) == (r.low, r.high)  # seeded: the same interval every time
    big = paired_difference(np.zeros(500, bool), np.ones(500, bool))
    assert big.verdict == "B better" and big.low == big.high == 1.0 and big.p_value == pytest.approx(2 * 0.5 ** 500)


def test_integer_scores_are_right_wrong_too():
    r = paired_difference([1, 0, 1, 1], [1, 1, 1, 0])
    assert isinstance(r, PairedDifference) and (r.a_only, r.b_only) == (1, 1) and r.p_value == 1.0


@pytest.mark.parametrize("a, b, match", [
    ([1, 0, 1], [1, 0], "same queries: got 3 and 2"),
    ([], [], "no queries"),
    ([1.0, float("nan")], [1.0, 0.0], "NaN or inf"),
    (["yes", "no"], [1, 0], "1-D array of per-query scores"),
    (np.ones((2, 2)), np.ones((2, 2)), "1-D array"),
])
def test_bad_input_names_the_problem(a, b, match):
    with pytest.raises(InputError, match=match):
        paired_difference(a, b)
    with pytest.raises(InputError, match="level must be strictly between 0 and 1"):
        paired_difference([1, 0], [0, 1], level=1.5)
    assert math.isfinite(paired_difference([1, 0], [0, 1]).difference)
