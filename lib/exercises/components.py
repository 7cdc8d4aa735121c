"""Checkers for the exercises of Part 10's component sections (metrics, norms).

Book: seed-119 (F1 from counts), seed-115 (RMSNorm).
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def f1_from_counts_reference(tp, fp, fn):
    """F1 = 2 tp / (2 tp + fp + fn), 0 when the denominator is 0
    (:func:`lib.metrics.f1_from_counts`)."""
    from lib.metrics import f1_from_counts

    return f1_from_counts(tp, fp, fn)


def check_f1_from_counts(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(tp, fp, fn)`` -> float: see :func:`f1_from_counts_reference`. The inputs
    include counts with no true positive (F1 = 0, where precision or recall is 0/0) and
    unequal precision and recall (so the arithmetic mean fails)."""

    def make(rng):
        kind = int(rng.integers(4))
        tp = 0 if kind == 0 else int(rng.integers(1, 50))
        fp = 0 if kind == 1 else int(rng.integers(0, 50))
        fn = int(rng.integers(0, 50)) if kind != 2 else 0
        return {"tp": tp, "fp": fp, "fn": fn}

    return check_function(lambda **kw: float(candidate(**kw)), f1_from_counts_reference,
                          make, name="F1 from counts", trials=trials, rtol=1e-9, atol=1e-12)


def rms_norm_reference(x, weight, eps):
    """``x / sqrt(mean(x**2, last axis) + eps) * weight`` (:class:`lib.llm.model.RMSNorm`)."""
    import torch

    from lib.llm.model import RMSNorm

    norm = RMSNorm(x.shape[-1], eps).double()
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def check_rms_norm(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(x, weight, eps)`` -> tensor like ``x``: see :func:`rms_norm_reference`.
    The inputs have non-zero means, so subtracting the mean (LayerNorm) fails."""
    import torch

    def make(rng):
        shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        d = int(rng.integers(2, 9))
        x = rng.normal(loc=rng.normal(0, 2), scale=rng.uniform(0.1, 3), size=shape + (d,))
        return {"x": torch.tensor(x, dtype=torch.float64),
                "weight": torch.tensor(rng.normal(1, 0.5, size=d), dtype=torch.float64),
                "eps": float(rng.choice([1e-6, 1e-5, 1e-2]))}

    return check_function(candidate, rms_norm_reference, make, name="RMSNorm",
                          trials=trials, rtol=1e-6, atol=1e-9)
