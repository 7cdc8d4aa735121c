"""Checkers for the exercises of Part 9's best-of-N section: a reward-weighted majority vote and
the exact best-of-N accuracy of a pool (the generalisation of the unbiased pass@k).

Book: seed-99 (the best-of-N estimate), seed-100 (the weighted vote).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def weighted_vote_reference(answers, weights):
    """The answer with the largest total weight (``None`` ignored; ties: the one seen first;
    ``None`` when there is no answer): :func:`lib.align.bestofn.weighted_vote`."""
    from lib.align.bestofn import weighted_vote

    return weighted_vote(answers, weights)


def check_weighted_vote(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(answers, weights)``: see :func:`weighted_vote_reference`. Inputs include
    ties of total weight, all-``None`` lists, and cases where the most frequent answer is not
    the heaviest."""

    def make(rng):
        n = int(rng.integers(1, 9))
        pool = [None] + [int(v) for v in rng.integers(0, 20, size=3)]
        answers = [pool[int(i)] for i in rng.integers(0, len(pool), size=n)]
        weights = [float(w) for w in rng.integers(0, 4, size=n)]     # integers: exact ties
        return {"answers": answers, "weights": weights}

    return check_function(candidate, weighted_vote_reference, make, name="weighted vote",
                          trials=trials)


def best_of_n_accuracy_reference(scores, correct, n):
    """Expected correctness of the top-scored of ``n`` answers drawn without replacement from
    one question's pool (``scores``, ``correct``: length ``M``), ties broken uniformly at
    random: :func:`lib.align.bestofn.best_of_n_expected`."""
    from lib.align.bestofn import best_of_n_expected

    return float(best_of_n_expected(scores, np.asarray(correct, dtype=float), n)[0])


def check_best_of_n_accuracy(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(scores, correct, n)`` -> float: see :func:`best_of_n_accuracy_reference`.
    Inputs have tied scores (drawn from a few values), ``n = 1`` and ``n = M``."""

    def make(rng):
        m = int(rng.integers(1, 13))
        return {"scores": [float(x) for x in rng.integers(0, 5, size=m)],
                "correct": [bool(x) for x in rng.random(m) < 0.5],
                "n": int(rng.integers(1, m + 1))}

    return check_function(candidate, best_of_n_accuracy_reference, make,
                          name="best-of-n accuracy", trials=trials, rtol=1e-9, atol=1e-12)


__all__ = ["weighted_vote_reference", "check_weighted_vote", "best_of_n_accuracy_reference",
           "check_best_of_n_accuracy"]
