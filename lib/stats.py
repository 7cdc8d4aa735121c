"""Small statistics for multi-seed claims: a mean with its Student-t confidence interval.

Book: seed-57 (MADDPG vs independent DDPG over training seeds), seed-64 and seed-67 (A2C, vanilla
PG, TRPO and PPO over seeds). A claim about an RL method rests on several seeds; the notebooks state
it as a mean (or a paired mean difference) with a confidence interval and assert that the interval
clears the bar.

Sections: :func:`mean_ci` (mean and two-sided interval of the mean, ``n - 1`` degrees of freedom).
"""
from __future__ import annotations

import numpy as np


def mean_ci(x, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``x`` and its two-sided Student-t confidence interval.

    ``x`` is a 1-D sequence of at least two finite numbers (e.g. one result per seed, or paired
    differences); ``level`` in (0, 1). The half-width is ``t_{(1+level)/2, n-1} * s / sqrt(n)``
    with ``s`` the sample standard deviation (``ddof=1``), the interval of
    ``scipy.stats.ttest_1samp(x, 0).confidence_interval(level)``.
    """
    from scipy.stats import t

    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise TypeError(f"level must be a number in (0, 1), got {level!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"x must be a 1-D sequence of numbers, got {type(x).__name__}") from None
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"x must be 1-D with at least 2 values, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("x must be finite (no NaN or inf)")
    m = float(a.mean())
    half = float(t.ppf((1 + level) / 2, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))
    return m, m - half, m + half


__all__ = ["mean_ci"]
