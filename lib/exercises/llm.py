"""Exercise checkers for Part 2's model side: RMSNorm, RoPE, one causal attention head, top-k.

Each checker calls the reader's function and the vetted ``lib.llm`` implementation on the same
random float32 torch inputs and returns a :class:`~lib.exercises.CheckReport` (truthy on success).

Book: seed-2, seed-4, seed-6, seed-8.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def _t(a):
    import torch

    return torch.tensor(np.asarray(a, dtype=np.float32))


def rmsnorm_reference(x, weight, eps):
    """``x / sqrt(mean(x**2, -1) + eps) * weight`` via :class:`lib.llm.model.RMSNorm`."""
    import torch

    from lib.llm.model import RMSNorm

    norm = RMSNorm(weight.shape[-1], eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def check_rmsnorm(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(x, weight, eps)``: RMSNorm over the last axis of ``x`` (..., d) with gain ``weight`` (d,)."""

    def make(rng):
        d = int(rng.integers(2, 12))
        shape = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(0, 3)))) + (d,)
        return {"x": _t(rng.normal(size=shape) * rng.uniform(0.1, 5)), "weight": _t(rng.normal(size=d)),
                "eps": float(rng.choice([1e-5, 1e-6, 0.1]))}

    return check_function(candidate, rmsnorm_reference, make, name="RMSNorm", trials=trials, rtol=1e-4, atol=1e-5)


def rope_reference(x, positions, theta):
    """RoPE of ``x`` (T, head_dim) at integer ``positions`` (T,) via :mod:`lib.llm.model`."""
    from lib.llm.model import apply_rope, rope_cos_sin

    cos, sin = rope_cos_sin(positions, x.shape[-1], theta)
    return apply_rope(x, cos, sin)


def check_rope(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(x, positions, theta)``: rotate each row ``x[t]`` (head_dim even) by angles
    ``positions[t] * theta ** (-2i / head_dim)``, pairing coordinate ``i`` with ``i + head_dim/2``."""
    import torch

    def make(rng):
        hd = 2 * int(rng.integers(1, 6))
        T = int(rng.integers(1, 8))
        return {"x": _t(rng.normal(size=(T, hd))), "positions": torch.tensor(rng.integers(0, 200, size=T)),
                "theta": float(rng.choice([10000.0, 100.0, 500000.0]))}

    return check_function(candidate, rope_reference, make, name="RoPE", trials=trials, rtol=1e-4, atol=1e-5)


def attention_head_reference(x, wq, wk, wv):
    """One causal attention head: ``softmax(q k^T / sqrt(d_head) + causal mask) v`` with
    ``q = x wq``, ``k = x wk``, ``v = x wv``; x (T, d), w* (d, d_head) -> (T, d_head)."""
    import torch.nn.functional as F

    q, k, v = x @ wq, x @ wk, x @ wv
    return F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]


def check_attention_head(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(x, wq, wk, wv)``: one causal self-attention head (see :func:`attention_head_reference`)."""

    def make(rng):
        T, d, h = int(rng.integers(1, 9)), int(rng.integers(2, 10)), int(rng.integers(1, 6))
        s = 1 / math.sqrt(d)
        return {"x": _t(rng.normal(size=(T, d))), "wq": _t(rng.normal(size=(d, h)) * s),
                "wk": _t(rng.normal(size=(d, h)) * s), "wv": _t(rng.normal(size=(d, h)) * s)}

    return check_function(candidate, attention_head_reference, make, name="causal attention head", trials=trials,
                          rtol=1e-4, atol=1e-5)


def top_k_reference(logits, k):
    """Keep the ``k`` largest logits of each row, others -inf, via :class:`lib.llm.generate.TopK`."""
    from lib.llm.generate import TopK

    return TopK(k)(None, logits)


def check_top_k_filter(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits, k)``: logits (B, V); return a copy with all but the k largest of each row set to -inf."""

    def make(rng):
        V = int(rng.integers(2, 12))
        return {"logits": _t(rng.normal(size=(int(rng.integers(1, 4)), V))), "k": int(rng.integers(1, V + 1))}

    return check_function(candidate, top_k_reference, make, name="top-k filter", trials=trials)


def kv_cache_step_reference(k_cache, v_cache, q, k_new, v_new):
    """Append ``k_new, v_new`` (1, d) to the caches (t, d) and attend with the single query ``q`` (1, d):
    returns ``(output (1, d), k_cache', v_cache')``."""
    import torch

    K = torch.cat([k_cache, k_new], 0)
    V = torch.cat([v_cache, v_new], 0)
    w = (q @ K.T / math.sqrt(q.shape[-1])).softmax(-1)
    return w @ V, K, V


def check_kv_cache_step(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(k_cache, v_cache, q, k_new, v_new)`` -> ``(out, k_cache', v_cache')``: one decoding step
    with a KV cache (see :func:`kv_cache_step_reference`)."""

    def make(rng):
        t, d = int(rng.integers(0, 7)), int(rng.integers(1, 8))
        return {"k_cache": _t(rng.normal(size=(t, d))), "v_cache": _t(rng.normal(size=(t, d))),
                "q": _t(rng.normal(size=(1, d))), "k_new": _t(rng.normal(size=(1, d))),
                "v_new": _t(rng.normal(size=(1, d)))}

    return check_function(lambda **kw: tuple(candidate(**kw)), kv_cache_step_reference, make,
                          name="KV-cache decoding step", trials=trials, rtol=1e-4, atol=1e-5)


def lr_schedule_reference(step, max_lr, warmup_steps, total_steps, min_lr_ratio):
    """Warmup + cosine learning rate of :func:`lib.llm.train.lr_at`."""
    from lib.llm.train import lr_at

    return lr_at(step, max_lr=max_lr, warmup_steps=warmup_steps, total_steps=total_steps, min_lr_ratio=min_lr_ratio)


def check_lr_schedule(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(step, max_lr, warmup_steps, total_steps, min_lr_ratio)``: linear warmup to ``max_lr`` at
    step ``warmup_steps - 1`` (``max_lr * (step + 1) / warmup_steps``), then cosine decay to
    ``min_lr_ratio * max_lr`` at ``total_steps`` and constant afterwards."""

    def make(rng):
        total = int(rng.integers(2, 200))
        warm = int(rng.integers(1, total + 1))
        return {"step": int(rng.integers(0, total + 10)), "max_lr": float(rng.choice([1e-3, 3e-4, 1.0])),
                "warmup_steps": warm, "total_steps": total, "min_lr_ratio": float(rng.choice([0.0, 0.1, 0.5]))}

    return check_function(candidate, lr_schedule_reference, make, name="warmup + cosine LR", trials=trials,
                          rtol=1e-6, atol=1e-12)


__all__ = ["check_lr_schedule", "lr_schedule_reference", "check_rmsnorm", "check_rope", "check_attention_head", "check_top_k_filter", "check_kv_cache_step",
           "rmsnorm_reference", "rope_reference", "attention_head_reference", "top_k_reference",
           "kv_cache_step_reference"]
