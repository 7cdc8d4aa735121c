"""Exact tabular tools: MDP tables from gymnasium toy-text environments, policy evaluation by a
linear solve, Q from V, policy iteration, value iteration, and exhaustive trajectory enumeration.

Tables (:class:`TabularMDP`) handle episode ends without an explicit absorbing state: ``P[s, a, s']``
is the probability of moving to ``s'`` **and continuing**; a transition that ends the episode
(``done`` in the toy-text table) contributes its reward to ``R[s, a]`` and its probability to
``P_end[s, a]``, never to ``P``. So ``P[s, a].sum() + P_end[s, a] == 1`` and the Bellman equation
``V = R_pi + gamma * P_pi V`` needs no special case for terminals, also with ``gamma = 1``.

:class:`FiniteMDP` is the same table run for a fixed number of steps with its discount (no step
ends the episode): the setting in which :mod:`lib.rl.policy_gradient` computes the
policy-gradient theorem exactly.

Book: seed-37, seed-44, seed-45 (values and Bellman equations), seed-40, seed-50 (dynamic
programming), seed-33, seed-34, seed-35, seed-36, seed-41, seed-42, seed-43, seed-46, seed-47,
seed-48, seed-49 (the exact values the basics check against), seed-58, seed-59, seed-60 (imitation
and IRL), seed-2-1, seed-55 (the finite-horizon MDP of the policy-gradient checks).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .returns import check_gamma


@dataclasses.dataclass(frozen=True)
class TabularMDP:
    """A finite MDP as arrays.

    P : (S, A, S) probability of reaching ``s'`` without the episode ending.
    R : (S, A) expected immediate reward.
    P_end : (S, A) probability that the step ends the episode (default: never, all 0).
    terminal : (S,) bool, states only ever entered by an episode-ending step (their rows are 0);
        default: none.
    start : (S,) initial-state distribution (default: uniform).
    """

    P: np.ndarray
    R: np.ndarray
    P_end: np.ndarray | None = None
    terminal: np.ndarray | None = None
    start: np.ndarray | None = None

    def __post_init__(self):
        P = np.asarray(self.P, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
        S, A, _ = P.shape
        R = np.asarray(self.R, dtype=np.float64)
        P_end = np.zeros((S, A)) if self.P_end is None else np.asarray(self.P_end, dtype=np.float64)
        terminal = np.zeros(S, bool) if self.terminal is None else np.asarray(self.terminal, dtype=bool)
        start = np.full(S, 1.0 / S) if self.start is None else np.asarray(self.start, dtype=np.float64)
        for name, arr, shape in (("R", R, (S, A)), ("P_end", P_end, (S, A)), ("terminal", terminal, (S,)),
                                 ("start", start, (S,))):
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        if np.any(P < 0) or np.any(P_end < 0) or not np.allclose(P.sum(-1) + P_end, 1.0):
            raise ValueError("for every (s, a), P[s, a].sum() + P_end[s, a] must be 1 (a probability distribution)")
        if np.any(start < 0) or not np.isclose(start.sum(), 1.0):
            raise ValueError("start must be a probability distribution over states")
        for name, arr in (("P", P), ("R", R), ("P_end", P_end), ("terminal", terminal), ("start", start)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


@dataclasses.dataclass(frozen=True)
class FiniteMDP(TabularMDP):
    """A :class:`TabularMDP` run for exactly ``horizon`` steps with discount ``gamma``.

    No step ends the episode (``P_end`` is 0, every ``P[s, a]`` a distribution); the return is
    ``sum_{t < horizon} gamma^t r_t``. Build it with keywords:
    ``FiniteMDP(P, R, start=mu0, horizon=4, gamma=0.9)``.
    """

    horizon: int | None = None
    gamma: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if np.any(self.P_end != 0):
            raise ValueError("a FiniteMDP runs exactly `horizon` steps: P_end must be 0 (each P[s, a] "
                             "a probability distribution over next states)")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer)) \
                or self.horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {self.horizon!r}")
        object.__setattr__(self, "horizon", int(self.horizon))
        object.__setattr__(self, "gamma", check_gamma(self.gamma))


def _discrete_n(space, what: str) -> int:
    from gymnasium import spaces

    if not isinstance(space, spaces.Discrete):
        raise TypeError(f"tabular methods need a Discrete {what} space, got {space!r}")
    if int(space.start) != 0:
        raise ValueError(f"the {what} space must start at 0, got start={space.start}")
    return int(space.n)


def from_toy_text(P: dict, n_states: int, n_actions: int, start=None) -> TabularMDP:
    """Build a :class:`TabularMDP` from a toy-text table ``P[s][a] = [(p, s', r, done), …]``."""
    Pm = np.zeros((n_states, n_actions, n_states))
    R = np.zeros((n_states, n_actions))
    P_end = np.zeros((n_states, n_actions))
    entered_done = np.zeros(n_states, dtype=bool)
    entered_cont = np.zeros(n_states, dtype=bool)
    if set(P) != set(range(n_states)):
        raise ValueError(f"the table must have an entry for each of the {n_states} states")
    for s in range(n_states):
        if set(P[s]) != set(range(n_actions)):
            raise ValueError(f"state {s}: the table must list each of the {n_actions} actions")
        for a in range(n_actions):
            for p, s2, r, done in P[s][a]:
                s2 = int(s2)
                if not 0 <= s2 < n_states:
                    raise ValueError(f"state {s}, action {a}: next state {s2} out of range")
                R[s, a] += p * r
                if done:
                    P_end[s, a] += p
                    entered_done[s2] |= p > 0
                else:
                    Pm[s, a, s2] += p
                    entered_cont[s2] |= p > 0
    st = np.full(n_states, 1.0 / n_states) if start is None else np.asarray(start, dtype=np.float64)
    # a terminal state is entered only by episode-ending steps and is not a start state
    terminal = entered_done & ~entered_cont & (st <= 0)
    Pm[terminal] = 0.0
    R[terminal] = 0.0
    P_end[terminal] = 1.0
    return TabularMDP(Pm, R, P_end, terminal, st)


def from_env(env) -> TabularMDP:
    """Exact tables of a gymnasium toy-text environment (FrozenLake, CliffWalking, Taxi, the book's).

    ``env`` may be wrapped (``gymnasium.make``); its ``unwrapped`` must expose ``P`` and have
    Discrete observation and action spaces. Raises ``TypeError`` for other spaces and
    ``ValueError`` when the environment has no transition table.
    """
    base = getattr(env, "unwrapped", env)
    S = _discrete_n(env.observation_space, "observation")
    A = _discrete_n(env.action_space, "action")
    table = getattr(base, "P", None)
    if not isinstance(table, dict):
        raise ValueError(f"{type(base).__name__} exposes no toy-text transition table `P`")
    start = getattr(base, "initial_state_distrib", None)
    return from_toy_text(table, S, A, start)


def policy_matrix(policy, n_states: int, n_actions: int) -> np.ndarray:
    """A policy as an (S, A) matrix of probabilities; accepts an (S,) array of actions too."""
    pi = np.asarray(policy)
    if pi.ndim == 1:
        if pi.shape != (n_states,):
            raise ValueError(f"a deterministic policy must have shape ({n_states},), got {pi.shape}")
        if not np.issubdtype(pi.dtype, np.integer) or np.any(pi < 0) or np.any(pi >= n_actions):
            raise ValueError(f"a deterministic policy must hold integer actions in [0, {n_actions})")
        out = np.zeros((n_states, n_actions))
        out[np.arange(n_states), pi] = 1.0
        return out
    if pi.shape != (n_states, n_actions):
        raise ValueError(f"policy must have shape ({n_states}, {n_actions}) or ({n_states},), got {pi.shape}")
    pi = pi.astype(np.float64)
    if np.any(pi < 0) or not np.allclose(pi.sum(-1), 1.0):
        raise ValueError("each row of the policy must be a probability distribution over actions")
    return pi


def _check_mdp(mdp):
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"expected a TabularMDP, got {type(mdp).__name__}")


def induced_chain(mdp: TabularMDP, policy) -> tuple[np.ndarray, np.ndarray]:
    """``(P_pi, R_pi)``: the Markov reward process a policy induces, shapes (S, S) and (S,)."""
    _check_mdp(mdp)
    pi = policy_matrix(policy, mdp.n_states, mdp.n_actions)
    return np.einsum("sa,sat->st", pi, mdp.P), np.einsum("sa,sa->s", pi, mdp.R)


def policy_evaluation(mdp: TabularMDP, policy, gamma: float) -> np.ndarray:
    """Exact ``V_pi`` (shape (S,)) by solving ``(I - gamma P_pi) V = R_pi``.

    Raises ``ValueError`` when the system is singular (with ``gamma = 1``: the policy can loop
    forever without the episode ending, so its values are not finite).
    """
    _check_mdp(mdp)
    gamma = check_gamma(gamma)
    P_pi, R_pi = induced_chain(mdp, policy)
    A = np.eye(mdp.n_states) - gamma * P_pi
    if np.linalg.cond(A) > 1e12:
        raise ValueError("policy evaluation is singular: with this gamma the policy can run forever "
                         "without ending the episode (use gamma < 1 or a policy that terminates)")
    return np.linalg.solve(A, R_pi)


def q_from_v(mdp: TabularMDP, V, gamma: float) -> np.ndarray:
    """``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``, shape (S, A)."""
    _check_mdp(mdp)
    gamma = check_gamma(gamma)
    V = np.asarray(V, dtype=np.float64)
    if V.shape != (mdp.n_states,):
        raise ValueError(f"V must have shape ({mdp.n_states},), got {V.shape}")
    return mdp.R + gamma * mdp.P @ V


def v_from_q(Q, policy) -> np.ndarray:
    """``V[s] = sum_a pi(a|s) Q[s, a]``, shape (S,)."""
    Q = np.asarray(Q, dtype=np.float64)
    if Q.ndim != 2:
        raise ValueError(f"Q must have shape (S, A), got {Q.shape}")
    pi = policy_matrix(policy, *Q.shape)
    return np.sum(pi * Q, axis=1)


def greedy(Q, tol: float = 1e-9) -> np.ndarray:
    """Deterministic greedy policy (S,): the first action whose value is within ``tol`` of the best."""
    Q = np.asarray(Q, dtype=np.float64)
    if Q.ndim != 2:
        raise ValueError(f"Q must have shape (S, A), got {Q.shape}")
    return np.argmax(Q >= Q.max(axis=1, keepdims=True) - tol, axis=1)


@dataclasses.dataclass
class DPResult:
    """Result of a dynamic-programming solver.

    V (S,), Q (S, A), policy (S,) greedy actions, iterations (sweeps for VI, improvement steps
    for PI), deltas: max |V_new - V| per sweep (VI) or number of changed actions per step (PI).
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    iterations: int
    deltas: list


def value_iteration(mdp: TabularMDP, gamma: float, tol: float = 1e-10, max_iter: int = 100_000,
                    V0=None) -> DPResult:
    """Value iteration ``V <- max_a (R + gamma P V)`` until the largest change is below ``tol``."""
    _check_mdp(mdp)
    gamma = check_gamma(gamma)
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    V = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=np.float64)
    if V.shape != (mdp.n_states,):
        raise ValueError(f"V0 must have shape ({mdp.n_states},), got {V.shape}")
    deltas = []
    for it in range(1, max_iter + 1):
        Q = mdp.R + gamma * mdp.P @ V
        V_new = Q.max(axis=1)
        delta = float(np.max(np.abs(V_new - V)))
        deltas.append(delta)
        V = V_new
        if delta < tol:
            break
    else:
        raise RuntimeError(f"value iteration did not converge in {max_iter} sweeps (last change {delta:.3g})")
    Q = mdp.R + gamma * mdp.P @ V
    return DPResult(V, Q, greedy(Q), it, deltas)


def policy_iteration(mdp: TabularMDP, gamma: float, policy0=None, max_iter: int = 1000) -> DPResult:
    """Policy iteration: exact evaluation (linear solve) then greedy improvement, until stable.

    ``policy0`` (default: uniform random) must have finite values under ``gamma``. Improvement
    keeps the current action unless another is better by more than 1e-12, so the loop stops.
    ``deltas`` counts the states whose action changed in each round (the first round counts all
    states when ``policy0`` is stochastic).
    """
    _check_mdp(mdp)
    gamma = check_gamma(gamma)
    pi = (np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions) if policy0 is None
          else policy_matrix(policy0, mdp.n_states, mdp.n_actions))
    current = None
    if policy0 is not None and np.asarray(policy0).ndim == 1:
        current = np.asarray(policy0).astype(np.int64)  # deterministic start: count changes from it
    changes = []
    for it in range(1, max_iter + 1):
        V = policy_evaluation(mdp, pi, gamma)
        Q = q_from_v(mdp, V, gamma)
        new = greedy(Q, tol=1e-12)
        if current is not None:
            keep = Q[np.arange(mdp.n_states), current] >= Q.max(axis=1) - 1e-12
            new = np.where(keep, current, new)
            n_changed = int(np.sum(new != current))
        else:
            n_changed = mdp.n_states
        changes.append(n_changed)
        if current is not None and n_changed == 0:
            return DPResult(V, Q, current, it, changes)
        current = new
        pi = policy_matrix(current, mdp.n_states, mdp.n_actions)
    raise RuntimeError(f"policy iteration did not stabilise in {max_iter} steps")


def iterative_policy_evaluation(mdp: TabularMDP, policy, gamma: float, sweeps: int, V0=None) -> np.ndarray:
    """``sweeps`` synchronous Bellman expectation backups from ``V0`` (default 0).

    Returns the value after every sweep, shape (sweeps + 1, S) (row 0 is ``V0``).
    """
    _check_mdp(mdp)
    gamma = check_gamma(gamma)
    if sweeps < 0:
        raise ValueError(f"sweeps must be >= 0, got {sweeps}")
    P_pi, R_pi = induced_chain(mdp, policy)
    V = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=np.float64)
    out = [V]
    for _ in range(sweeps):
        V = R_pi + gamma * P_pi @ V
        out.append(V)
    return np.array(out)


@dataclasses.dataclass
class TreeResult:
    """Exhaustive expansion of every trajectory from one state.

    value: probability-weighted return (the depth-limited value); probs, returns: one entry per
    leaf trajectory; lengths: steps in each; nodes: tree nodes expanded (the search's cost).
    """

    value: float
    probs: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    nodes: int


def enumerate_trajectories(env, policy, state: int, gamma: float, max_depth: int,
                           max_leaves: int = 1_000_000) -> TreeResult:
    """Expand every trajectory of ``policy`` from ``state`` for up to ``max_depth`` steps.

    ``env`` is a toy-text environment (or its table ``P[s][a] = [(p, s', r, done), …]``); the
    per-outcome rewards are kept, so the leaves give the exact distribution of returns. A branch
    stops when its episode ends or at ``max_depth`` (its return then just stops: the
    depth-limited value bootstraps with 0). The probability-weighted mean of the returns equals
    ``V_pi(state)`` exactly when every trajectory ends within ``max_depth`` steps.
    """
    gamma = check_gamma(gamma)
    table = env if isinstance(env, dict) else getattr(getattr(env, "unwrapped", env), "P", None)
    if not isinstance(table, dict):
        raise ValueError("env must be a toy-text environment with a transition table `P` (or the table)")
    n_states = len(table)
    n_actions = len(table[0])
    pi = policy_matrix(policy, n_states, n_actions)
    if not 0 <= int(state) < n_states:
        raise ValueError(f"state must be in [0, {n_states}), got {state}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, (int, np.integer)) or max_depth < 0:
        raise ValueError(f"max_depth must be an integer >= 0, got {max_depth!r}")
    probs, rets, lens = [], [], []
    nodes = 0
    stack = [(int(state), 1.0, 0.0, 1.0, 0, False)]  # (state, prob, return, discount, depth, ended)
    while stack:
        s, p, g, disc, d, ended = stack.pop()
        nodes += 1
        if ended or d == max_depth:
            probs.append(p)
            rets.append(g)
            lens.append(d)
            if len(probs) > max_leaves:
                raise ValueError(f"more than {max_leaves} trajectories: lower max_depth")
            continue
        for a in np.flatnonzero(pi[s] > 0)[::-1]:
            for prob, s2, r, done in reversed(table[s][int(a)]):
                if prob > 0:
                    stack.append((int(s2), p * pi[s, a] * prob, g + disc * r, disc * gamma, d + 1, bool(done)))
    probs, rets = np.array(probs), np.array(rets)
    return TreeResult(float(probs @ rets), probs, rets, np.array(lens), nodes)


__all__ = ["TabularMDP", "FiniteMDP", "from_toy_text", "from_env", "policy_matrix", "induced_chain", "policy_evaluation",
           "q_from_v", "v_from_q", "greedy", "DPResult", "value_iteration", "policy_iteration",
           "iterative_policy_evaluation", "TreeResult", "enumerate_trajectories"]
