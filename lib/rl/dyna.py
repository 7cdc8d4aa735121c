"""Dyna-Q (Sutton 1990): Q-learning plus ``n`` planning updates per real step from a learned model.

The model remembers, for every visited ``(s, a)``, the last observed ``(r, s', terminated)``
(exact for deterministic environments). After each real step the agent makes one Q-learning
update from experience and then ``n_planning`` more from transitions replayed out of the model
at previously visited pairs. ``n_planning = 0`` is plain one-step Q-learning.

Book: seed-61
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .mc_td import check_control_args, epsilon_greedy_action


@dataclasses.dataclass
class TabularRun:
    Q: np.ndarray                 # (S, A)
    steps_per_episode: np.ndarray  # (n_episodes,)
    returns: np.ndarray           # (n_episodes,) undiscounted
    reached_goal: np.ndarray      # (n_episodes,) bool: episode terminated (not truncated)
    updates: int                  # total Q updates (real + planned)


def dyna_q(env, n_episodes: int, n_planning: int = 0, alpha: float = 0.1, gamma: float = 0.95,
           epsilon: float = 0.1, seed: int = 0, q_init: float = 0.0) -> TabularRun:
    """Run Dyna-Q on a Gymnasium env with ``Discrete`` observations and actions.

    Returns a :class:`TabularRun` with the learned ``Q`` and per-episode steps/returns.
    """
    gamma = check_control_args(n_episodes, alpha, gamma, epsilon)
    if isinstance(n_planning, bool) or not isinstance(n_planning, (int, np.integer)) or n_planning < 0:
        raise ValueError(f"n_planning must be a non-negative integer, got {n_planning!r}")
    S, A = int(env.observation_space.n), int(env.action_space.n)
    rng = np.random.default_rng(seed)
    Q = np.full((S, A), float(q_init))
    model_r = np.zeros((S, A))
    model_s = np.zeros((S, A), dtype=np.int64)
    model_d = np.zeros((S, A))
    seen = np.zeros((S, A), dtype=bool)
    seen_list: list[int] = []                      # flat indices s * A + a, for uniform sampling
    steps = np.zeros(n_episodes, dtype=np.int64)
    rets = np.zeros(n_episodes)
    goal = np.zeros(n_episodes, dtype=bool)
    updates = 0
    s, _ = env.reset(seed=seed)
    for ep in range(n_episodes):
        if ep > 0:
            s, _ = env.reset()
        while True:
            a = epsilon_greedy_action(Q[s], epsilon, rng)
            s2, r, term, trunc, _ = env.step(a)
            Q[s, a] += alpha * (r + gamma * (0.0 if term else Q[s2].max()) - Q[s, a])
            updates += 1
            if not seen[s, a]:
                seen[s, a] = True
                seen_list.append(s * A + a)
            model_r[s, a], model_s[s, a], model_d[s, a] = r, s2, float(term)
            if n_planning:
                picks = rng.integers(0, len(seen_list), size=n_planning)
                for k in picks:
                    ps, pa = divmod(seen_list[k], A)
                    ns = model_s[ps, pa]
                    Q[ps, pa] += alpha * (model_r[ps, pa] + gamma * (1.0 - model_d[ps, pa]) * Q[ns].max() - Q[ps, pa])
                updates += n_planning
            steps[ep] += 1
            rets[ep] += r
            s = s2
            if term or trunc:
                goal[ep] = bool(term)
                break
    return TabularRun(Q, steps, rets, goal, updates)


__all__ = ["TabularRun", "dyna_q"]
