"""Model-free prediction and control on tabular problems: Monte Carlo, TD(0), n-step TD,
SARSA, Expected SARSA, Q-learning, and offline Q-learning from a fixed logged dataset.

Prediction works on a fixed list of :class:`Episode` (so several methods can learn from the same
experience, and exact identities such as "n-step TD with n = 1 is TD(0)" can be tested bit for
bit). Every prediction function returns a :class:`PredictionResult` with the value after every
episode. Control functions interact with a gymnasium environment with Discrete observation and
action spaces and return a :class:`ControlResult`.

Conventions: values of terminal states stay at 0 (they are never updated, and bootstrapping from
a step with ``terminated`` uses 0); a step cut by ``truncated`` bootstraps from the next state.

Book: seed-38, seed-39, seed-40, seed-46, seed-47, seed-48, seed-49, seed-50
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from .returns import check_gamma, discounted_returns


class Episode(NamedTuple):
    """One episode: ``states`` (T+1,) including the final state, ``actions`` (T,), ``rewards`` (T,),
    ``terminated``: whether the last step ended the episode (False when it was cut)."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


@dataclasses.dataclass
class PredictionResult:
    """V (S,) after the last episode; history (E + 1, S): V before the first and after each episode
    (only the first and last rows, shape (2, S), when called with ``record=False``);
    trace: per-step records (TD(0) with ``trace=True`` only): dict of arrays
    ``episode, state, reward, next_state, target, td_error``."""

    V: np.ndarray
    history: np.ndarray
    trace: dict | None = None


def _check_space(space, what):
    from gymnasium import spaces

    if not isinstance(space, spaces.Discrete) or int(space.start) != 0:
        raise TypeError(f"tabular methods need a Discrete {what} space starting at 0, got {space!r}")
    return int(space.n)


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) or not 0 < alpha <= 1:
        raise ValueError(f"alpha (step size) must be in (0, 1], got {alpha!r}")
    return float(alpha)


def _policy_fn(policy, n_actions):
    """Turn an (S, A) matrix, an (S,) action array or a callable into ``fn(state, rng) -> action``."""
    if callable(policy):
        return policy
    pi = np.asarray(policy)
    if pi.ndim == 1:
        return lambda s, rng: int(pi[s])
    if pi.ndim == 2 and pi.shape[1] == n_actions:
        if np.any(pi < 0) or not np.allclose(pi.sum(1), 1):
            raise ValueError("policy rows must be probability distributions")
        cdf = np.cumsum(pi, axis=1)
        cdf[:, -1] = 1.0
        return lambda s, rng: int(np.searchsorted(cdf[s], rng.random(), side="right"))
    raise ValueError(f"policy must be callable, (S,) actions or (S, {n_actions}) probabilities, got {pi.shape}")


def generate_episodes(env, policy, n_episodes: int, seed: int, max_steps: int = 10_000) -> list[Episode]:
    """Roll out ``n_episodes`` with ``policy`` (matrix, action array or ``fn(state, rng)``).

    Episode ``i`` resets the environment with seed ``seed + i``; the policy's randomness comes from
    one generator seeded with ``seed``. An episode is cut after ``max_steps`` steps.
    """
    _check_space(env.observation_space, "observation")
    n_actions = _check_space(env.action_space, "action")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    act = _policy_fn(policy, n_actions)
    rng = np.random.default_rng([int(seed), 0xA6E7])  # independent of the env's seeds
    out = []
    for i in range(n_episodes):
        s, _ = env.reset(seed=seed + i)
        states, actions, rewards = [int(s)], [], []
        terminated = False
        for _ in range(max_steps):
            a = act(int(s), rng)
            s, r, terminated, truncated, _ = env.step(a)
            states.append(int(s)), actions.append(int(a)), rewards.append(float(r))
            if terminated or truncated:
                break
        out.append(Episode(np.array(states), np.array(actions, dtype=np.int64), np.array(rewards),
                           bool(terminated)))
    return out


def _check_episodes(episodes, n_states):
    if isinstance(episodes, Episode) or not isinstance(episodes, Sequence) or len(episodes) == 0:
        raise TypeError("episodes must be a non-empty list of Episode")
    for ep in episodes:
        if not isinstance(ep, Episode):
            raise TypeError(f"episodes must hold Episode tuples, got {type(ep).__name__}")
        T = len(ep.rewards)
        if len(ep.states) != T + 1 or len(ep.actions) != T:
            raise ValueError(f"an episode needs T+1 states and T actions for T rewards, got "
                             f"{len(ep.states)}, {len(ep.actions)}, {T}")
        if T and (ep.states.min() < 0 or ep.states.max() >= n_states):
            raise ValueError(f"states must lie in [0, {n_states})")


