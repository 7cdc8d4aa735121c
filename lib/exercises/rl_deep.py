"""Checkers for the exercises of Part 6, second half (DQN, policy gradient, MARL, imitation/IRL,
model-based and feudal RL, distributional RL). Each compares the reader's function with the
vetted ``lib.rl`` implementation on random inputs (see :func:`lib.exercises.check_function`).

Book: seed-51, seed-52, seed-53, seed-54, seed-55, seed-56, seed-57, seed-58, seed-59, seed-60,
seed-61, seed-62, seed-63
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import CheckReport, check_function


def _np(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy().astype(np.float64)
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=np.float64)


def check_dqn_target(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, dones, next_q_target, gamma, next_q_online=None)`` -> targets (B,).

    Arrays are NumPy; with ``next_q_online`` the Double-DQN target is expected."""
    from lib.rl.dqn import dqn_targets

    def make(rng):
        b, a = int(rng.integers(1, 7)), int(rng.integers(2, 5))
        kw = {"rewards": rng.normal(size=b).round(2), "dones": (rng.random(b) < 0.3).astype(np.float64),
              "next_q_target": rng.normal(size=(b, a)).round(2), "gamma": float(rng.choice([0.0, 0.9, 0.99, 1.0]))}
        if rng.random() < 0.5:
            kw["next_q_online"] = rng.normal(size=(b, a)).round(2)
        return kw

    return check_function(lambda **kw: _np(candidate(**kw)), lambda **kw: _np(dqn_targets(**kw)), make,
                          name="(Double) DQN target", trials=trials, rtol=1e-5, atol=1e-5)


def check_reinforce_loss(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(log_probs, rewards, gamma)`` -> scalar surrogate loss of ONE episode (arrays (T,)):
    ``-sum_t log_probs[t] * G_t`` with the reward-to-go ``G_t``."""
    from lib.rl.returns import discounted_returns

    def ref(log_probs, rewards, gamma):
        return float(-(np.asarray(log_probs) * discounted_returns(rewards, gamma)).sum())

    def make(rng):
        t = int(rng.integers(1, 10))
        return {"log_probs": -rng.random(t).round(3), "rewards": rng.normal(size=t).round(2),
                "gamma": float(rng.choice([0.5, 0.9, 0.99, 1.0]))}

    return check_function(lambda **kw: float(_np(candidate(**kw))), ref, make, name="REINFORCE loss",
                          trials=trials, rtol=1e-6, atol=1e-8)


def check_pure_nash(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(A, B)`` -> sorted list of pure Nash equilibria ``(i, j)`` of the bimatrix game."""
    from lib.rl.marl import MatrixGame, pure_nash

    def ref(A, B):
        g = MatrixGame("x", A, B, tuple(range(A.shape[0])), tuple(range(A.shape[1])))
        return sorted(pure_nash(g))

    def make(rng):
        m, n = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        return {"A": rng.integers(-3, 4, size=(m, n)).astype(float), "B": rng.integers(-3, 4, size=(m, n)).astype(float)}

    return check_function(lambda **kw: sorted(tuple(int(v) for v in e) for e in candidate(**kw)), ref, make,
                          name="pure Nash equilibria", trials=trials)


def check_expected_svf(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(P, policies, p0)`` -> expected state-visitation counts (S,) over ``len(policies)`` steps."""
    from lib.rl.irl import expected_svf

    def make(rng):
        s, a, h = int(rng.integers(2, 6)), int(rng.integers(2, 4)), int(rng.integers(1, 6))
        return {"P": rng.dirichlet(np.ones(s), size=(s, a)), "policies": rng.dirichlet(np.ones(a), size=(h, s)),
                "p0": rng.dirichlet(np.ones(s))}

    return check_function(lambda **kw: _np(candidate(**kw)), expected_svf, make,
                          name="expected state-visitation frequencies", trials=trials, rtol=1e-6)


def _dyna_ref(Q, model_r, model_s, model_d, pairs, alpha, gamma):
    Q = np.array(Q, dtype=np.float64)
    for s, a in pairs:
        Q[s, a] += alpha * (model_r[s, a] + gamma * (1 - model_d[s, a]) * Q[model_s[s, a]].max() - Q[s, a])
    return Q


def check_planning_updates(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(Q, model_r, model_s, model_d, pairs, alpha, gamma)`` -> Q after Dyna-Q planning
    updates at the listed ``(s, a)`` pairs, in order (do not modify the input ``Q``)."""

    def make(rng):
        s, a = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        k = int(rng.integers(1, 8))
        return {"Q": rng.normal(size=(s, a)).round(2), "model_r": rng.normal(size=(s, a)).round(2),
                "model_s": rng.integers(0, s, size=(s, a)), "model_d": (rng.random((s, a)) < 0.2).astype(float),
                "pairs": [(int(rng.integers(s)), int(rng.integers(a))) for _ in range(k)],
                "alpha": float(rng.choice([0.1, 0.5, 1.0])), "gamma": float(rng.choice([0.9, 0.95, 1.0]))}

    return check_function(lambda **kw: _np(candidate(**kw)), _dyna_ref, make, name="Dyna-Q planning updates",
                          trials=trials)


def check_c51_projection(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(next_probs, rewards, dones, gamma, support)`` -> projected target (B, N) (NumPy in/out)."""
    from lib.rl.distributional import categorical_projection

    def make(rng):
        b, n = int(rng.integers(1, 5)), int(rng.integers(3, 12))
        lo = float(rng.integers(-5, 0))
        return {"next_probs": rng.dirichlet(np.ones(n), size=b), "rewards": rng.normal(0, 2, size=b).round(2),
                "dones": (rng.random(b) < 0.3).astype(float), "gamma": float(rng.choice([0.5, 0.9, 0.99])),
                "support": np.linspace(lo, lo + float(rng.integers(2, 10)), n)}

    return check_function(lambda **kw: _np(candidate(**kw)), lambda **kw: _np(categorical_projection(**kw)), make,
                          name="C51 categorical projection", trials=trials, rtol=1e-6, atol=1e-9)


__all__ = ["check_dqn_target", "check_reinforce_loss", "check_pure_nash", "check_expected_svf",
           "check_planning_updates", "check_c51_projection"]
