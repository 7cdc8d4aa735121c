"""Discounted returns by backward iteration: ``G_t = r_t + gamma * G_{t+1}``.

Works on one episode (``rewards`` of shape ``(T,)``) or on a time-major batch of parallel
environments (``(T, N)``), with episode boundaries given by ``dones``: when ``dones[t]`` is
true the episode ended at step ``t``, so ``G_t = r_t`` and nothing from step ``t+1`` (the
next episode) leaks back. ``bootstrap`` is the value of the state reached after the last
step, for rollouts cut before their episode ended.

Book: seed-55 (reward-to-go), seed-66 (the Monte Carlo limit of GAE).
"""
from __future__ import annotations

import numpy as np


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` (array-like or torch tensor, numeric or bool) as a float64 numpy array; ``name`` is
    used in the error message."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def check_gamma(gamma) -> float:
    """Validate a discount factor: a real number in [0, 1]."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating, np.integer)):
        raise TypeError(f"gamma must be a number, got {type(gamma).__name__}")
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    return gamma


def discounted_returns(rewards, gamma: float, dones=None, bootstrap=None) -> np.ndarray:
    """Return ``G`` with ``G[t] = rewards[t] + gamma * (1 - dones[t]) * G[t+1]``.

    Parameters
    ----------
    rewards : array (T,) or (T, N), time first.
    gamma : discount in [0, 1].
    dones : optional array shaped like ``rewards``; true where an episode ended at that step.
    bootstrap : optional value of the state after the last step: a scalar for (T,), shape (N,)
        for (T, N). Used only where the last step did not end its episode.

    Returns a float64 array shaped like ``rewards``.
    """
    gamma = check_gamma(gamma)
    r = as_float_array(rewards, "rewards")
    if r.ndim not in (1, 2):
        raise ValueError(f"rewards must have shape (T,) or (T, N), got {r.shape}")
    if r.shape[0] == 0:
        raise ValueError("rewards is empty: need at least one step")
    d = np.zeros_like(r) if dones is None else as_float_array(dones, "dones")
    if d.shape != r.shape:
        raise ValueError(f"dones has shape {d.shape}, expected the rewards' shape {r.shape}")
    if np.any((d != 0) & (d != 1)):
        raise ValueError("dones must contain only 0/1 (False/True)")
    tail_shape = r.shape[1:]
    if bootstrap is None:
        nxt = np.zeros(tail_shape)
    else:
        nxt = as_float_array(bootstrap, "bootstrap")
        if nxt.shape != tail_shape:
            raise ValueError(f"bootstrap has shape {nxt.shape}, expected {tail_shape}")
    out = np.empty_like(r)
    for t in range(r.shape[0] - 1, -1, -1):  # backward iteration, vectorised over environments
        nxt = r[t] + gamma * (1.0 - d[t]) * nxt
        out[t] = nxt
    return out


def episode_returns(rewards, dones) -> list[float]:
    """Undiscounted total reward of each completed episode in a 1-D stream of steps."""
    r = as_float_array(rewards, "rewards")
    d = as_float_array(dones, "dones")
    if r.ndim != 1 or d.shape != r.shape:
        raise ValueError(f"rewards and dones must be 1-D of equal length, got {r.shape} and {d.shape}")
    totals, acc = [], 0.0
    for rew, done in zip(r, d):
        acc += rew
        if done:
            totals.append(acc)
            acc = 0.0
    return totals


__all__ = ["as_float_array", "check_gamma", "discounted_returns", "episode_returns"]
