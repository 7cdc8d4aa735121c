"""The temperature of a softmax: ``p_T = softmax(z / T)``, measured on real logits.

* :func:`tempered_probs` and :func:`entropy` — the distribution at temperature ``T`` and its
  entropy (nats). ``T -> 0`` puts all mass on the argmax; ``T -> inf`` flattens it to uniform
  (entropy ``log V``); ``T = 1`` is the model as trained.
* :func:`temperature_sweep` — for a batch of logits (N, V) and a list of temperatures: mean
  entropy, mean top-1 mass, and the total-variation distances to the argmax one-hot and to the
  uniform distribution (the two limits).
* :func:`info_nce` and :func:`negative_weights` — the contrastive (InfoNCE / CLIP-style) loss
  ``-log softmax(sim(q_i, k_.) / tau)_i`` with in-batch negatives, and how its gradient spreads
  over the negatives: ``softmax`` over the negatives' similarities at temperature ``tau``, so a
  small ``tau`` concentrates the push on the hardest negative and a large ``tau`` spreads it evenly.

Sampling at a temperature is :class:`lib.llm.generate.Temperature` (Part 2); distillation with
a temperature is Part 10's knowledge-distillation section.

Book: seed-117.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_T(T, name="T"):
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or not T > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {T!r}")


def _check_logits(logits):
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() < 1:
        raise ValueError(f"logits must be a floating-point tensor (..., V), got "
                         f"{getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.shape[-1] < 2:
        raise ValueError(f"need at least 2 classes on the last axis, got {logits.shape[-1]}")


def tempered_probs(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last axis (computed in float64)."""
    _check_logits(logits)
    _check_T(T)
    return (logits.double() / T).softmax(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of distributions on the last axis, with ``0 log 0 = 0``."""
    if not isinstance(p, torch.Tensor) or not p.is_floating_point():
        raise ValueError("p must be a floating-point tensor of probabilities")
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)


def temperature_sweep(logits: torch.Tensor, temperatures) -> dict:
    """Statistics of ``softmax(logits / T)`` for each ``T`` (logits (N, V), one row per
    position), averaged over the N rows. Returns lists aligned with ``temperatures``:
    ``entropy`` (nats), ``top1`` (mass of the argmax token), ``tv_argmax`` and ``tv_uniform``
    (total-variation distances to the one-hot argmax and to the uniform distribution), plus
    ``log_vocab`` = log V (the entropy's ceiling)."""
    _check_logits(logits)
    z = logits.reshape(-1, logits.shape[-1]).double()
    V = z.shape[-1]
    onehot = F.one_hot(z.argmax(-1), V).double()
    out = {"T": [], "entropy": [], "top1": [], "tv_argmax": [], "tv_uniform": [], "log_vocab": math.log(V)}
    for T in temperatures:
        p = tempered_probs(z, float(T))
        out["T"].append(float(T))
        out["entropy"].append(float(entropy(p).mean()))
        out["top1"].append(float(p.max(-1).values.mean()))
        out["tv_argmax"].append(float(0.5 * (p - onehot).abs().sum(-1).mean()))
        out["tv_uniform"].append(float(0.5 * (p - 1.0 / V).abs().sum(-1).mean()))
    return out


def _check_pairs(q, k):
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or q.dim() != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must be (N, d) tensors of equal shape, got "
                         f"{getattr(q, 'shape', q)} and {getattr(k, 'shape', k)}")
    if q.shape[0] < 2:
        raise ValueError("InfoNCE needs at least 2 pairs (the other pairs are the negatives)")


def similarities(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (N, N): row ``i`` compares query ``i`` with every key."""
    _check_pairs(q, k)
    return F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).T


def info_nce(q: torch.Tensor, k: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean InfoNCE loss: key ``i`` is query ``i``'s positive, the other keys its negatives;
    ``cross_entropy(cos_sim(q, k) / tau, arange(N))``."""
    _check_T(tau, "tau")
    s = similarities(q, k) / tau
    return F.cross_entropy(s, torch.arange(s.shape[0], device=s.device))


def negative_weights(q: torch.Tensor, k: torch.Tensor, tau: float) -> torch.Tensor:
    """(N, N-1): how query ``i``'s InfoNCE gradient is shared among its negatives, i.e. the
    softmax of the negatives' similarities at ``tau`` (each row sums to 1; sorted from the
    hardest negative, the most similar, to the easiest)."""
    _check_T(tau, "tau")
    s = similarities(q, k).double()
    N = s.shape[0]
    neg = s[~torch.eye(N, dtype=torch.bool, device=s.device)].view(N, N - 1)
    return (neg.sort(-1, descending=True).values / tau).softmax(-1)


__all__ = ["tempered_probs", "entropy", "temperature_sweep", "similarities", "info_nce", "negative_weights"]
