"""Checker for the exercise of Part 10's benchmark section: the unbiased pass@k estimator.

Book: seed-110.
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def pass_at_k_reference(n, c, k):
    """``1 - C(n-c, k) / C(n, k)``: the chance that ``k`` of the ``n`` samples, drawn without
    replacement, include at least one of the ``c`` correct ones."""
    from lib.llm.evalharness import pass_at_k

    return pass_at_k(n, c, k)


def check_pass_at_k(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(n, c, k)`` -> float: see :func:`pass_at_k_reference`. The inputs include
    ``k > 1`` with ``0 < c < n`` (where the plug-in ``1 - (1 - c/n)^k`` differs), ``c = 0``,
    and ``n - c < k`` (the estimate is exactly 1)."""

    def make(rng):
        n = int(rng.integers(1, 31))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        return {"n": n, "c": c, "k": k}

    return check_function(candidate, pass_at_k_reference, make, name="unbiased pass@k",
                          trials=trials, rtol=1e-9, atol=1e-12)
