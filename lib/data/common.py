"""Small shared pieces of the data generators: seeds and counts checked the same way everywhere.

Book: infrastructure of every generated corpus.
"""
from __future__ import annotations

import numpy as np


def as_rng(seed) -> np.random.Generator:
    """A numpy Generator from a non-negative int seed (a Generator passes through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def check_count(n, name: str = "n") -> int:
    """``n`` as an int, checked to be a non-negative integer (its ``name`` in the error)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return int(n)


__all__ = ["as_rng", "check_count"]
