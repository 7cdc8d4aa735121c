"""Exercise checkers for Part 2's data side: BPE tokenisation and the tiny VLM's patches.

Each checker compares the reader's function with the vetted ``lib`` implementation on random
inputs (:func:`lib.exercises.check_function`) and returns a truthy/falsy :class:`CheckReport`.

Book: seed-5, seed-7.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def _random_ids(rng: np.random.Generator, n_max: int = 14, alphabet: int = 4) -> list[int]:
    return [int(v) for v in rng.integers(0, alphabet, size=int(rng.integers(0, n_max)))]


def check_merge_pair(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(ids, pair, new_id)``: replace each non-overlapping occurrence of ``pair``
    (scanning left to right) in the list ``ids`` by ``new_id``; returns a new list."""
    from lib.llm.tokenizer import merge_pair

    def make(rng):
        ids = _random_ids(rng, alphabet=3)
        return {"ids": ids, "pair": (int(rng.integers(3)), int(rng.integers(3))), "new_id": 256}

    return check_function(lambda ids, pair, new_id: list(candidate(ids, pair, new_id)), merge_pair, make,
                          name="BPE merge step", trials=trials)


def check_most_frequent_pair(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(words)``: ``words`` maps a word (tuple of ids) to its count; return the most
    frequent adjacent pair as ``(pair, count)`` (ties: the smallest pair), ``None`` if no pair."""
    from lib.llm.tokenizer import most_frequent_pair

    def make(rng):
        words = {}
        for _ in range(int(rng.integers(1, 6))):
            words[tuple(_random_ids(rng, n_max=7, alphabet=4))] = int(rng.integers(1, 5))
        return {"words": words}

    def wrap(fn):
        def run(words):
            out = fn(words)
            return None if out is None else (tuple(int(v) for v in out[0]), int(out[1]))
        return run

    return check_function(wrap(candidate), wrap(most_frequent_pair), make,
                          name="most frequent pair", trials=trials)


def check_patchify(candidate: Callable, trials: int = 20) -> CheckReport:
    """``candidate(images, patch)``: images ``(B, H, W, C)`` array -> patches
    ``(B, (H/patch)*(W/patch), patch*patch*C)`` in row-major patch order, each patch flattened
    as (row, column, channel)."""
    from lib.llm.vlm import patchify

    def make(rng):
        p = int(rng.choice([2, 3, 4]))
        h, w = p * int(rng.integers(1, 4)), p * int(rng.integers(1, 4))
        return {"images": rng.normal(size=(int(rng.integers(1, 3)), h, w, 3)).round(2), "patch": p}

    return check_function(lambda images, patch: np.asarray(candidate(images, patch)),
                          lambda images, patch: np.asarray(patchify(images, patch)), make,
                          name="patchify", trials=trials)


__all__ = ["check_merge_pair", "check_most_frequent_pair", "check_patchify"]
