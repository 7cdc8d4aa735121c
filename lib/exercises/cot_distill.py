"""Checker for the exercise of Part 9's CoT-distillation section: rejection sampling of the
teacher's traces by the outcome verifier.

Book: seed-94 (filtering traces by answer correctness).
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def rejection_filter_reference(expressions, traces):
    """The indices (in order) of the ``traces`` — ``(question_index, text)`` pairs — whose final
    answer (the number after the last ``answer is``) equals the value of
    ``expressions[question_index]``: :func:`lib.align.cot_distill.filter_traces` of the
    verifier's verdicts (:func:`lib.data.verify_answer`)."""
    import numpy as np

    from lib.align.cot_distill import filter_traces
    from lib.data import verify_answer

    verdicts = np.array([verify_answer(expressions[q], t) for q, t in traces], dtype=bool)
    return [int(i) for i in filter_traces(verdicts)]


def _traces(rng):
    """A few two-step questions and traces for them: right ones, a wrong final number, a right
    number reached by a wrong step, no answer at all, and an answer repeated at the end."""
    from lib.data import fact_chain_problems

    probs = fact_chain_problems(int(rng.integers(1, 5)), seed=int(rng.integers(10_000)), n_ops=2)
    traces = []
    for _ in range(int(rng.integers(0, 9))):
        q = int(rng.integers(len(probs)))
        p, kind = probs[q], int(rng.integers(5))
        good = " " + p.cot_answer
        if kind == 0:
            text = good
        elif kind == 1:
            text = good.replace(f"answer is {p.answer}.", f"answer is {p.answer + int(rng.integers(1, 9))}.")
        elif kind == 2:
            text = f" 1 + 1 = 3. The answer is {p.answer}."
        elif kind == 3:
            text = good.split(" The answer")[0]
        else:
            text = good + f" So the answer is {p.answer + 1}."
        traces.append((q, text))
    return {"expressions": [p.expression for p in probs], "traces": traces}


def check_rejection_filter(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(expressions, traces)`` -> list of kept trace indices: see
    :func:`rejection_filter_reference`."""

    def as_list(f):
        return lambda expressions, traces: [int(i) for i in f(expressions, traces)]

    return check_function(as_list(candidate), as_list(rejection_filter_reference), _traces,
                          name="rejection sampling filter", trials=trials)


__all__ = ["rejection_filter_reference", "check_rejection_filter"]
