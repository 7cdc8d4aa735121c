"""Multi-armed bandits: exploration strategies, epsilon schedules and regret.

Bandits: :class:`BernoulliBandit` (arm ``a`` pays 1 with probability ``means[a]``) and
:class:`GaussianBandit` (reward ``N(means[a], sd^2)``). Agents share one interface,
``select(rng) -> arm`` and ``update(arm, reward)``:

* :class:`GreedyAgent` — always the best-looking arm (optimistic start optional);
* :class:`EpsilonGreedyAgent` — random arm with probability ``epsilon(t)``, any schedule;
* :class:`UCBAgent` — UCB1, ``Q(a) + c sqrt(ln t / N(a))``;
* :class:`ThompsonAgent` — Beta-Bernoulli posterior sampling (Gaussian posterior for Gaussian arms);
* :class:`LinearEpsilonGreedy` — a contextual bandit with one ridge regression per arm.

Schedules map a step ``t = 0, 1, …`` to epsilon: :func:`constant_schedule`, :func:`linear_schedule`,
:func:`exponential_schedule`. :func:`run_bandit` plays one agent and records the pseudo-regret
``sum_t (mu* - mu_{a_t})``; :func:`regret_curves` repeats it over seeds.

Book: seed-34, seed-38, seed-39
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np


# ---------------------------------------------------------------- bandits


class _Bandit:
    def __init__(self, means):
        m = np.asarray(means, dtype=np.float64)
        if m.ndim != 1 or m.size < 2:
            raise ValueError(f"means must be a 1-D array of at least 2 arms, got shape {m.shape}")
        self.means = m
        self.n_arms = m.size

    @property
    def best_mean(self) -> float:
        return float(self.means.max())

    def _check_arm(self, arm):
        if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise ValueError(f"arm must be an integer in [0, {self.n_arms}), got {arm!r}")


class BernoulliBandit(_Bandit):
    """Arm ``a`` pays 1 with probability ``means[a]``, else 0."""

    def __init__(self, means):
        super().__init__(means)
        if np.any(self.means < 0) or np.any(self.means > 1):
            raise ValueError("Bernoulli means must lie in [0, 1]")

    def pull(self, arm: int, rng: np.random.Generator) -> float:
        self._check_arm(arm)
        return float(rng.random() < self.means[arm])


class GaussianBandit(_Bandit):
    """Arm ``a`` pays ``N(means[a], sd^2)``."""

    def __init__(self, means, sd: float = 1.0):
        super().__init__(means)
        if not sd > 0:
            raise ValueError(f"sd must be > 0, got {sd}")
        self.sd = float(sd)

    def pull(self, arm: int, rng: np.random.Generator) -> float:
        self._check_arm(arm)
        return float(self.means[arm] + self.sd * rng.standard_normal())


# ---------------------------------------------------------------- epsilon schedules


def _check_prob(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)) or not 0 <= x <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {x!r}")
    return float(x)


def constant_schedule(epsilon: float) -> Callable[[int], float]:
    """``epsilon(t) = epsilon`` for every step."""
    e = _check_prob(epsilon, "epsilon")
    return lambda t: e


def linear_schedule(start: float, end: float, steps: int) -> Callable[[int], float]:
    """Linear from ``start`` at ``t = 0`` to ``end`` at ``t = steps``, then constant ``end``."""
    a, b = _check_prob(start, "start"), _check_prob(end, "end")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return lambda t: b if t >= steps else a + (b - a) * (t / steps)


def exponential_schedule(start: float, end: float, steps: int) -> Callable[[int], float]:
    """Geometric decay ``start * (end/start)^(t/steps)``, reaching ``end`` at ``t = steps``, then constant."""
    a, b = _check_prob(start, "start"), _check_prob(end, "end")
    if a <= 0 or b <= 0:
        raise ValueError("an exponential schedule needs start > 0 and end > 0")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    ratio = b / a
    return lambda t: b if t >= steps else a * ratio ** (t / steps)


# ---------------------------------------------------------------- agents


def _argmax_random(values: np.ndarray, rng: np.random.Generator) -> int:
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


class _Agent:
    def __init__(self, n_arms: int, initial_value: float = 0.0):
        if isinstance(n_arms, bool) or not isinstance(n_arms, (int, np.integer)) or n_arms < 2:
            raise ValueError(f"n_arms must be an integer >= 2, got {n_arms!r}")
        self.n_arms = int(n_arms)
        self.Q = np.full(self.n_arms, float(initial_value))
        self.N = np.zeros(self.n_arms, dtype=np.int64)
        self.t = 0

    def update(self, arm: int, reward: float) -> None:
        """Sample-average update ``Q[a] += (r - Q[a]) / N[a]``."""
        self.N[arm] += 1
        self.Q[arm] += (reward - self.Q[arm]) / self.N[arm]
        self.t += 1


class GreedyAgent(_Agent):
    """Always pulls an arm with the highest estimate (ties broken at random)."""

    name = "greedy"

    def select(self, rng: np.random.Generator) -> int:
        return _argmax_random(self.Q, rng)


class EpsilonGreedyAgent(_Agent):
    """With probability ``epsilon(t)`` a uniformly random arm, else the greedy one.

    ``epsilon`` is a number or a schedule ``t -> epsilon`` (see :func:`linear_schedule`).
    """

    name = "epsilon-greedy"

    def __init__(self, n_arms: int, epsilon=0.1, initial_value: float = 0.0):
        super().__init__(n_arms, initial_value)
        self.schedule = epsilon if callable(epsilon) else constant_schedule(epsilon)

    def select(self, rng: np.random.Generator) -> int:
        if rng.random() < self.schedule(self.t):
            return int(rng.integers(self.n_arms))
        return _argmax_random(self.Q, rng)


def ucb_scores(Q, N, t: int, c: float = 2.0) -> np.ndarray:
    """UCB1 scores ``Q + c * sqrt(ln(t) / N)``; arms never pulled score ``+inf``.

    Q, N : (K,) estimates and pull counts; t : total pulls so far (>= 1 once any arm was pulled).
    """
    Q = np.asarray(Q, dtype=np.float64)
    N = np.asarray(N, dtype=np.float64)
    if Q.shape != N.shape or Q.ndim != 1:
        raise ValueError(f"Q and N must be 1-D of equal length, got {Q.shape} and {N.shape}")
    if c < 0:
        raise ValueError(f"c must be >= 0, got {c}")
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(np.log(max(int(t), 1)) / N)
    return np.where(N > 0, Q + bonus, np.inf)


class UCBAgent(_Agent):
    """UCB1: pull every arm once, then the arm maximising :func:`ucb_scores`."""

    name = "UCB"

    def __init__(self, n_arms: int, c: float = 2.0):
        super().__init__(n_arms)
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = float(c)

    def select(self, rng: np.random.Generator) -> int:
        return _argmax_random(ucb_scores(self.Q, self.N, self.t, self.c), rng)


class ThompsonAgent(_Agent):
    """Thompson sampling: draw a mean for each arm from its posterior, pull the largest.

    ``prior="beta"`` (Bernoulli rewards, Beta(1, 1) prior) or ``"gaussian"`` (Gaussian rewards of
    known ``sd``, flat prior: posterior ``N(Q[a], sd^2 / N[a])``, unpulled arms drawn first).
    """

    name = "Thompson"

    def __init__(self, n_arms: int, prior: str = "beta", sd: float = 1.0):
        super().__init__(n_arms)
        if prior not in ("beta", "gaussian"):
            raise ValueError(f"prior must be 'beta' or 'gaussian', got {prior!r}")
        self.prior, self.sd = prior, float(sd)
        self.successes = np.zeros(self.n_arms)

    def update(self, arm: int, reward: float) -> None:
        if self.prior == "beta" and reward not in (0.0, 1.0):
            raise ValueError(f"the Beta prior needs 0/1 rewards, got {reward}")
        self.successes[arm] += reward
        super().update(arm, reward)

    def select(self, rng: np.random.Generator) -> int:
        if self.prior == "beta":
            draws = rng.beta(1.0 + self.successes, 1.0 + self.N - self.successes)
        else:
            if np.any(self.N == 0):
                return int(np.flatnonzero(self.N == 0)[0])
            draws = self.Q + self.sd / np.sqrt(self.N) * rng.standard_normal(self.n_arms)
        return _argmax_random(draws, rng)


class LinearEpsilonGreedy:
    """Contextual epsilon-greedy: one ridge regression ``r ~ theta_a . x`` per arm.

    ``select(x, rng)`` takes a context vector of length ``dim``; ``update(x, arm, reward)``.
    """

    name = "linear epsilon-greedy"

    def __init__(self, n_arms: int, dim: int, epsilon=0.1, ridge: float = 1.0):
        if n_arms < 2 or dim < 1 or ridge <= 0:
            raise ValueError("need n_arms >= 2, dim >= 1 and ridge > 0")
        self.n_arms, self.dim = int(n_arms), int(dim)
        self.A = np.stack([ridge * np.eye(dim)] * n_arms)
        self.b = np.zeros((n_arms, dim))
        self.schedule = epsilon if callable(epsilon) else constant_schedule(epsilon)
        self.t = 0

    def predict(self, x) -> np.ndarray:
        """Predicted reward of each arm for context ``x``, shape (n_arms,)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"context must have shape ({self.dim},), got {x.shape}")
        theta = np.linalg.solve(self.A, self.b[..., None])[..., 0]
        return theta @ x

    def select(self, x, rng: np.random.Generator) -> int:
        if rng.random() < self.schedule(self.t):
            return int(rng.integers(self.n_arms))
        return _argmax_random(self.predict(x), rng)

    def update(self, x, arm: int, reward: float) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.A[arm] += np.outer(x, x)
        self.b[arm] += reward * x
        self.t += 1


