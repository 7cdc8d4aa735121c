"""Small neural networks shared by the deep-RL agents (DQN, policy gradient, actor-critic, DDPG…),
Polyak averaging of target networks, and the CPU-friendly Adam the value-based loops use.

Book: seed-51, seed-63, seed-75 (the networks of DQN, C51 and DDPG)
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "elu": nn.ELU, "silu": nn.SiLU}


def mlp(sizes: Sequence[int], activation: str = "tanh", output_activation: str | None = None,
        output_gain: float | None = None) -> nn.Sequential:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]``.

    ``activation`` sits between hidden layers, ``output_activation`` (optional) after the last.
    ``output_gain`` rescales the last layer's initial weights (e.g. 0.01 for a policy head so the
    initial policy is near uniform).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must list >= 2 positive layer widths, got {list(sizes)}")
    for name in (activation, output_activation):
        if name is not None and name not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    if output_activation is not None:
        layers.append(_ACTIVATIONS[output_activation]())
    if output_gain is not None:
        last = [m for m in layers if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.weight.mul_(output_gain)
            last.bias.zero_()
    return nn.Sequential(*layers)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- tau * source + (1 - tau) * target`` (in place)."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def fused_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam (PyTorch defaults otherwise) with the fused kernel where available: it removes most of
    Adam's per-parameter Python overhead, which dominates the small networks of DQN and C51 on a
    CPU. Falls back to the ``foreach`` implementation (same arithmetic)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch / unsupported device
        return torch.optim.Adam(params, lr=lr, foreach=True)


__all__ = ["mlp", "soft_update", "fused_adam"]
