"""The policy-gradient theorem on a small finite-horizon MDP, computed three ways.

A tabular softmax policy ``pi(a|s) = softmax(theta[s])`` acts for ``horizon`` steps in an MDP
with transition table ``P[s, a, s']``, rewards ``R[s, a]`` and start distribution ``mu0``.
Because everything is finite, the objective ``J(theta) = E[sum_t gamma^t r_t]`` and its gradient
can be computed *exactly* (dynamic programming + autograd, or enumeration of every trajectory),
which lets the book check the REINFORCE estimator and finite differences against the truth.

Estimators of ``grad J`` (per sampled episode):

* ``"total"``:        ``sum_t grad log pi(a_t|s_t) * G_0``               (the log-derivative trick)
* ``"reward_to_go"``: ``sum_t gamma^t grad log pi(a_t|s_t) * G_t``       (causality: drop past rewards)
* ``"baseline"``:     ``sum_t gamma^t grad log pi(a_t|s_t) * (G_t - V_t(s_t))`` (exact value baseline)

All three are unbiased; they differ in variance. The ``"baseline"`` estimator takes any baseline
that does not depend on the action: the exact value ``V_t(s_t)`` (default) or a constant.

The MDP is a :class:`lib.rl.tabular.FiniteMDP` (a tabular MDP run for ``horizon`` steps).

Book: seed-2-1 (the policy-gradient theorem, checked), seed-55 (policy gradient), seed-65 (baselines
and advantages).
"""
from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from .returns import discounted_returns
from .tabular import FiniteMDP

ESTIMATORS = ("total", "reward_to_go", "baseline")


def random_mdp(n_states: int = 3, n_actions: int = 2, horizon: int = 3, gamma: float = 0.9,
               seed: int = 0) -> FiniteMDP:
    """A random MDP (Dirichlet transitions, rewards in [-1, 1]) for experiments and tests."""
    if n_states < 1 or n_actions < 1:
        raise ValueError("need at least one state and one action")
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    R = rng.uniform(-1, 1, size=(n_states, n_actions)).round(2)
    mu0 = rng.dirichlet(np.ones(n_states))
    return FiniteMDP(P, R, start=mu0, horizon=horizon, gamma=gamma)


def check_theta(mdp: FiniteMDP | None, theta) -> np.ndarray:
    """``theta`` as a finite float64 table (n_states, n_actions), of ``mdp``'s shape when given."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2:
        raise ValueError(f"theta must be a 2-D table (n_states, n_actions), got shape {theta.shape}")
    if mdp is not None and theta.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"theta has shape {theta.shape}, the MDP needs {(mdp.n_states, mdp.n_actions)}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta contains NaN or inf")
    return theta


def softmax_policy(theta) -> np.ndarray:
    """``pi[s, a] = exp(theta[s, a]) / sum_b exp(theta[s, b])`` (numerically stable)."""
    theta = check_theta(None, theta)
    z = theta - theta.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def score_function(theta, state: int, action: int) -> np.ndarray:
    """``grad_theta log pi(action | state)``: row ``state`` is ``onehot(action) - pi[state]``."""
    theta = check_theta(None, theta)
    S, A = theta.shape
    if not 0 <= int(state) < S or not 0 <= int(action) < A:
        raise ValueError(f"state must be in [0, {S}) and action in [0, {A}), got ({state}, {action})")
    g = np.zeros_like(theta)
    g[state] = -softmax_policy(theta)[state]
    g[state, action] += 1.0
    return g


def value_tables(mdp: FiniteMDP, theta) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon ``V[t, s]`` (shape (H+1, S), ``V[H] = 0``) and ``Q[t, s, a]`` by backward DP."""
    theta = check_theta(mdp, theta)
    pi = softmax_policy(theta)
    H, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for t in range(H - 1, -1, -1):
        Q[t] = mdp.R + mdp.gamma * mdp.P @ V[t + 1]
        V[t] = (pi * Q[t]).sum(axis=1)
    return V, Q


def exact_objective(mdp: FiniteMDP, theta) -> float:
    """``J(theta) = E[sum_t gamma^t r_t]``, exactly, by dynamic programming."""
    V, _ = value_tables(mdp, theta)
    return float(mdp.start @ V[0])


