"""Maximum-entropy inverse RL (Ziebart et al. 2008) on tabular MDPs with known dynamics.

Model: experts pick trajectories with probability proportional to ``exp(sum_t r(s_t))`` where
``r(s) = features[s] @ w``. For a finite horizon ``H`` the maximum-likelihood ``w`` is found by
gradient ascent on the demonstrations' log-likelihood, whose gradient is

    grad = (expert feature counts) - (expected feature counts under the soft-optimal policy),

the latter from a backward *soft* value iteration (:func:`soft_value_iteration`) and a forward
pass of state-visitation frequencies (:func:`expected_svf`). The recovered reward is then handed
to ordinary RL (value iteration) to check that it reproduces the expert.

Book: seed-60
"""
from __future__ import annotations

import dataclasses

import numpy as np


def _check_P(P):
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(-1), 1.0):
        raise ValueError("each P[s, a] must be a probability distribution")
    return P


def _logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def soft_value_iteration(P, reward, horizon: int, temperature: float = 1.0) -> np.ndarray:
    """Time-dependent soft-optimal policies ``pi[t, s, a]`` (H, S, A) for a finite horizon.

    ``reward``: (S,) state reward (received in the current state) or (S, A).
    ``Q_t = r + P V_{t+1}``, ``V_t = T * logsumexp(Q_t / T)``, ``pi_t = exp((Q_t - V_t) / T)``.
    """
    P = _check_P(P)
    S, A, _ = P.shape
    r = np.asarray(reward, dtype=np.float64)
    if r.shape == (S,):
        r = np.repeat(r[:, None], A, axis=1)
    if r.shape != (S, A):
        raise ValueError(f"reward must have shape ({S},) or ({S}, {A}), got {np.shape(reward)}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    V = np.zeros(S)
    pis = np.zeros((horizon, S, A))
    for t in range(horizon - 1, -1, -1):
        Q = r + P @ V
        V = temperature * _logsumexp(Q / temperature, axis=1)
        pis[t] = np.exp((Q - V[:, None]) / temperature)
    return pis


def expected_svf(P, policies, p0) -> np.ndarray:
    """Expected state-visitation counts ``sum_t D_t(s)`` (S,) of time-dependent ``policies`` (H, S, A)
    started from ``p0`` (S,)."""
    P = _check_P(P)
    pis = np.asarray(policies, dtype=np.float64)
    p0 = np.asarray(p0, dtype=np.float64)
    if pis.ndim == 2:
        pis = pis[None]
    if pis.shape[1:] != P.shape[:2]:
        raise ValueError(f"policies must have shape (H, {P.shape[0]}, {P.shape[1]}), got {pis.shape}")
    if p0.shape != (P.shape[0],) or not np.isclose(p0.sum(), 1.0):
        raise ValueError("p0 must be a probability vector over states")
    D, total = p0.copy(), np.zeros_like(p0)
    for t in range(pis.shape[0]):
        total += D
        D = np.einsum("s,sa,sap->p", D, pis[t], P)
    return total


def sample_trajectories(P, policy, p0, n: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` state sequences (n, H) and action sequences (n, H) under a (time-independent) policy
    ``policy[s, a]`` or time-dependent ``policy[t, s, a]``. Returns (states, actions)."""
    P = _check_P(P)
    pol = np.asarray(policy, dtype=np.float64)
    S, A, _ = P.shape
    if pol.shape == (S, A):
        pol = np.broadcast_to(pol, (horizon, S, A))
    if pol.shape != (horizon, S, A):
        raise ValueError(f"policy must have shape ({S}, {A}) or ({horizon}, {S}, {A}), got {np.shape(policy)}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    states = np.zeros((n, horizon), dtype=np.int64)
    actions = np.zeros((n, horizon), dtype=np.int64)
    s = rng.choice(S, size=n, p=p0)
    for t in range(horizon):
        states[:, t] = s
        c = np.cumsum(pol[t, s], axis=1)
        a = np.minimum((rng.random((n, 1)) * c[:, -1:] > c).sum(1), A - 1)
        actions[:, t] = a
        c2 = np.cumsum(P[s, a], axis=1)
        s = np.minimum((rng.random((n, 1)) * c2[:, -1:] > c2).sum(1), S - 1)
    return states, actions


@dataclasses.dataclass
class IRLResult:
    weights: np.ndarray        # (F,)
    reward: np.ndarray         # (S,) features @ weights
    grad_norms: list
    log_likelihoods: list      # mean per-trajectory log-likelihood of the demonstrations


def demo_log_likelihood(policies, states, actions) -> float:
    """Mean log-likelihood of the demonstrations' actions under time-dependent ``policies``."""
    H = states.shape[1]
    t = np.arange(H)[None, :]
    return float(np.log(policies[t, states, actions] + 1e-300).sum(1).mean())


def maxent_irl(P, features, states, actions, horizon: int | None = None, lr: float = 0.1, n_iters: int = 200,
               l2: float = 0.0, p0=None) -> IRLResult:
    """Fit ``r = features @ w`` to demonstrations ``states``/``actions`` (n, H) by MaxEnt IRL.

    ``p0`` defaults to the demonstrations' empirical start distribution. Gradient ascent with
    Adam-style normalisation (``lr`` is the step size); ``l2`` is an optional weight penalty.
    """
    P = _check_P(P)
    S, A, _ = P.shape
    F = np.asarray(features, dtype=np.float64)
    states, actions = np.asarray(states), np.asarray(actions)
    if F.ndim != 2 or F.shape[0] != S:
        raise ValueError(f"features must have shape ({S}, F), got {F.shape}")
    if states.ndim != 2 or states.shape != actions.shape:
        raise ValueError(f"states and actions must share shape (n, H), got {states.shape}, {actions.shape}")
    H = states.shape[1] if horizon is None else int(horizon)
    if H != states.shape[1]:
        raise ValueError(f"horizon {H} differs from the demonstrations' length {states.shape[1]}")
    if p0 is None:
        p0 = np.bincount(states[:, 0], minlength=S) / states.shape[0]
    f_expert = F[states].sum(1).mean(0)                       # (F,)
    w = np.zeros(F.shape[1])
    m, v = np.zeros_like(w), np.zeros_like(w)
    norms, lls = [], []
    for k in range(1, n_iters + 1):
        r = F @ w
        pis = soft_value_iteration(P, r, H)
        f_model = expected_svf(P, pis, p0) @ F
        g = f_expert - f_model - l2 * w
        norms.append(float(np.linalg.norm(g)))
        lls.append(demo_log_likelihood(pis, states, actions))
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w + lr * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    return IRLResult(w, F @ w, norms, lls)


def policy_agreement(Q_true, actions, tol: float = 1e-6, states=None) -> float:
    """Fraction of ``states`` where ``actions[s]`` is optimal under ``Q_true`` (ties count as agreement)."""
    Q = np.asarray(Q_true, dtype=np.float64)
    a = np.asarray(actions)
    idx = np.arange(Q.shape[0]) if states is None else np.asarray(states)
    ok = Q[idx, a[idx]] >= Q[idx].max(1) - tol
    return float(ok.mean())


__all__ = ["soft_value_iteration", "expected_svf", "sample_trajectories", "IRLResult", "demo_log_likelihood",
           "maxent_irl", "policy_agreement"]
