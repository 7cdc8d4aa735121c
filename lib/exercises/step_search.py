"""Checkers for the exercises of the page on search over reasoning steps: which child UCT's
selection step picks among a node's candidate next steps, and the prior that merging duplicate
sampled steps gives.

Book: seed-98
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def select_child_reference(q, n, n_parent, c):
    """Index of the child UCT picks: the largest ``q[i] + c * sqrt(ln n_parent / n[i])``,
    the first one on ties (as ``max`` in :meth:`lib.mcts.MCTS.select`)."""
    from lib.mcts import uct_score

    scores = [uct_score(qi, n_parent, ni, c) for qi, ni in zip(q, n)]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def _select_inputs(rng):
    m = int(rng.integers(2, 6))
    n = [int(x) for x in rng.integers(1, 12, size=m)]
    # values of a verifier are often exactly 0 or 1; mix them with means in between
    q = [float(rng.choice([0.0, 1.0])) if rng.random() < 0.5 else float(rng.integers(0, ni + 1) / ni)
         for ni in n]
    return {"q": q, "n": n, "n_parent": sum(n) + int(rng.integers(0, 3)),
            "c": float(rng.choice([0.25, 0.5, 1.0, 2.0]))}


def check_select_child(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(q, n, n_parent, c)`` -> int: see :func:`select_child_reference`."""
    return check_function(lambda **k: int(candidate(**k)), select_child_reference, _select_inputs,
                          name="UCT child selection", trials=trials, rtol=0, atol=0)


def step_priors_reference(texts):
    """Merge identical sampled next steps: ``{text: count / len(texts)}`` in first-seen order
    (:meth:`lib.align.step_search.StepState.priors`)."""
    out: dict = {}
    for t in texts:
        out[t] = out.get(t, 0) + 1
    return {t: c / len(texts) for t, c in out.items()}


def _prior_inputs(rng):
    pool = [" 6 * 2 = 12.", " 17 + 6 = 23.", " 6 * 2 = 13.", " The answer is 29."]
    k = int(rng.integers(1, 9))
    return {"texts": [pool[int(i)] for i in rng.integers(0, len(pool), size=k)]}


def check_step_priors(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(texts)`` -> dict: see :func:`step_priors_reference`."""
    return check_function(lambda **k: dict(candidate(**k)), step_priors_reference,
                          _prior_inputs, name="merged step priors", trials=trials,
                          rtol=1e-9, atol=1e-12)