# ---------------------------------------------------------------- running and regret


@dataclasses.dataclass
class BanditRun:
    """One run: arms pulled (T,), rewards (T,), cumulative pseudo-regret (T,)."""

    arms: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray


def run_bandit(agent, bandit, steps: int, seed: int) -> BanditRun:
    """Play ``steps`` rounds; regret is ``cumsum(best_mean - means[arm_t])`` (pseudo-regret)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if agent.n_arms != bandit.n_arms:
        raise ValueError(f"the agent has {agent.n_arms} arms, the bandit {bandit.n_arms}")
    rng = np.random.default_rng(seed)
    arms = np.empty(steps, dtype=np.int64)
    rewards = np.empty(steps)
    for t in range(steps):
        a = agent.select(rng)
        r = bandit.pull(a, rng)
        agent.update(a, r)
        arms[t], rewards[t] = a, r
    regret = np.cumsum(bandit.best_mean - bandit.means[arms])
    return BanditRun(arms, rewards, regret)


def regret_curves(make_agent: Callable[[], object], bandit, steps: int, seeds) -> np.ndarray:
    """Cumulative regret of a fresh agent per seed, shape (len(seeds), steps)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    return np.stack([run_bandit(make_agent(), bandit, steps, s).regret for s in seeds])


__all__ = ["BernoulliBandit", "GaussianBandit", "constant_schedule", "linear_schedule",
           "exponential_schedule", "GreedyAgent", "EpsilonGreedyAgent", "UCBAgent", "ThompsonAgent",
           "LinearEpsilonGreedy", "ucb_scores", "BanditRun", "run_bandit", "regret_curves"]