def _init_v(v0, n_states, terminal):
    V = np.full(n_states, float(v0)) if np.isscalar(v0) else np.array(v0, dtype=np.float64)
    if V.shape != (n_states,):
        raise ValueError(f"v0 must be a scalar or shape ({n_states},), got {V.shape}")
    if terminal is not None:
        V[np.asarray(terminal, dtype=bool)] = 0.0
    return V


def mc_prediction(episodes, n_states: int, gamma: float = 1.0, alpha: float | None = None,
                  first_visit: bool = True, v0=0.0, terminal=None, record: bool = True) -> PredictionResult:
    """Monte Carlo prediction: move ``V(S_t)`` towards the return ``G_t`` after each episode.

    ``alpha=None`` averages the returns (sample mean per state); a number gives constant-alpha MC
    ``V(S_t) += alpha (G_t - V(S_t))``, applied for t = 0, 1, … in time order. ``first_visit``
    uses only the first visit of a state in an episode; otherwise every visit.
    ``terminal`` (optional bool mask (S,)) states are held at 0.
    """
    gamma = check_gamma(gamma)
    _check_episodes(episodes, n_states)
    if alpha is not None:
        alpha = _check_alpha(alpha)
    V = _init_v(v0, n_states, terminal)
    counts = np.zeros(n_states)
    hist = [V.copy()]
    for ep in episodes:
        T = len(ep.rewards)
        if T:
            G = discounted_returns(ep.rewards, gamma)
            seen = set()
            for t in range(T):
                s = int(ep.states[t])
                if first_visit:
                    if s in seen:
                        continue
                    seen.add(s)
                if alpha is None:
                    counts[s] += 1
                    V[s] += (G[t] - V[s]) / counts[s]
                else:
                    V[s] += alpha * (G[t] - V[s])
        if record:
            hist.append(V.copy())
    if not record:
        hist.append(V.copy())
    return PredictionResult(V, np.array(hist))


def td0_prediction(episodes, n_states: int, gamma: float, alpha: float, v0=0.0, terminal=None,
                   trace: bool = False, record: bool = True) -> PredictionResult:
    """TD(0): after each step ``V(S) += alpha (R + gamma V(S') - V(S))`` (``V(S') = 0`` on termination).

    TD target ``R + gamma V(S')``; TD error ``delta = target - V(S)``. With ``trace=True`` every
    step's (state, reward, next_state, target, td_error) is recorded.
    """
    gamma = check_gamma(gamma)
    alpha = _check_alpha(alpha)
    _check_episodes(episodes, n_states)
    V = _init_v(v0, n_states, terminal)
    hist = [V.copy()]
    rec = {k: [] for k in ("episode", "state", "reward", "next_state", "target", "td_error")} if trace else None
    for e, ep in enumerate(episodes):
        T = len(ep.rewards)
        for t in range(T):
            s, s2, r = int(ep.states[t]), int(ep.states[t + 1]), ep.rewards[t]
            end = ep.terminated and t == T - 1
            target = r if end else r + gamma * V[s2]
            delta = target - V[s]
            V[s] += alpha * delta
            if rec is not None:
                for k, v in zip(rec, (e, s, r, s2, target, delta)):
                    rec[k].append(v)
        if record:
            hist.append(V.copy())
    tr = {k: np.array(v) for k, v in rec.items()} if rec is not None else None
    if not record:
        hist.append(V.copy())
    return PredictionResult(V, np.array(hist), tr)


def nstep_td_prediction(episodes, n_states: int, n: int, gamma: float, alpha: float, v0=0.0,
                        terminal=None, record: bool = True) -> PredictionResult:
    """n-step TD (online): ``V(S_tau) += alpha (G_{tau:tau+n} - V(S_tau))`` once ``R_{tau+n}`` is known.

    ``G_{tau:tau+n} = R_{tau+1} + … + gamma^{n-1} R_{tau+n} + gamma^n V(S_{tau+n})`` (no bootstrap
    past the episode's end). The sum is accumulated backwards exactly like
    :func:`lib.rl.returns.discounted_returns`, so n = 1 reproduces :func:`td0_prediction` and n >=
    episode length reproduces every-visit constant-alpha :func:`mc_prediction` bit for bit.
    """
    gamma = check_gamma(gamma)
    alpha = _check_alpha(alpha)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    _check_episodes(episodes, n_states)
    V = _init_v(v0, n_states, terminal)
    hist = [V.copy()]
    for ep in episodes:
        T = len(ep.rewards)
        for tau in range(T):  # the update for S_tau happens at step tau + n (or at the end)
            end = min(tau + n, T)
            if end < T or not ep.terminated:
                g = V[int(ep.states[end])]  # bootstrap (also when the episode was cut)
            else:
                g = 0.0
            for i in range(end - 1, tau - 1, -1):
                g = ep.rewards[i] + gamma * g
            s = int(ep.states[tau])
            V[s] += alpha * (g - V[s])
        if record:
            hist.append(V.copy())
    if not record:
        hist.append(V.copy())
    return PredictionResult(V, np.array(hist))