def exact_gradient(mdp: FiniteMDP, theta) -> np.ndarray:
    """``grad J(theta)`` exactly: autograd through the dynamic-programming objective (float64)."""
    import torch

    theta_np = check_theta(mdp, theta)
    th = torch.tensor(theta_np, dtype=torch.float64, requires_grad=True)
    P = torch.tensor(mdp.P)
    R = torch.tensor(mdp.R)
    pi = torch.softmax(th, dim=1)
    V = torch.zeros(mdp.n_states, dtype=torch.float64)
    for _ in range(mdp.horizon):
        Q = R + mdp.gamma * P @ V
        V = (pi * Q).sum(dim=1)
    J = torch.tensor(mdp.start) @ V
    (grad,) = torch.autograd.grad(J, th)
    return grad.numpy()


def enumerate_trajectories(mdp: FiniteMDP, theta):
    """Every trajectory with non-zero probability: arrays ``states``/``actions``/``rewards`` of
    shape (M, H) and their probabilities ``probs`` (M,), summing to 1."""
    theta = check_theta(mdp, theta)
    pi = softmax_policy(theta)
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    if S ** (H + 1) * A ** H > 2_000_000:
        raise ValueError("too many trajectories to enumerate; use a smaller MDP or horizon")
    states, actions, probs = [], [], []
    for s0 in range(S):
        for steps in itertools.product(range(A), range(S), repeat=H):
            acts, nexts = steps[0::2], steps[1::2]
            p, s, path = mdp.start[s0], s0, []
            for a, s_next in zip(acts, nexts):
                path.append(s)
                p *= pi[s, a] * mdp.P[s, a, s_next]
                s = s_next
            if p > 0:
                states.append(path)
                actions.append(acts)
                probs.append(p)
    states = np.array(states, dtype=np.int64)
    actions = np.array(actions, dtype=np.int64)
    # the last next-state is marginalised: merge duplicates is unnecessary for expectations
    rewards = mdp.R[states, actions]
    return states, actions, rewards, np.array(probs)


def sample_episodes(mdp: FiniteMDP, theta, n: int, rng: np.random.Generator):
    """Sample ``n`` episodes under the softmax policy: ``states``, ``actions``, ``rewards`` (n, H)."""
    theta = check_theta(mdp, theta)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator (np.random.default_rng(seed))")
    pi = softmax_policy(theta)
    H = mdp.horizon
    states = np.empty((n, H), dtype=np.int64)
    actions = np.empty((n, H), dtype=np.int64)
    s = _sample_rows(np.broadcast_to(mdp.start, (n, mdp.n_states)), rng)
    for t in range(H):
        states[:, t] = s
        a = _sample_rows(pi[s], rng)
        actions[:, t] = a
        s = _sample_rows(mdp.P[s, a], rng)
    return states, actions, mdp.R[states, actions]


