"""Checkers for the exercises of the ORM/PRM section: turning per-step validity into process
labels, and aggregating a PRM's step scores into one score per solution.

Book: seed-95.
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def prefix_labels_reference(valid):
    """Step ``i`` is good iff steps ``0..i`` are all valid (:func:`lib.align.prm.prefix_labels`)."""
    from lib.align.prm import prefix_labels

    return prefix_labels(valid)


def check_prefix_labels(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(valid)`` -> list of bools, one per step: see :func:`prefix_labels_reference`."""

    def make(rng):
        n = int(rng.integers(0, 7))
        # mostly valid steps, so that a wrong step followed by valid ones is common
        return {"valid": [bool(x) for x in rng.random(n) < 0.7]}

    def as_list(f):
        return lambda valid: [bool(x) for x in f(valid)]

    return check_function(as_list(candidate), as_list(prefix_labels_reference), make,
                          name="PRM labels from step checks", trials=trials)


def aggregate_reference(step_probs, how):
    """One score per solution from its steps' probabilities: ``"min"`` or ``"prod"``
    (:func:`lib.align.prm.aggregate_steps`)."""
    from lib.align.prm import aggregate_steps

    return aggregate_steps(step_probs, how)


def check_aggregate(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(step_probs, how)`` -> float: see :func:`aggregate_reference`."""

    def make(rng):
        n = int(rng.integers(1, 6))
        return {"step_probs": [float(x) for x in rng.random(n)], "how": str(rng.choice(["min", "prod"]))}

    return check_function(lambda step_probs, how: float(candidate(step_probs, how)), aggregate_reference, make,
                          name="aggregate step scores", trials=trials, rtol=1e-9, atol=1e-12)


__all__ = ["prefix_labels_reference", "check_prefix_labels", "aggregate_reference", "check_aggregate"]