def rms_error(history, true_values, states=None) -> np.ndarray:
    """Root-mean-square error of each row of ``history`` against ``true_values`` (over ``states``)."""
    h = np.asarray(history, dtype=np.float64)
    v = np.asarray(true_values, dtype=np.float64)
    if states is not None:
        h, v = h[..., states], v[states]
    if h.shape[-1] != v.shape[-1]:
        raise ValueError(f"history has {h.shape[-1]} states, true_values {v.shape[-1]}")
    return np.sqrt(np.mean((h - v) ** 2, axis=-1))


# ---------------------------------------------------------------- control


def epsilon_greedy_probs(q_row, epsilon: float) -> np.ndarray:
    """Action probabilities of epsilon-greedy: ``epsilon/A`` each, plus ``1 - epsilon`` shared by
    the greedy actions (ties split equally). Shape (A,)."""
    q = np.asarray(q_row, dtype=np.float64)
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"q_row must be a non-empty 1-D array, got shape {q.shape}")
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    best = q == q.max()
    return epsilon / q.size + (1 - epsilon) * best / best.sum()


def epsilon_greedy_action(q_row, epsilon: float, rng: np.random.Generator) -> int:
    """Sample from :func:`epsilon_greedy_probs`: a uniformly random action with probability
    ``epsilon``, else a greedy one (ties broken uniformly at random). The one epsilon-greedy
    sampler of the tabular methods (TD control here, Dyna-Q, feudal Q-learning)."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0]) if best.size == 1 else int(best[rng.integers(best.size)])


def check_control_args(n_episodes, alpha, gamma, epsilon) -> float:
    """Validate the arguments every tabular control loop takes; returns ``gamma`` as a float.

    ``n_episodes`` a positive integer, ``alpha`` (step size) in (0, 1], ``epsilon`` in [0, 1],
    ``gamma`` in [0, 1]."""
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    _check_alpha(alpha)
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    return check_gamma(gamma)


@dataclasses.dataclass
class ControlResult:
    """Q (S, A) after training; returns, lengths (E,) per training episode; epsilons (E,) used."""

    Q: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    epsilons: np.ndarray


def td_control(kind: str, env, n_episodes: int, alpha: float, gamma: float, epsilon, seed: int = 0,
               max_steps: int = 10_000, q0: float = 0.0) -> ControlResult:
    """The one loop of tabular TD control; ``kind`` picks the target of ``Q(S, A)``:
    ``"sarsa"`` ``R + gamma Q(S', A')``, ``"q"`` ``R + gamma max_a Q(S', a)``, ``"expected"``
    ``R + gamma sum_a pi(a|S') Q(S', a)`` (pi epsilon-greedy); 0 after a terminal step.
    :func:`sarsa`, :func:`q_learning` and :func:`expected_sarsa` call it."""
    if kind not in ("sarsa", "q", "expected"):
        raise ValueError(f"kind must be 'sarsa', 'q' or 'expected', got {kind!r}")
    gamma = check_gamma(gamma)
    alpha = _check_alpha(alpha)
    S = _check_space(env.observation_space, "observation")
    A = _check_space(env.action_space, "action")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    sched = epsilon if callable(epsilon) else (lambda e, _x=float(epsilon): _x)
    rng = np.random.default_rng([int(seed), 0xA6E7])  # independent of the env's seeds
    Q = np.full((S, A), float(q0))
    rets, lens, eps_used = np.zeros(n_episodes), np.zeros(n_episodes, dtype=np.int64), np.zeros(n_episodes)
    for e in range(n_episodes):
        eps = float(sched(e))
        if not 0 <= eps <= 1:
            raise ValueError(f"epsilon schedule gave {eps} at episode {e}; expected [0, 1]")
        eps_used[e] = eps
        s, _ = env.reset(seed=seed * 100_003 + e)
        a = epsilon_greedy_action(Q[s], eps, rng)
        total, t = 0.0, 0
        for t in range(1, max_steps + 1):
            s2, r, term, trunc, _ = env.step(a)
            total += r
            a2 = epsilon_greedy_action(Q[s2], eps, rng)
            if term:
                target = r
            elif kind == "sarsa":
                target = r + gamma * Q[s2, a2]
            elif kind == "q":
                target = r + gamma * Q[s2].max()
            else:  # expected sarsa
                target = r + gamma * epsilon_greedy_probs(Q[s2], eps) @ Q[s2]
            Q[s, a] += alpha * (target - Q[s, a])
            s, a = s2, a2
            if term or trunc:
                break
        rets[e], lens[e] = total, t
    return ControlResult(Q, rets, lens, eps_used)


def sarsa(env, n_episodes: int, alpha: float = 0.5, gamma: float = 1.0, epsilon=0.1, seed: int = 0,
          max_steps: int = 10_000, q0: float = 0.0) -> ControlResult:
    """On-policy TD control: ``Q(S,A) += alpha (R + gamma Q(S',A') - Q(S,A))``, ``A'`` the action taken next.

    ``epsilon`` is a number or a schedule ``episode -> epsilon``. Episode ``e`` resets with seed
    ``seed * 100003 + e``; exploration draws from one generator seeded with ``seed``.
    """
    return td_control("sarsa", env, n_episodes, alpha, gamma, epsilon, seed, max_steps, q0)


def expected_sarsa(env, n_episodes: int, alpha: float = 0.5, gamma: float = 1.0, epsilon=0.1, seed: int = 0,
                   max_steps: int = 10_000, q0: float = 0.0) -> ControlResult:
    """Expected SARSA: the target averages ``Q(S', .)`` under the epsilon-greedy policy."""
    return td_control("expected", env, n_episodes, alpha, gamma, epsilon, seed, max_steps, q0)


def q_learning(env, n_episodes: int, alpha: float = 0.5, gamma: float = 1.0, epsilon=0.1, seed: int = 0,
               max_steps: int = 10_000, q0: float = 0.0) -> ControlResult:
    """Off-policy TD control: ``Q(S,A) += alpha (R + gamma max_a Q(S',a) - Q(S,A))`` (Watkins)."""
    return td_control("q", env, n_episodes, alpha, gamma, epsilon, seed, max_steps, q0)


# ---------------------------------------------------------------- offline (batch) RL


@dataclasses.dataclass
class Transitions:
    """A logged dataset of transitions, arrays of length N: s, a, r, s2, terminated."""

    s: np.ndarray
    a: np.ndarray
    r: np.ndarray
    s2: np.ndarray
    terminated: np.ndarray

    def __len__(self) -> int:
        return len(self.s)


def collect_transitions(env, policy, n_episodes: int, seed: int, max_steps: int = 10_000) -> Transitions:
    """Log the transitions of ``n_episodes`` of a behaviour ``policy`` (see :func:`generate_episodes`)."""
    eps = generate_episodes(env, policy, n_episodes, seed, max_steps)
    s, a, r, s2, d = [], [], [], [], []
    for ep in eps:
        T = len(ep.rewards)
        s.append(ep.states[:-1]), a.append(ep.actions), r.append(ep.rewards), s2.append(ep.states[1:])
        done = np.zeros(T, dtype=bool)
        if T and ep.terminated:
            done[-1] = True
        d.append(done)
    return Transitions(*(np.concatenate(x) for x in (s, a, r, s2, d)))


def offline_q_learning(data: Transitions, n_states: int, n_actions: int, gamma: float = 1.0,
                       alpha: float = 0.5, sweeps: int = 50, seed: int = 0, q0: float = 0.0):
    """Q-learning that never touches an environment: ``sweeps`` passes over the fixed ``data`` in a
    shuffled order, each applying ``Q(s,a) += alpha (r + gamma max Q(s2,.) - Q(s,a))``.

    Returns ``(Q, counts)``: Q (S, A) and how often each (s, a) occurs in the data (pairs never
    logged keep ``q0`` — offline RL cannot learn about them).
    """
    if not isinstance(data, Transitions):
        raise TypeError(f"data must be Transitions, got {type(data).__name__}")
    gamma = check_gamma(gamma)
    alpha = _check_alpha(alpha)
    if len(data) == 0:
        raise ValueError("the dataset is empty")
    if data.s.max() >= n_states or data.s2.max() >= n_states or data.a.max() >= n_actions:
        raise ValueError("the dataset holds states or actions outside the given sizes")
    rng = np.random.default_rng(seed)
    Q = np.full((n_states, n_actions), float(q0))
    counts = np.zeros((n_states, n_actions), dtype=np.int64)
    np.add.at(counts, (data.s, data.a), 1)
    for _ in range(sweeps):
        for i in rng.permutation(len(data)):
            s, a = data.s[i], data.a[i]
            target = data.r[i] if data.terminated[i] else data.r[i] + gamma * Q[data.s2[i]].max()
            Q[s, a] += alpha * (target - Q[s, a])
    return Q, counts


__all__ = ["Episode", "PredictionResult", "generate_episodes", "mc_prediction", "td0_prediction",
           "nstep_td_prediction", "rms_error", "epsilon_greedy_probs", "epsilon_greedy_action",
           "check_control_args", "td_control",
           "ControlResult", "sarsa", "expected_sarsa", "q_learning", "Transitions", "collect_transitions",
           "offline_q_learning"]
