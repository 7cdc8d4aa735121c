"""Checkers for the exercises of Part 10's attention sections: the ALiBi bias of a head, and
which key/value head a query head reads under grouped-query attention.

Book: seed-103 (ALiBi bias), seed-111 (GQA head mapping).
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def alibi_bias_reference(n_heads, seq_len):
    """(n_heads, seq_len, seq_len) float64: ``-m_h * (i - j)`` on and below the diagonal
    (``j <= i``) and 0 above it (where the causal mask removes the key anyway); slopes
    ``m_h`` from :func:`lib.llm.positions.alibi_slopes`."""
    import torch

    from lib.llm.positions import alibi_bias

    b = alibi_bias(n_heads, seq_len, torch.float64)
    return b.tril()


def check_alibi_bias(candidate: Callable, trials: int = 20) -> CheckReport:
    """``candidate(n_heads, seq_len)`` -> array (n_heads, seq_len, seq_len): see
    :func:`alibi_bias_reference` (only the causal part ``j <= i`` is compared)."""

    def make(rng):
        return {"n_heads": int(rng.choice([1, 2, 3, 4, 6, 8, 12, 16])), "seq_len": int(rng.integers(1, 12))}

    def causal(f):
        def g(n_heads, seq_len):
            import numpy as np

            out = np.asarray(f(n_heads, seq_len), dtype=float)
            if out.shape != (n_heads, seq_len, seq_len):
                return out  # the shape mismatch is reported by the comparison
            return np.tril(out)
        return g

    return check_function(causal(candidate), causal(alibi_bias_reference), make, name="ALiBi bias",
                          trials=trials, rtol=1e-6, atol=1e-9)


def gqa_kv_head_reference(query_head, n_heads, n_kv_heads):
    """The kv head that query head ``query_head`` reads: consecutive groups of
    ``n_heads / n_kv_heads`` query heads share one (:func:`lib.llm.attention_variants.kv_head_of`)."""
    from lib.llm.attention_variants import kv_head_of

    return kv_head_of(query_head, n_heads, n_kv_heads)


def check_gqa_kv_head(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(query_head, n_heads, n_kv_heads)`` -> int: see :func:`gqa_kv_head_reference`."""

    def make(rng):
        n_kv = int(rng.choice([1, 2, 3, 4, 8]))
        n_heads = n_kv * int(rng.choice([1, 2, 3, 4]))
        return {"query_head": int(rng.integers(n_heads)), "n_heads": n_heads, "n_kv_heads": n_kv}

    return check_function(lambda **kw: int(candidate(**kw)), gqa_kv_head_reference, make,
                          name="GQA head mapping", trials=trials)


__all__ = ["alibi_bias_reference", "check_alibi_bias", "gqa_kv_head_reference", "check_gqa_kv_head"]