def _sample_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``p`` by inverse CDF (vectorised)."""
    c = np.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * c[:, -1:]
    return np.minimum((u > c).sum(axis=1), p.shape[1] - 1)


def check_episodes(mdp: FiniteMDP, states, actions, rewards):
    """Validate a batch of episodes of ``mdp``: integer ``states``/``actions`` and float ``rewards``,
    all of shape (n, horizon). Returns them as arrays."""
    states, actions = np.asarray(states), np.asarray(actions)
    rewards = np.asarray(rewards, dtype=np.float64)
    if states.ndim != 2 or states.shape != actions.shape or states.shape != rewards.shape:
        raise ValueError(f"states, actions, rewards must share shape (n, H); got "
                         f"{states.shape}, {actions.shape}, {rewards.shape}")
    if states.shape[1] != mdp.horizon:
        raise ValueError(f"episodes have {states.shape[1]} steps, the MDP's horizon is {mdp.horizon}")
    return states, actions, rewards


def score_weighted_sum(theta, states, actions, coef) -> np.ndarray:
    """``sum_t coef[:, t] * grad log pi(a_t | s_t)`` for every episode: shape (n, S, A).

    The common core of every REINFORCE-style estimator; only the weights ``coef`` (n, H) differ."""
    theta = check_theta(None, theta)
    states, actions, coef = np.asarray(states), np.asarray(actions), np.asarray(coef, dtype=np.float64)
    if coef.shape != states.shape:
        raise ValueError(f"coef has shape {coef.shape}, expected the episodes' shape {states.shape}")
    n, H = states.shape
    pi = softmax_policy(theta)
    out = np.zeros((n,) + theta.shape)
    rows = np.arange(n)
    for t in range(H):
        s, a = states[:, t], actions[:, t]
        # grad log pi(a|s) = onehot(a) - pi[s] on row s
        np.add.at(out, (rows, s), -coef[:, t, None] * pi[s])
        np.add.at(out, (rows, s, a), coef[:, t])
    return out


def reinforce_gradient_samples(mdp: FiniteMDP, theta, states, actions, rewards,
                               estimator: str = "reward_to_go", baseline="value") -> np.ndarray:
    """Per-episode REINFORCE gradient estimates, shape (n, S, A); their mean estimates grad J.

    ``estimator`` is one of :data:`ESTIMATORS`. For ``"baseline"``, ``baseline`` is ``"value"``
    (``b_t = V_t(s_t)``, exact, which makes ``G_t - b_t`` a Monte Carlo estimate of the advantage)
    or a number (a constant ``b``; 0 gives ``"reward_to_go"``). Every choice is unbiased because
    ``E[grad log pi(a|s)] = 0`` for any ``b`` that does not depend on the action.
    """
    theta = check_theta(mdp, theta)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    states, actions, rewards = check_episodes(mdp, states, actions, rewards)
    H = states.shape[1]
    G = discounted_returns(rewards.T, mdp.gamma).T            # (n, H): reward-to-go G_t
    disc = mdp.gamma ** np.arange(H)                          # gamma^t
    if estimator == "total":                                  # grad log P(tau) * R(tau)
        coef = np.repeat(G[:, :1], H, axis=1)
    elif estimator == "reward_to_go":                         # gamma^t G_t
        coef = disc[None, :] * G
    else:                                                     # gamma^t (G_t - b_t)
        if isinstance(baseline, str):
            if baseline != "value":
                raise ValueError(f"baseline must be 'value' or a number, got {baseline!r}")
            V, _ = value_tables(mdp, theta)
            b = V[np.arange(H)[None, :], states]
        elif isinstance(baseline, (int, float, np.floating, np.integer)) and not isinstance(baseline, bool):
            b = np.full_like(G, float(baseline))
        else:
            raise TypeError(f"baseline must be 'value' or a number, got {type(baseline).__name__}")
        coef = disc[None, :] * (G - b)
    return score_weighted_sum(theta, states, actions, coef)


def pg_theorem_gradient(mdp: FiniteMDP, theta, estimator: str = "reward_to_go") -> np.ndarray:
    """The exact expectation of an estimator, by weighting every trajectory by its probability.

    Equal to :func:`exact_gradient` for every estimator: the policy-gradient theorem, checked.
    """
    states, actions, rewards, probs = enumerate_trajectories(mdp, theta)
    samples = reinforce_gradient_samples(mdp, theta, states, actions, rewards, estimator)
    return np.tensordot(probs, samples, axes=1)


def finite_difference_gradient(f: Callable[[np.ndarray], float], theta, eps: float = 1e-5) -> np.ndarray:
    """Central differences ``(f(theta + eps e_i) - f(theta - eps e_i)) / 2 eps`` for every entry."""
    theta = np.asarray(theta, dtype=np.float64)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    grad = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[idx] = eps
        grad[idx] = (f(theta + step) - f(theta - step)) / (2 * eps)
    return grad


__all__ = ["random_mdp", "check_theta", "softmax_policy", "score_function", "value_tables",
           "exact_objective", "exact_gradient", "enumerate_trajectories", "sample_episodes",
           "reinforce_gradient_samples", "pg_theorem_gradient", "finite_difference_gradient",
           "check_episodes", "score_weighted_sum",
           "ESTIMATORS"]
