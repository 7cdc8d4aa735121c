"""Checkers for the exercises of Part 9's search pages: the UCT and PUCT scores of a child in
Monte Carlo tree search, and AlphaZero's move distribution from visit counts.

Book: seed-96, seed-97, seed-101
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def uct_reference(q, n_parent, n, c):
    """UCT's score ``q + c * sqrt(ln n_parent / n)`` (:func:`lib.mcts.uct_score`)."""
    from lib.mcts import uct_score

    return uct_score(q, n_parent, n, c)


def _uct_inputs(rng):
    n = int(rng.integers(1, 200))
    return {"q": float(rng.uniform(-1, 1)), "n_parent": n + int(rng.integers(0, 2000)),
            "n": n, "c": float(rng.choice([0.5, 1.0, 2 ** 0.5, 2.5]))}


def check_uct(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(q, n_parent, n, c)`` -> float: see :func:`uct_reference`."""
    return check_function(lambda **k: float(candidate(**k)), uct_reference, _uct_inputs,
                          name="UCT score", trials=trials, rtol=1e-9, atol=1e-12)


def puct_reference(q, prior, n_parent, n, c):
    """PUCT's score ``q + c * prior * sqrt(n_parent) / (1 + n)`` (:func:`lib.mcts.puct_score`)."""
    from lib.mcts import puct_score

    return puct_score(q, prior, n_parent, n, c)


def _puct_inputs(rng):
    n = int(rng.integers(0, 200)) if rng.random() < 0.7 else 0
    return {"q": float(rng.uniform(-1, 1)), "prior": float(rng.uniform(0, 1)),
            "n_parent": n + int(rng.integers(1, 2000)), "n": n,
            "c": float(rng.choice([0.5, 1.0, 1.5, 2.5]))}


def check_puct(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(q, prior, n_parent, n, c)`` -> float: see :func:`puct_reference`."""
    return check_function(lambda **k: float(candidate(**k)), puct_reference, _puct_inputs,
                          name="PUCT score", trials=trials, rtol=1e-9, atol=1e-12)


def visit_distribution_reference(visits, temperature):
    """``N ** (1 / temperature)`` normalised; all mass on the most visited move at
    temperature 0 (:func:`lib.alphazero.visit_distribution`)."""
    from lib.alphazero import visit_distribution

    return visit_distribution(visits, temperature)


def check_visit_distribution(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(visits, temperature)`` -> probabilities: see
    :func:`visit_distribution_reference`."""
    import numpy as np

    def make(rng):
        n = rng.integers(0, 400, size=int(rng.integers(2, 10)))
        n[int(rng.integers(len(n)))] += 401  # a unique most visited move
        return {"visits": n.astype(float), "temperature": float(rng.choice([0.0, 0.25, 1.0, 2.0]))}

    return check_function(lambda **k: np.asarray(candidate(**k), dtype=float),
                          visit_distribution_reference, make, name="visit distribution",
                          trials=trials, rtol=1e-6, atol=1e-9)
