"""Checker for the exercise of Part 10's optimisation map: combining the ranks' gradients
when the ranks score different numbers of tokens.

Book: seed-102.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def combine_rank_gradients_reference(grads, tokens):
    """The gradient of the mean token loss over all ranks' tokens, from each rank's gradient of
    its own *mean* loss ``grads[r]`` and its scored-token count ``tokens[r]``:
    ``sum_r tokens[r] * grads[r] / sum_r tokens[r]``."""
    if len(grads) != len(tokens) or not len(grads):
        raise ValueError("need one token count per rank's gradient (and at least one rank)")
    w = np.asarray(tokens, dtype=float)
    if np.any(w < 1):
        raise ValueError(f"every rank must score at least one token, got {list(tokens)}")
    g = np.stack([np.asarray(x, dtype=float) for x in grads])
    return np.tensordot(w, g, axes=1) / w.sum()


def check_combine_rank_gradients(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(grads, tokens)`` -> array: see :func:`combine_rank_gradients_reference`.
    The ranks score unequal token counts, so the plain average of the gradients fails."""

    def make(rng):
        ranks = int(rng.integers(2, 6))
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        tokens = [int(t) for t in rng.integers(1, 200, size=ranks)]
        if len(set(tokens)) == 1:  # equal counts would let the plain average pass
            tokens[0] += 1
        return {"grads": [rng.normal(size=shape) for _ in range(ranks)], "tokens": tokens}

    return check_function(candidate, combine_rank_gradients_reference, make,
                          name="token-weighted gradient of the ranks", trials=trials,
                          rtol=1e-9, atol=1e-12)
