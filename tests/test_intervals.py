"""dni.util.intervals against a hand computation and scipy (issue 34)."""

import math

import numpy as np
import pytest
import scipy.stats

from dni.util.intervals import paired_interval, standard_error, t_interval


def test_t_interval_by_hand():
    x = [0.90, 0.94, 0.92]  # mean 0.92, s = 0.02, n = 3, t_{0.975, 2} = 4.302652…
    ci = t_interval(x)
    assert ci.mean == pytest.approx(0.92)
    assert ci.half_width == pytest.approx(4.302652729911275 * 0.02 / math.sqrt(3))
    assert int(ci.n) == 3


def test_t_interval_matches_scipy_on_known_data():
    rng = np.random.default_rng(7)
    x = rng.normal(0.97, 0.01, size=(4, 5))  # 4 settings × 5 seeds
    ci = t_interval(x, axis=1)
    for row, mean, low, high in zip(x, ci.mean, ci.low, ci.high):
        lo, hi = scipy.stats.t.interval(0.95, len(row) - 1, loc=row.mean(), scale=scipy.stats.sem(row))
        assert (mean, low, high) == pytest.approx((row.mean(), lo, hi))


def test_one_seed_has_no_interval_and_missing_models_are_left_out():
    ci = t_interval([[0.9, np.nan, np.nan], [0.9, 0.92, np.nan]], axis=1)
    assert np.isnan(ci.half_width[0]) and ci.n.tolist() == [1, 2]
    assert not ci.excludes(0.5)[0]  # no interval excludes nothing
    lo, hi = scipy.stats.t.interval(0.95, 1, loc=0.91, scale=scipy.stats.sem([0.9, 0.92]))
    assert (ci.low[1], ci.high[1]) == pytest.approx((lo, hi))


def test_paired_interval_recovers_a_known_difference():
    """Two settings that differ by 0.01 per seed, with a large seed-to-seed spread shared by both: the
    paired interval is tight around 0.01 while the unpaired intervals overlap."""
    rng = np.random.default_rng(3)
    seed_effect = rng.normal(0, 0.02, size=6)
    a = 0.95 + seed_effect + 0.01 + rng.normal(0, 0.001, size=6)
    b = 0.95 + seed_effect
    d = paired_interval(a, b)
    assert d.low < 0.01 < d.high and d.excludes(0.0)
    assert not (t_interval(a).low > t_interval(b).high)


def test_standard_error_of_repeats():
    x = np.array([0.5, 0.6, 0.7, 0.8])
    assert standard_error(x) == pytest.approx(scipy.stats.sem(x))
