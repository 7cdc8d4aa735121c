"""Checkers for the exercises of the benchmark appendix (``chapters/11-appendix/benchmarks``).

Each compares the reader's function with the vetted ``lib`` implementation on random inputs
(see :func:`lib.exercises.check_function`).

Book: every exercise of the benchmark appendix (a page without a seed entry).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import CheckReport, check_function


def _steps_to_reference(steps, returns, threshold):
    from lib.runs import TrainLog

    return TrainLog(eval_steps=list(steps), eval_returns=list(returns)).steps_to(threshold)


def _steps_to_inputs(rng: np.random.Generator) -> dict:
    n = int(rng.integers(1, 12))
    steps = np.cumsum(rng.integers(1, 5, n)) * 1000
    returns = np.cumsum(rng.normal(20.0, 60.0, n)).round(1)
    # half the trials use a threshold equal to one of the returns (the ">=" boundary)
    thr = float(rng.choice(returns)) if rng.random() < 0.5 else round(float(rng.normal(100, 80)), 1)
    return {"steps": steps.tolist(), "returns": returns.tolist(), "threshold": thr}


def check_steps_to_threshold(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(steps, returns, threshold)`` -> the step of the first evaluation whose mean
    return is ``>= threshold`` (lists of equal length, steps increasing), or ``None``."""
    return check_function(candidate, _steps_to_reference, _steps_to_inputs,
                          name="steps to threshold", trials=trials)


__all__ = ["check_steps_to_threshold"]
