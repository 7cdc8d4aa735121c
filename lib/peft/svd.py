"""Why low rank works: the singular values of a real fine-tuning update ΔW.

Book: seed-10.

For two checkpoints of the same model (a base and its fine-tuned version), :func:`weight_deltas`
gives ``ΔW = W_tuned - W_base`` of every 2-D weight. Its singular values ``σ_1 ≥ σ_2 ≥ …`` tell
how much of the update a rank-r matrix can hold: the *energy* captured by the top r is
``Σ_{i≤r} σ_i² / Σ_i σ_i²`` (:func:`energy_captured`). By the Eckart–Young theorem the truncated
SVD ``ΔW_r`` (:func:`truncate`) is the best rank-r approximation in Frobenius norm and its error is
exactly the norm of the discarded singular values, ``sqrt(Σ_{i>r} σ_i²)``
(:func:`truncation_error`); any other rank-r matrix does at least as badly
(:func:`projection_error` measures some).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _check_matrix(m, name="matrix") -> torch.Tensor:
    if not isinstance(m, torch.Tensor) or m.dim() != 2 or not m.is_floating_point():
        raise ValueError(
            f"{name} must be a 2-D floating-point tensor, got "
            f"{getattr(m, 'shape', type(m).__name__)}"
        )
    return m


def _check_rank(r, m) -> int:
    if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= min(m.shape):
        raise ValueError(f"rank must be an int in [0, {min(m.shape)}], got {r!r}")
    return r


def weight_deltas(base: nn.Module, tuned: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: W_tuned - W_base}`` (float64) of every 2-D parameter the two models share."""
    a, b = dict(base.named_parameters()), dict(tuned.named_parameters())
    if set(a) != set(b):
        raise ValueError("the two models have different parameter names")
    out = {}
    for name, w in a.items():
        if w.dim() == 2:
            if w.shape != b[name].shape:
                raise ValueError(
                    f"{name}: shapes differ ({tuple(w.shape)} vs {tuple(b[name].shape)})"
                )
            out[name] = (b[name].detach().double() - w.detach().double()).cpu()
    return out


def singular_values(m: torch.Tensor) -> torch.Tensor:
    """Singular values (descending, float64)."""
    return torch.linalg.svdvals(_check_matrix(m).double())


def energy_captured(s: torch.Tensor) -> torch.Tensor:
    """Cumulative share of ``Σ σ²`` held by the top 1, 2, … singular values (ends at 1)."""
    if not isinstance(s, torch.Tensor) or s.dim() != 1 or s.numel() == 0 or (s < 0).any():
        raise ValueError("s must be a non-empty 1-D tensor of non-negative singular values")
    e = s.double() ** 2
    return e.cumsum(0) / e.sum()


def truncate(m: torch.Tensor, r: int) -> torch.Tensor:
    """The rank-r truncated SVD ``U_r diag(σ_r) V_r^T`` of ``m`` (its best rank-r approximation)."""
    _check_rank(r, _check_matrix(m))
    u, s, vh = torch.linalg.svd(m.double(), full_matrices=False)
    return (u[:, :r] * s[:r]) @ vh[:r]


def truncation_error(s: torch.Tensor, r: int) -> float:
    """``sqrt(Σ_{i>r} σ_i²)``: the Frobenius error of the rank-r truncation (Eckart–Young)."""
    if not isinstance(s, torch.Tensor) or s.dim() != 1:
        raise ValueError("s must be a 1-D tensor of singular values")
    if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= s.numel():
        raise ValueError(f"rank must be an int in [0, {s.numel()}], got {r!r}")
    return float((s.double()[r:] ** 2).sum().sqrt())


def projection_error(m: torch.Tensor, r: int, generator: torch.Generator | None = None) -> float:
    """Frobenius error of the best approximation of ``m`` whose columns lie in a *random*
    r-dimensional subspace (``Q Q^T m``): a rank-r competitor of the truncated SVD."""
    _check_rank(r, _check_matrix(m))
    g = torch.randn(m.shape[0], r, dtype=torch.float64, generator=generator)
    q, _ = torch.linalg.qr(g)
    m = m.double()
    return float(torch.linalg.matrix_norm(m - q @ (q.T @ m)))


def lora_parameter_saving(d_in: int, d_out: int, r: int) -> dict[str, float]:
    """Parameters of a full ``d_out × d_in`` update versus LoRA's factors
    ``(d_out × r)(r × d_in)``."""
    for name, v in (("d_in", d_in), ("d_out", d_out), ("r", r)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    full, lora = d_in * d_out, r * (d_in + d_out)
    return {"full": full, "lora": lora, "ratio": lora / full}


__all__ = [
    "weight_deltas",
    "singular_values",
    "energy_captured",
    "truncate",
    "truncation_error",
    "projection_error",
    "lora_parameter_saving",
]
