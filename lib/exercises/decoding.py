"""Exercise checkers for Part 5's decoding: one beam-search step, the top-p (nucleus) mask, and
self-consistency's majority vote.

Book: seed-27 (beam search), seed-30 (top-p sampling), seed-24 (self-consistency). Each checker
calls the reader's function and the vetted ``lib.llm`` implementation on the same random inputs
and returns a :class:`~lib.exercises.CheckReport` (truthy on success).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def _t(a):
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float32))


def beam_step_reference(beam_scores, logprobs, n):
    """The ``n`` best extensions ``(scores, parents, tokens)`` of the beams
    (:func:`lib.llm.search.expand_beams`)."""
    from lib.llm.search import expand_beams

    return expand_beams(beam_scores, logprobs, n)


def check_beam_step(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(beam_scores, logprobs, n)``: beam_scores (k,), logprobs (k, V) -> the ``n`` best
    one-token extensions as ``(scores, parents, tokens)``, each (n,), best first."""

    def make(rng):
        k, V = int(rng.integers(1, 5)), int(rng.integers(3, 12))
        # distinct scores, so that the best n are well defined
        lp = np.log(rng.dirichlet(np.ones(V), size=k))
        scores = -np.sort(rng.uniform(0, 4, size=k))
        return {
            "beam_scores": _t(scores),
            "logprobs": _t(lp),
            "n": int(rng.integers(1, min(2 * k, k * V) + 1)),
        }

    return check_function(
        candidate, beam_step_reference, make, name="beam step", trials=trials, rtol=1e-5, atol=1e-6
    )


def top_p_mask_reference(logits, p):
    """Bool mask (B, V) of the tokens nucleus sampling keeps (:class:`lib.llm.generate.TopP`)."""
    import torch

    from lib.llm.generate import TopP

    return torch.isfinite(TopP(p)(None, logits))


def check_top_p_mask(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits, p)``: logits (B, V) -> bool mask (B, V) of the smallest set of most
    likely tokens whose probability reaches ``p`` (the top token always kept)."""

    def make(rng):
        V = int(rng.integers(2, 15))
        # distinct probabilities, away from ties at the threshold
        logits = rng.normal(size=(int(rng.integers(1, 4)), V)) * rng.uniform(0.5, 4)
        return {"logits": _t(logits), "p": float(rng.choice([0.1, 0.5, 0.75, 0.9, 0.97]))}

    return check_function(candidate, top_p_mask_reference, make, name="top-p mask", trials=trials)




def majority_vote_reference(answers):
    """Self-consistency's vote (:func:`lib.llm.reasoning.majority_vote`)."""
    from lib.llm.reasoning import majority_vote

    return majority_vote(answers)


def check_majority_vote(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(answers)``: the most frequent non-``None`` answer of a list (ties: the one seen
    first), ``None`` when every answer is ``None``."""

    def make(rng):
        n = int(rng.integers(1, 10))
        pool = [None] + [int(v) for v in rng.integers(0, 30, size=3)]
        return {"answers": [pool[int(i)] for i in rng.integers(0, len(pool), size=n)]}

    return check_function(candidate, majority_vote_reference, make, name="majority vote",
                          trials=trials)


__all__ = [
    "beam_step_reference",
    "check_beam_step",
    "top_p_mask_reference",
    "check_top_p_mask",
    "majority_vote_reference",
    "check_majority_vote",
]
