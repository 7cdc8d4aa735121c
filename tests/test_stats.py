import numpy as np
import pytest
from scipy import stats

from lib.stats import mean_ci


def test_matches_scipy_ttest_interval():
    rng = np.random.default_rng(0)
    for n in (2, 5, 30):
        x = rng.normal(3.0, 2.0, n)
        for level in (0.9, 0.95, 0.99):
            m, lo, hi = mean_ci(x, level)
            ref = stats.ttest_1samp(x, 0.0).confidence_interval(level)
            assert m == pytest.approx(x.mean())
            assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-12, abs=1e-12)


def test_constant_sample_and_lists():
    assert mean_ci([2, 2, 2]) == (2.0, 2.0, 2.0)
    assert mean_ci([1, 3])[0] == 2.0


def test_coverage_is_about_the_level():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        _, lo, hi = mean_ci(rng.normal(0.0, 1.0, 5))
        hits += lo <= 0.0 <= hi
    assert abs(hits / 2000 - 0.95) < 0.02


@pytest.mark.parametrize("x, level, exc", [
    ([1.0], 0.95, ValueError),
    (np.ones((2, 2)), 0.95, ValueError),
    ([1.0, np.nan], 0.95, ValueError),
    ([1.0, 2.0], 1.0, ValueError),
    ([1.0, 2.0], 0.0, ValueError),
    ([1.0, 2.0], True, TypeError),
    ([1.0, 2.0], "0.95", TypeError),
    (["a", "b"], 0.95, TypeError),
])
def test_rejects_bad_input(x, level, exc):
    with pytest.raises(exc):
        mean_ci(x, level)
