"""Generalized Advantage Estimation (GAE), vectorised over time and environments.

Time-major arrays ``(T, N)``: ``T`` steps of ``N`` parallel environments. For step ``t``

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},      done_t = terminated_t or truncated_t

Termination and truncation differ. A *terminated* step reached a terminal state, whose value is
zero, so nothing is bootstrapped. A *truncated* step (time limit) stopped in a live state: its
TD error still bootstraps from the value of the state it reached (``final_values[t]``, the value
of the real last observation, not of the reset observation that follows it), but the advantage
recursion is cut there because step ``t+1`` belongs to the next episode. ``V(s_{t+1})`` is
``values[t+1]`` inside an episode and ``last_values`` after the last row.

Special cases (tested): ``lam = 0`` gives the TD error ``delta_t``; ``lam = 1`` gives the Monte
Carlo advantage ``G_t - V(s_t)`` with the same bootstraps. The result equals Stable-Baselines3's
``RolloutBuffer.compute_returns_and_advantage`` once SB3's truncation trick (adding
``gamma * V(final obs)`` to the reward of a truncated step) is applied to its input.

Book: seed-66 (GAE).
"""
from __future__ import annotations

import numpy as np

from .returns import as_float_array, check_gamma

METHODS = ("loop", "matrix")


def _check_lam(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
        raise TypeError(f"lam must be a number, got {type(lam).__name__}")
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return lam


def _prepare(rewards, values, last_values, terminated, truncated, final_values):
    r = as_float_array(rewards, "rewards")
    squeeze = r.ndim == 1
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2:
        raise ValueError(f"rewards must have shape (T,) or (T, N), got {r.shape}")
    if r.shape[0] == 0:
        raise ValueError("rewards is empty: need at least one step")
    shape = r.shape

    def arr(x, name, default=0.0, tail=False):
        want = shape[1:] if tail else shape
        if x is None:
            return np.full(want, default)
        a = as_float_array(x, name)
        if squeeze and not tail and a.ndim == 1:
            a = a[:, None]
        if squeeze and tail and a.ndim == 0:
            a = a[None]
        if a.shape != want:
            orig = np.shape(x)
            exp = (shape[0],) if (squeeze and not tail) else (() if (squeeze and tail) else want)
            raise ValueError(f"{name} has shape {orig}, expected {exp}")
        return a

    v = arr(values, "values")
    lv = arr(last_values, "last_values", tail=True)
    term = arr(terminated, "terminated")
    trunc = arr(truncated, "truncated")
    for name, d in (("terminated", term), ("truncated", trunc)):
        if np.any((d != 0) & (d != 1)):
            raise ValueError(f"{name} must contain only 0/1 (False/True)")
    if np.any((term == 1) & (trunc == 1)):
        raise ValueError("a step cannot be both terminated and truncated (gymnasium reports "
                         "terminated=True in that case; pass truncated=False there)")
    fv = arr(final_values, "final_values")
    if final_values is None and np.any(trunc == 1):
        raise ValueError("truncated steps need final_values: the value of the observation the "
                         "truncated episode really reached (bootstrapped by its TD error)")
    return r, v, lv, term, trunc, fv, squeeze


def td_errors(rewards, values, last_values, gamma: float, terminated=None, truncated=None,
              final_values=None) -> np.ndarray:
    """One-step TD errors ``delta_t`` (shape like ``rewards``), with the bootstraps described above."""
    gamma = check_gamma(gamma)
    r, v, lv, term, trunc, fv, squeeze = _prepare(rewards, values, last_values, terminated, truncated,
                                                  final_values)
    nxt = np.concatenate([v[1:], lv[None]], axis=0)       # V(s_{t+1}) inside an episode
    nxt = np.where(trunc == 1, fv, nxt)                   # truncated: value of the real final obs
    delta = r + gamma * (1.0 - term) * nxt - v
    return delta[:, 0] if squeeze else delta


def compute_gae(rewards, values, last_values, gamma: float, lam: float, terminated=None,
                truncated=None, final_values=None, method: str = "loop") -> tuple[np.ndarray, np.ndarray]:
    """GAE advantages and lambda-returns.

    Parameters
    ----------
    rewards, values : (T, N) (or (T,) for one environment), time first; ``values[t] = V(s_t)``.
    last_values : (N,) (or scalar) value of the observation after the last row.
    gamma, lam : discount and GAE parameter, both in [0, 1].
    terminated, truncated : optional 0/1 arrays like ``rewards``: the episode ended at step ``t``
        in a terminal state / by a time limit.
    final_values : array like ``rewards``; read only where ``truncated`` is true: the value of the
        observation the truncated episode reached (required when any step is truncated).
    method : ``"loop"`` (backward recursion over time, vectorised over environments) or
        ``"matrix"`` (vectorised over time too: ``A = M @ delta`` with the decay matrix
        ``M[t, k] = (gamma*lam)^(k-t)`` when no episode ends in ``[t, k)``, else 0; O(T^2) memory).

    Returns ``(advantages, returns)`` as float64 arrays shaped like ``rewards``, with
    ``returns = advantages + values`` (the TD(lambda) targets for the critic).
    """
    gamma = check_gamma(gamma)
    lam = _check_lam(lam)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    r, v, lv, term, trunc, fv, squeeze = _prepare(rewards, values, last_values, terminated, truncated,
                                                  final_values)
    delta = td_errors(r, v, lv, gamma, term, trunc, fv if np.any(trunc == 1) else None)
    done = np.maximum(term, trunc)
    T = r.shape[0]
    if method == "loop":
        adv = np.empty_like(delta)
        acc = np.zeros(r.shape[1])
        for t in range(T - 1, -1, -1):
            acc = delta[t] + gamma * lam * (1.0 - done[t]) * acc
            adv[t] = acc
    else:
        # D[i, n] = number of episode ends among steps < i; no end in [t, k) <=> D[t] == D[k]
        D = np.concatenate([np.zeros((1, r.shape[1])), np.cumsum(done, axis=0)[:-1]], axis=0)
        t_idx, k_idx = np.arange(T)[:, None], np.arange(T)[None, :]
        lag = k_idx - t_idx
        decay = np.where(lag >= 0, (gamma * lam) ** np.clip(lag, 0, None), 0.0)        # (T, T)
        same = D.T[:, :, None] == D.T[:, None, :]                                        # (N, T, T)
        M = decay[None] * same
        adv = np.einsum("ntk,kn->tn", M, delta)
    ret = adv + v
    if squeeze:
        return adv[:, 0], ret[:, 0]
    return adv, ret


def gae_reference_loop(rewards, values, last_values, gamma, lam, terminated, truncated, final_values):
    """The plain per-environment, per-step double loop (no numpy vectorisation), for tests and teaching.

    Same arguments as :func:`compute_gae` but all required and 2-D ``(T, N)``; returns advantages.
    """
    T, N = len(rewards), len(rewards[0])
    adv = [[0.0] * N for _ in range(T)]
    for n in range(N):
        a_next = 0.0
        for t in reversed(range(T)):
            if truncated[t][n]:
                v_next = final_values[t][n]
            elif t == T - 1:
                v_next = last_values[n]
            else:
                v_next = values[t + 1][n]
            not_term = 0.0 if terminated[t][n] else 1.0
            delta = rewards[t][n] + gamma * not_term * v_next - values[t][n]
            cont = 0.0 if (terminated[t][n] or truncated[t][n]) else 1.0
            a_next = delta + gamma * lam * cont * a_next
            adv[t][n] = a_next
    return np.asarray(adv, dtype=np.float64)


def normalize_advantages(adv, eps: float = 1e-8):
    """``(A - mean) / (std + eps)`` over all entries (numpy array or torch tensor)."""
    try:
        import torch

        if isinstance(adv, torch.Tensor):
            if adv.numel() < 2:
                raise ValueError("need at least 2 advantages to normalise")
            return (adv - adv.mean()) / (adv.std() + eps)
    except ImportError:  # pragma: no cover
        pass
    a = as_float_array(adv, "advantages")
    if a.size < 2:
        raise ValueError("need at least 2 advantages to normalise")
    return (a - a.mean()) / (a.std(ddof=1) + eps)


__all__ = ["compute_gae", "td_errors", "gae_reference_loop", "normalize_advantages", "METHODS"]
