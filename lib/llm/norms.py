"""Normalisation layers written out: BatchNorm (with its running statistics) and LayerNorm,
beside the book model's RMSNorm (imported from :mod:`lib.llm.model`, not written twice).

Book: seed-113, seed-114, seed-115.

For activations ``x`` of shape (N, C) or (N, C, L) (batch, channels, length):

* **BatchNorm** normalises each channel ``c`` over the batch (and length) axes with the
  *batch's* mean and biased variance in training, and updates running estimates
  ``r <- (1 - momentum) r + momentum * stat`` (the variance with Bessel's correction); in
  evaluation it uses the running estimates, so one example's output no longer depends on its
  batch companions. Equals ``torch.nn.BatchNorm1d`` (``tests/test_llm_norms.py``).
* **LayerNorm** normalises each example over its last ``k`` axes (the features): no batch
  statistics, no running state, the same in training and evaluation. Equals
  ``torch.nn.LayerNorm``.
* **RMSNorm** is LayerNorm without the mean: ``x / sqrt(mean(x**2) + eps) * weight`` (one
  statistic instead of two, no bias) — :class:`lib.llm.model.RMSNorm`, equal to
  ``torch.nn.RMSNorm``.

Sections: :func:`batch_norm`, :class:`BatchNorm1d`, :func:`layer_norm`, :class:`LayerNorm`,
:func:`normalised_axes` (which entries share a statistic), :func:`batch_dependence` (how much
one example's output moves with its batch), :func:`time_per_call` (cost, for display only),
:func:`layer_gradient_norms` (per-block gradient norms of a decoder, for pre- vs post-norm
stacks built with :class:`lib.llm.variants.VariantLM`).
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn

from lib.llm.model import RMSNorm

__all__ = ["BatchNorm1d", "LayerNorm", "RMSNorm", "batch_dependence", "batch_norm",
           "layer_gradient_norms", "layer_norm", "normalised_axes", "time_per_call"]


def _check_x(x, min_dim: int = 2, max_dim: int = 3) -> None:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}")
    if not min_dim <= x.dim() <= max_dim:
        raise ValueError(f"x must have {min_dim} to {max_dim} axes, got shape {tuple(x.shape)}")


def batch_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               running_mean: torch.Tensor, running_var: torch.Tensor, training: bool,
               momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm of ``x`` (N, C) or (N, C, L) per channel; in training it uses the batch's
    statistics and updates ``running_mean``/``running_var`` in place (no gradient)."""
    _check_x(x)
    C = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t.shape != (C,):
            raise ValueError(f"{name} must have shape ({C},), got {tuple(t.shape)}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    axes = [0] + list(range(2, x.dim()))          # everything but the channel axis
    shape = [1, C] + [1] * (x.dim() - 2)
    if training:
        n = x.numel() // C
        if n < 2:
            raise ValueError("BatchNorm in training needs more than one value per channel")
        mean = x.mean(axes)
        var = x.var(axes, unbiased=False)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / (n - 1))
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    return x_hat * weight.view(shape) + bias.view(shape)


class BatchNorm1d(nn.Module):
    """:func:`batch_norm` as a module (same parameters and buffers as ``torch.nn.BatchNorm1d``)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                          self.training, self.momentum, self.eps)


def layer_norm(x: torch.Tensor, n_axes: int, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm of ``x`` over its last ``n_axes`` axes: each example's own mean and biased
    variance, then the elementwise affine ``weight``/``bias`` (shape ``x.shape[-n_axes:]``)."""
    _check_x(x, 1, 8)
    if not 1 <= n_axes <= x.dim():
        raise ValueError(f"n_axes must be in [1, {x.dim()}], got {n_axes}")
    axes = list(range(x.dim() - n_axes, x.dim()))
    mean = x.mean(axes, keepdim=True)
    var = x.var(axes, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(nn.Module):
    """:func:`layer_norm` as a module (same parameters as ``torch.nn.LayerNorm(shape)``)."""

    def __init__(self, normalized_shape, eps: float = 1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        if tuple(x.shape[-len(self.shape):]) != self.shape:
            raise ValueError(f"x must end in {self.shape}, got shape {tuple(x.shape)}")
        return layer_norm(x, len(self.shape), self.weight, self.bias, self.eps)


def normalised_axes(kind: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """Group id (N, C, L) of each entry of a (batch N, channels C, length L) tensor: entries
    with one id share one mean and variance. ``kind`` is "batch" (one group per channel,
    across the batch and length) or "layer" (one group per example and position, across the
    channels, as a transformer applies LayerNorm to each token)."""
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (N, C, L), got {shape}")
    N, C, L = shape
    n = torch.arange(N).view(N, 1, 1).expand(N, C, L)
    c = torch.arange(C).view(1, C, 1).expand(N, C, L)
    pos = torch.arange(L).view(1, 1, L).expand(N, C, L)
    if kind == "batch":
        return c.clone()
    if kind == "layer":
        return (n * L + pos).clone()
    raise ValueError(f"kind must be 'batch' or 'layer', got {kind!r}")


@torch.no_grad()
def batch_dependence(norm: nn.Module, example: torch.Tensor, pool: torch.Tensor,
                     batch_size: int, draws: int, generator: torch.Generator) -> float:
    """Mean over features of the standard deviation of ``norm(batch)[0]`` — the output for
    one fixed ``example`` (shape (C,)) — over ``draws`` batches that put it beside
    ``batch_size - 1`` companions drawn from ``pool`` (M, C). 0 means the output does not
    depend on the batch."""
    if example.dim() != 1 or pool.dim() != 2 or pool.shape[1] != example.shape[0]:
        raise ValueError(f"example must be (C,) and pool (M, C), got {tuple(example.shape)} "
                         f"and {tuple(pool.shape)}")
    if not 1 <= batch_size - 1 <= pool.shape[0] or draws < 2:
        raise ValueError(f"need 2 <= batch_size <= {pool.shape[0] + 1} and draws >= 2, got "
                         f"{batch_size}, {draws}")
    outs = []
    for _ in range(draws):
        idx = torch.randperm(pool.shape[0], generator=generator)[: batch_size - 1]
        outs.append(norm(torch.cat([example[None], pool[idx]]))[0])
    return float(torch.stack(outs).std(0).mean())


def time_per_call(fn, x: torch.Tensor, reps: int = 20) -> float:
    """Best-of-``reps`` seconds for one ``fn(x)`` (forward only, no autograd). For display:
    wall-clock time depends on the machine and its load, so the book never asserts on it."""
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    best = float("inf")
    with torch.no_grad():
        fn(x)  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - t0)
    return best


def layer_gradient_norms(model: nn.Module, input_ids: torch.Tensor,
                         targets: torch.Tensor) -> list[float]:
    """One backward pass of the mean next-token cross-entropy; returns the L2 norm of the
    gradient of each block's parameters (``model.layers[i]``, first block first). The model's
    gradients are cleared afterwards."""
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise TypeError("model must have a non-empty ModuleList `layers` of blocks")
    if input_ids.shape != targets.shape or input_ids.dim() != 2:
        raise ValueError(f"input_ids and targets must be equal (B, T) shapes, got "
                         f"{tuple(input_ids.shape)} and {tuple(targets.shape)}")
    model.zero_grad(set_to_none=True)
    logits = model(input_ids).logits
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       targets.reshape(-1))
    loss.backward()
    norms = []
    for block in layers:
        sq = sum(float((p.grad ** 2).sum()) for p in block.parameters() if p.grad is not None)
        norms.append(sq ** 0.5)
    model.zero_grad(set_to_none=True)
    return norms
