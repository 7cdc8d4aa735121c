"""Checkers for the exercises of Part 10's model-compression sections: a quantise / dequantise
pair (asymmetric, one scale and zero point per tensor), a magnitude-pruning mask, and the
distillation loss with temperature.

Book: seed-104, seed-105, seed-116.
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def quantize_reference(x, bits):
    """``(codes, scale, zero_point)`` of ``x`` (float tensor) with unsigned ``bits``-bit codes
    ``0 .. 2^bits - 1``: ``scale = (max(x, 0) - min(x, 0)) / (2^bits - 1)``,
    ``zero_point = round(-min(x, 0) / scale)``, ``codes = clamp(round(x / scale) + zero_point)``
    (codes an int64 tensor, scale a float, zero_point an int; :func:`lib.llm.quant.quantize_affine`
    with ``symmetric=False, granularity="tensor"``)."""
    from lib.llm.quant import quantize_affine

    q = quantize_affine(x, bits, symmetric=False, granularity="tensor")
    return q.codes.long(), float(q.scale[0]), int(q.zero_point[0])


def dequantize_reference(codes, scale, zero_point):
    """``scale * (codes - zero_point)`` as a float32 tensor."""
    return (codes.float() - zero_point) * scale


def _inputs(rng):
    import torch

    n = int(rng.integers(2, 40))
    shift = float(rng.choice([0.0, 0.5, -0.5, 2.0]))
    x = torch.tensor(rng.normal(size=n) * float(rng.uniform(0.1, 3)) + shift,
                     dtype=torch.float32)
    return {"x": x, "bits": int(rng.choice([2, 3, 4, 8]))}


def check_quantize_pair(quantize: Callable, dequantize: Callable,
                        trials: int = 25) -> CheckReport:
    """``quantize(x, bits) -> (codes, scale, zero_point)`` and
    ``dequantize(codes, scale, zero_point) -> x_hat``: see :func:`quantize_reference`. Both are
    compared with the book's on random tensors (some all positive or all negative, so a missing
    zero point or a range that leaves out 0 shows); then their round trip must stay within half a
    step of ``x``."""
    name = "quantise / dequantise pair"
    if not callable(dequantize):
        return CheckReport(name, False, 0, f"expected a function, got {type(dequantize).__name__}")
    rep = check_function(quantize, quantize_reference, _inputs, name=name + ": quantize",
                         trials=trials, rtol=1e-5, atol=1e-7)
    if not rep:
        return rep

    def deq_inputs(rng):
        codes, scale, zp = quantize_reference(**_inputs(rng))
        return {"codes": codes, "scale": scale, "zero_point": zp}

    rep = check_function(dequantize, dequantize_reference, deq_inputs,
                         name=name + ": dequantize", trials=trials, rtol=1e-5, atol=1e-6)
    if not rep:
        return rep

    def roundtrip(x, bits):
        codes, scale, zp = quantize(x, bits)
        x_hat = dequantize(codes, scale, zp)
        return bool(((x_hat - x).abs() <= scale / 2 * (1 + 1e-5) + 1e-7).all())

    return check_function(roundtrip, lambda x, bits: True, _inputs,
                          name=name + ": round trip within half a step", trials=trials)


def magnitude_mask_reference(w, amount):
    """Keep-mask (bool, shaped like ``w``) without the ``round(amount * w.numel())`` entries of
    smallest ``|w|`` (:func:`lib.llm.prune.magnitude_mask`)."""
    from lib.llm.prune import magnitude_mask

    return magnitude_mask(w, amount)


def check_magnitude_mask(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(w, amount)`` -> bool keep-mask of unstructured magnitude pruning: see
    :func:`magnitude_mask_reference`. Weights of both signs, so pruning by value instead of
    magnitude fails."""
    def make(rng):
        import torch

        shape = (int(rng.integers(1, 7)), int(rng.integers(2, 9)))
        return {"w": torch.tensor(rng.normal(size=shape), dtype=torch.float32),
                "amount": float(rng.choice([0.0, 0.25, 0.5, 0.6, 0.9, 1.0]))}

    return check_function(candidate, magnitude_mask_reference, make,
                          name="magnitude pruning mask", trials=trials)


def distillation_loss_reference(student_logits, teacher_logits, targets, T, alpha):
    """``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y)``, both
    terms averaged over positions; logits (N, V), targets (N,)
    (:func:`lib.llm.distill.distillation_loss`)."""
    from lib.llm.distill import distillation_loss

    return distillation_loss(student_logits, teacher_logits, targets, T=T, alpha=alpha)[0]


def check_distillation_loss(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(student_logits, teacher_logits, targets, T, alpha)`` -> scalar tensor: see
    :func:`distillation_loss_reference`. Temperatures other than 1, so a missing ``T^2`` factor
    or a missing temperature in one of the softmaxes shows."""
    def make(rng):
        import torch

        n, v = int(rng.integers(1, 7)), int(rng.integers(2, 9))
        return {"student_logits": torch.tensor(rng.normal(size=(n, v)) * 2,
                                               dtype=torch.float32),
                "teacher_logits": torch.tensor(rng.normal(size=(n, v)) * 2,
                                               dtype=torch.float32),
                "targets": torch.tensor(rng.integers(0, v, size=n)),
                "T": float(rng.choice([0.5, 2.0, 3.0, 5.0])),
                "alpha": float(rng.choice([0.0, 0.3, 0.5, 0.9, 1.0]))}

    return check_function(candidate, distillation_loss_reference, make,
                          name="distillation loss", trials=trials, rtol=1e-4, atol=1e-6)
