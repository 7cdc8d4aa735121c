"""Exercise checkers for Part 6 (RL basics). Each compares the reader's function with the vetted
``lib`` implementation on random inputs and returns a :class:`lib.exercises.CheckReport`.

Book: seed-33, seed-34, seed-35, seed-36, seed-37, seed-38, seed-39, seed-40, seed-41, seed-42,
seed-43, seed-44, seed-45, seed-46, seed-47, seed-48, seed-49, seed-50
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import CheckReport, check_function


def check_episode_totals(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, dones)`` -> list of the undiscounted total reward of each finished
    episode in a 1-D stream of steps (an unfinished tail is not counted)."""
    from lib.rl.returns import episode_returns

    def make(rng):
        n = int(rng.integers(1, 20))
        dones = rng.random(n) < 0.25
        return {"rewards": rng.integers(-3, 4, size=n).astype(float), "dones": dones}

    return check_function(candidate, episode_returns, make, name="episode totals", trials=trials)


def check_returns_with_dones(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, dones, gamma)`` -> discounted returns (T,) that restart after every done."""
    from lib.rl.returns import discounted_returns

    def make(rng):
        n = int(rng.integers(1, 15))
        return {"rewards": rng.normal(size=n).round(2), "dones": rng.random(n) < 0.3,
                "gamma": float(rng.choice([0.0, 0.5, 0.9, 1.0]))}

    return check_function(candidate, lambda rewards, dones, gamma: discounted_returns(rewards, gamma, dones),
                          make, name="discounted returns with episode ends", trials=trials)


def check_q_from_v(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(P, R, V, gamma)`` -> Q (S, A) with ``Q = R + gamma * P @ V`` (P (S, A, S), R (S, A))."""

    def ref(P, R, V, gamma):
        return R + gamma * P @ V

    def make(rng):
        S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        P = rng.dirichlet(np.ones(S), size=(S, A)) * 0.9  # 10% chance of ending the episode
        return {"P": P, "R": rng.normal(size=(S, A)), "V": rng.normal(size=S), "gamma": float(rng.uniform(0, 1))}

    return check_function(candidate, ref, make, name="Q from V (Bellman)", trials=trials)


def check_stationary(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(P)`` -> the stationary distribution (S,) of an irreducible, aperiodic chain."""
    from lib.rl.markov import stationary_eigen

    def make(rng):
        S = int(rng.integers(2, 7))
        return {"P": rng.dirichlet(np.ones(S), size=S)}

    return check_function(candidate, stationary_eigen, make, name="stationary distribution", trials=trials,
                          rtol=1e-5, atol=1e-7)


def check_epsilon_greedy_probs(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(q_row, epsilon)`` -> action probabilities (A,) of epsilon-greedy, ties split equally."""
    from lib.rl.mc_td import epsilon_greedy_probs

    def make(rng):
        A = int(rng.integers(2, 6))
        q = rng.integers(0, 3, size=A).astype(float)  # small integers: ties happen
        return {"q_row": q, "epsilon": float(rng.choice([0.0, 0.1, 0.5, 1.0]))}

    return check_function(candidate, epsilon_greedy_probs, make, name="epsilon-greedy probabilities", trials=trials)


def check_ucb_scores(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(Q, N, t, c)`` -> UCB1 scores ``Q + c sqrt(ln t / N)`` with ``inf`` for unpulled arms."""
    from lib.rl.bandits import ucb_scores

    def make(rng):
        K = int(rng.integers(2, 6))
        N = rng.integers(0, 5, size=K)
        return {"Q": rng.uniform(size=K), "N": N, "t": int(max(N.sum(), 1)), "c": float(rng.choice([0.5, 1.0, 2.0]))}

    return check_function(candidate, ucb_scores, make, name="UCB1 scores", trials=trials)


def _td0_ref(V, s, r, s_next, terminated, alpha, gamma):
    V = np.array(V, dtype=np.float64)
    target = r if terminated else r + gamma * V[s_next]
    V[s] += alpha * (target - V[s])
    return V


def check_td0_update(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(V, s, r, s_next, terminated, alpha, gamma)`` -> the new value table after one TD(0)
    update (return a new array; the target is ``r`` alone when ``terminated``)."""

    def make(rng):
        S = int(rng.integers(2, 7))
        return {"V": rng.normal(size=S), "s": int(rng.integers(S)), "r": round(float(rng.normal()), 2),
                "s_next": int(rng.integers(S)), "terminated": bool(rng.random() < 0.3),
                "alpha": float(rng.choice([0.1, 0.5, 1.0])), "gamma": float(rng.choice([0.9, 1.0]))}

    return check_function(candidate, _td0_ref, make, name="TD(0) update", trials=trials)


def _nstep_ref(rewards, v_boot, gamma):
    g = float(v_boot)
    for r in np.asarray(rewards, dtype=np.float64)[::-1]:
        g = r + gamma * g
    return g


def check_nstep_return(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, v_boot, gamma)`` -> the n-step return
    ``sum_k gamma^k rewards[k] + gamma^n v_boot`` for ``n = len(rewards)``."""

    def make(rng):
        n = int(rng.integers(1, 8))
        return {"rewards": rng.normal(size=n).round(2), "v_boot": float(rng.normal()),
                "gamma": float(rng.choice([0.5, 0.9, 1.0]))}

    return check_function(candidate, _nstep_ref, make, name="n-step return", trials=trials)


def _q_update_ref(Q, s, a, r, s_next, terminated, alpha, gamma):
    Q = np.array(Q, dtype=np.float64)
    target = r if terminated else r + gamma * Q[s_next].max()
    Q[s, a] += alpha * (target - Q[s, a])
    return Q


def check_q_learning_update(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(Q, s, a, r, s_next, terminated, alpha, gamma)`` -> new Q (S, A) after one
    Q-learning update (target ``r + gamma max_a' Q[s_next, a']``, or ``r`` when terminated)."""

    def make(rng):
        S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        return {"Q": rng.normal(size=(S, A)), "s": int(rng.integers(S)), "a": int(rng.integers(A)),
                "r": round(float(rng.normal()), 2), "s_next": int(rng.integers(S)),
                "terminated": bool(rng.random() < 0.3), "alpha": float(rng.choice([0.1, 0.5])),
                "gamma": float(rng.choice([0.9, 1.0]))}

    return check_function(candidate, _q_update_ref, make, name="Q-learning update", trials=trials)


__all__ = ["check_episode_totals", "check_returns_with_dones", "check_q_from_v", "check_stationary",
           "check_epsilon_greedy_probs", "check_ucb_scores", "check_td0_update", "check_nstep_return",
           "check_q_learning_update"]
