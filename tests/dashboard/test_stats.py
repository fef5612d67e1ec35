"""Bootstrap intervals and the Pareto front on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.stats import bootstrap_ci, bootstrap_diff_ci, pareto_front


def scores(n: int, p: float = 0.6, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_ci_contains_the_mean_and_is_deterministic_with_a_seed() -> None:
    x = scores(200)
    ci = bootstrap_ci(x, seed=7)
    assert ci.low <= x.mean() <= ci.high and ci.estimate == pytest.approx(x.mean()) and ci.n == 200
    assert bootstrap_ci(x, seed=7) == ci
    assert bootstrap_ci(x, seed=8) != ci  # the seed is what makes it repeatable, not a constant result


def test_ci_width_shrinks_with_n() -> None:
    widths = [(lambda c: c.high - c.low)(bootstrap_ci(scores(n))) for n in (25, 400, 6400)]
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[1] / widths[2] == pytest.approx(4, rel=0.25)  # ~ 1 / sqrt(n)


def test_ci_edge_cases() -> None:
    assert bootstrap_ci([1.0, 1.0, 1.0]) == bootstrap_ci([1.0, 1.0, 1.0, np.nan])  # NaN dropped
    assert (c := bootstrap_ci([1.0, 1.0])).low == c.high == 1.0
    assert bootstrap_ci([]).n == 0 and np.isnan(bootstrap_ci([]).estimate)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)


def test_paired_difference() -> None:
    a = scores(300, 0.7, seed=2)
    b = a.copy()
    b[:30] = 1 - b[:30]  # the same samples, 30 answers flipped
    ci = bootstrap_diff_ci(a, b)
    assert ci.estimate == pytest.approx(a.mean() - b.mean()) and ci.low <= ci.estimate <= ci.high
    assert bootstrap_diff_ci(a, a) == bootstrap_diff_ci(a, a) and bootstrap_diff_ci(a, a).high == 0.0
    # pairing keeps the per-sample correlation: narrower than resampling each side on its own
    unpaired = bootstrap_diff_ci(a, b, paired=False)
    assert ci.high - ci.low < unpaired.high - unpaired.low
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_diff_ci([1.0], [1.0, 0.0])


def test_pareto_front_on_a_hand_made_set() -> None:
    # (cost, accuracy): B dominates C (cheaper, as accurate); D ties A's cost with less accuracy; E is NaN
    cost = [10, 20, 25, 10, np.nan, 40, 40]
    acc = [50, 70, 70, 40, 99, 80, 80]
    assert pareto_front(cost, acc).tolist() == [True, True, False, False, False, True, True]
    assert pareto_front([], []).tolist() == []
