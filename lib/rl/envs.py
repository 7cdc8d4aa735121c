"""Small custom gymnasium environments for the RL-basics chapter, and a checked rollout loop.

* :class:`RandomWalkEnv` — the classic random walk (Sutton & Barto, Example 6.2): ``n`` non-terminal
  states in a row between two terminal ends, start in the middle, reward ``right_reward`` for
  leaving on the right. Under the uniform random policy the true values of the 5-state walk are
  1/6 … 5/6.
* :class:`TravelEnv` — the route-planning example of the seed's "fundamental concepts" diagram: a
  self-driving taxi takes a passenger from Home to the Airport through a small road network;
  each leg earns a passenger rating (the reward), traffic makes some legs stochastic.

Both expose the toy-text transition table ``env.unwrapped.P[s][a] = [(p, s', r, done), …]`` and
``initial_state_distrib`` like gymnasium's FrozenLake/CliffWalking/Taxi, so
:func:`lib.rl.tabular.from_env` turns them into exact tables. They are registered with gymnasium
as ``Book/RandomWalk-v0`` and ``Book/Travel-v0`` when this module is imported.

Two small environments of the deep-RL sections (observation vectors for a network):

* :class:`MaxBiasEnv` — Sutton & Barto's maximisation-bias MDP (Example 6.7) with a two-dimensional
  one-hot observation: the testbed of Double DQN's overestimation experiment.
* :class:`RiskyChain` — a short chain with a safe and a risky action per step, whose risky return
  is a many-peaked distribution: the testbed of C51.

:func:`rollout` runs the agent–environment loop on any gymnasium environment and checks the API
contract on every step (reset/step signatures, observations inside the space, boolean
``terminated``/``truncated``).

Book: seed-35, seed-36, seed-37, seed-40, seed-42, seed-46, seed-48, seed-53, seed-63
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class _TableEnv(gym.Env):
    """A discrete environment driven by a toy-text transition table ``P`` (subclasses fill it)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, P: dict, initial_state_distrib: np.ndarray, state_names: list[str],
                 action_names: list[str], render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.P = P
        self.initial_state_distrib = np.asarray(initial_state_distrib, dtype=np.float64)
        self.state_names = list(state_names)
        self.action_names = list(action_names)
        self.observation_space = spaces.Discrete(len(state_names))
        self.action_space = spaces.Discrete(len(action_names))
        self.render_mode = render_mode
        self.s = int(np.argmax(self.initial_state_distrib))
        self.lastaction: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(len(self.initial_state_distrib), p=self.initial_state_distrib))
        self.lastaction = None
        return self.s, {"prob": 1.0}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        outcomes = self.P[self.s][int(action)]
        probs = np.array([o[0] for o in outcomes])
        i = int(self.np_random.choice(len(outcomes), p=probs)) if len(outcomes) > 1 else 0
        p, s_next, r, done = outcomes[i]
        self.s = int(s_next)
        self.lastaction = int(action)
        return self.s, float(r), bool(done), False, {"prob": float(p)}

    def render(self):
        if self.render_mode == "ansi":
            last = "" if self.lastaction is None else f" (after {self.action_names[self.lastaction]})"
            return f"state {self.state_names[self.s]}{last}\n"
        return None


class RandomWalkEnv(_TableEnv):
    """A row of ``n_states`` non-terminal states between two terminal ends.

    Observations: ``0`` (left end), ``1 … n_states`` (the walk; the start is the middle one),
    ``n_states + 1`` (right end). Actions: ``0`` = left, ``1`` = right, each moving one cell.
    Leaving on the right pays ``right_reward`` (1), on the left ``left_reward`` (0); every other
    step pays 0. The "random walk" of the textbook is this environment under the uniform policy.
    """

    def __init__(self, n_states: int = 5, left_reward: float = 0.0, right_reward: float = 1.0,
                 render_mode: str | None = None):
        if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or n_states < 1:
            raise ValueError(f"n_states must be a positive integer, got {n_states!r}")
        n = int(n_states)
        self.n_states = n
        S = n + 2
        P: dict = {s: {} for s in range(S)}
        for s in range(S):
            for a, move in ((0, -1), (1, +1)):
                if s in (0, S - 1):  # terminal ends: absorbing, never stepped from in an episode
                    P[s][a] = [(1.0, s, 0.0, True)]
                    continue
                s2 = s + move
                done = s2 in (0, S - 1)
                r = float(right_reward) if s2 == S - 1 else (float(left_reward) if s2 == 0 else 0.0)
                P[s][a] = [(1.0, s2, r, done)]
        start = np.zeros(S)
        start[(S - 1) // 2] = 1.0  # the middle cell (the left-middle one for even n)
        names = ["L"] + [chr(ord("A") + i) if n <= 26 else str(i + 1) for i in range(n)] + ["R"]
        super().__init__(P, start, names, ["left", "right"], render_mode)

    def true_values(self) -> np.ndarray:
        """Exact values of the non-terminal states under the uniform random policy, shape (n,)."""
        from .tabular import from_env, policy_evaluation

        mdp = from_env(self)
        uniform = np.full((mdp.n_states, mdp.n_actions), 0.5)
        return policy_evaluation(mdp, uniform, gamma=1.0)[1:-1]


#: The road network of :class:`TravelEnv`: state -> action -> [(prob, next, rating, done)].
TRAVEL_STATES = ["Home", "Station", "Old town", "Bridge", "Park", "Airport"]
TRAVEL_ACTIONS = ["fast road", "scenic road"]
_TRAVEL_P = {
    0: {0: [(0.8, 1, 1.0, False), (0.2, 3, -2.0, False)],     # Home: ring road; a jam diverts to the Bridge
        1: [(1.0, 2, 2.0, False)]},                             #        avenue to the Old town
    1: {0: [(0.7, 5, 3.0, True), (0.3, 3, -1.0, False)],       # Station: express lane (sometimes closed)
        1: [(1.0, 4, 1.0, False)]},                             #          through the Park
    2: {0: [(0.5, 3, 0.0, False), (0.5, 4, 1.0, False)],       # Old town: narrow streets, either way out
        1: [(1.0, 4, 2.0, False)]},                             #           the river promenade
    3: {0: [(0.9, 5, 2.0, True), (0.1, 5, -4.0, True)],        # Bridge: motorway, rare accident delay
        1: [(1.0, 5, 1.0, True)]},
    4: {0: [(0.6, 5, 3.0, True), (0.4, 5, 0.0, True)],         # Park: shortcut, busy at rush hour
        1: [(1.0, 5, 1.5, True)]},
    5: {0: [(1.0, 5, 0.0, True)], 1: [(1.0, 5, 0.0, True)]},  # Airport: terminal
}


class TravelEnv(_TableEnv):
    """The seed's route-planning example as a small stochastic, acyclic MDP.

    Six places (Home, Station, Old town, Bridge, Park, Airport); in each the taxi picks the
    ``fast road`` (0) or the ``scenic road`` (1). The reward of a leg is the passenger's rating
    of it (positive: pleasant and quick, negative: jams, detours). Episodes start at Home and end
    at the Airport after 2 or 3 legs, so every trajectory can be enumerated exactly.
    """

    def __init__(self, render_mode: str | None = None):
        start = np.zeros(len(TRAVEL_STATES))
        start[0] = 1.0
        P = {s: {a: list(v) for a, v in acts.items()} for s, acts in _TRAVEL_P.items()}
        super().__init__(P, start, TRAVEL_STATES, TRAVEL_ACTIONS, render_mode)


class FlatDiscreteObservation(gym.ObservationWrapper):
    """Turn a ``Tuple`` of ``Discrete`` observations (e.g. Blackjack's (player sum, dealer card, usable
    ace)) into one ``Discrete`` index, so tabular methods apply. ``decode(i)`` gives the tuple back."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Tuple) or not all(isinstance(s, spaces.Discrete) for s in space.spaces):
            raise TypeError(f"FlatDiscreteObservation needs a Tuple of Discrete spaces, got {space!r}")
        self._sizes = [int(s.n) for s in space.spaces]
        self._starts = [int(s.start) for s in space.spaces]
        self.observation_space = spaces.Discrete(int(np.prod(self._sizes)))

    def observation(self, observation) -> int:
        idx = [int(o) - st for o, st in zip(observation, self._starts)]
        return int(np.ravel_multi_index(idx, self._sizes))

    def decode(self, index: int) -> tuple:
        """The original tuple observation of a flat index."""
        return tuple(int(i) + st for i, st in zip(np.unravel_index(int(index), self._sizes), self._starts))


def register_envs() -> None:
    """Register the book's environments with gymnasium (idempotent)."""
    for name, entry in (("Book/RandomWalk-v0", "lib.rl.envs:RandomWalkEnv"),
                        ("Book/Travel-v0", "lib.rl.envs:TravelEnv")):
        if name not in gym.envs.registry:
            gym.register(id=name, entry_point=entry)


register_envs()


# ---------------------------------------------------------------- environments of the deep-RL sections


def make_env(env_id) -> gym.Env:
    """``gym.make(env_id)`` for a registered id, ``env_id()`` for a zero-argument function (how the
    training configs name a custom environment such as :class:`MaxBiasEnv`)."""
    if isinstance(env_id, str):
        return gym.make(env_id)
    if callable(env_id):
        return env_id()
    raise TypeError(f"env_id must be a Gymnasium id or a function returning an env, got {type(env_id).__name__}")


class MaxBiasEnv(gym.Env):
    """Sutton & Barto's maximisation-bias MDP (Example 6.7) with a neural-friendly observation.

    Start in A (obs ``[1, 0]``): action 0 ends the episode with reward 0; any other action moves
    to B (obs ``[0, 1]``) with reward 0. In B every action ends the episode with a reward drawn
    from ``N(mean_b, 1)``. With ``mean_b < 0`` going to B is a mistake, yet the max over noisy
    estimates of B's action values makes it look attractive.
    """

    metadata = {"render_modes": []}

    def __init__(self, n_actions: int = 10, mean_b: float = -0.1, seed: int | None = None):
        if n_actions < 2:
            raise ValueError(f"n_actions must be >= 2, got {n_actions}")
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(int(n_actions))
        self.mean_b = float(mean_b)
        self._rng = np.random.default_rng(seed)
        self.state = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)     # gymnasium's contract; the rewards draw from self._rng
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.state = 0
        return np.array([1.0, 0.0], dtype=np.float32), {}

    def step(self, action):
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action out of range: {action}")
        if self.state == 0:
            if a == 0:
                return np.array([1.0, 0.0], dtype=np.float32), 0.0, True, False, {}
            self.state = 1
            return np.array([0.0, 1.0], dtype=np.float32), 0.0, False, False, {}
        reward = float(self._rng.normal(self.mean_b, 1.0))
        return np.array([0.0, 1.0], dtype=np.float32), reward, True, False, {}


class RiskyChain(gym.Env):
    """An episodic chain of ``length`` steps with a stochastic-reward choice at each step.

    Observation: one-hot of the step index (``length + 1`` dims, last = terminal).
    Action 0 ("safe") pays ``safe_reward``; action 1 ("risky") pays ``high`` with probability
    ``p_high`` else ``low``. The episode ends after ``length`` steps, so the return of the
    risky policy is a discounted sum of coin flips: a many-peaked distribution.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 4, safe_reward: float = 1.0, high: float = 3.0, low: float = -1.0,
                 p_high: float = 0.6):
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not 0 <= p_high <= 1:
            raise ValueError(f"p_high must be in [0, 1], got {p_high}")
        self.length, self.safe_reward, self.high, self.low, self.p_high = int(length), safe_reward, high, low, p_high
        self.observation_space = spaces.Box(0.0, 1.0, (length + 1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0
        self._rng = np.random.default_rng(0)

    def _obs(self):
        o = np.zeros(self.length + 1, dtype=np.float32)
        o[self.t] = 1.0
        return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)     # gymnasium's contract; the rewards draw from self._rng
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        a = int(action)
        if a not in (0, 1):
            raise ValueError(f"action must be 0 or 1, got {action}")
        r = self.safe_reward if a == 0 else (self.high if self._rng.random() < self.p_high else self.low)
        self.t += 1
        return self._obs(), float(r), self.t >= self.length, False, {}



# ---------------------------------------------------------------- the agent-environment loop


@dataclasses.dataclass
class Trace:
    """One episode of the agent–environment loop (time-major arrays).

    ``observations`` has T+1 entries (the last is the observation after the final step);
    ``actions``, ``rewards``, ``terminated``, ``truncated`` have T entries.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        return float(np.sum(self.rewards))

    @property
    def ended_by(self) -> str:
        """``"terminated"``, ``"truncated"`` or ``"cut"`` (stopped by ``max_steps``)."""
        if self.length and self.terminated[-1]:
            return "terminated"
        if self.length and self.truncated[-1]:
            return "truncated"
        return "cut"


class APIContractError(RuntimeError):
    """An environment broke the gymnasium reset/step contract."""


def rollout(env: gym.Env, policy: Callable, seed: int | None = None, max_steps: int = 10_000) -> Trace:
    """Run one episode: ``reset(seed)`` then ``step(policy(obs))`` until terminated or truncated.

    ``policy(obs, rng)`` returns an action; ``rng`` is a NumPy generator seeded from ``seed`` (an
    independent stream from the environment's) so stochastic agents are reproducible. Every step is checked against the gymnasium contract
    (``reset`` returns ``(obs, info)``, ``step`` returns a 5-tuple, observations lie in the
    observation space, ``terminated``/``truncated`` are bools, ``info`` is a dict); a violation
    raises :class:`APIContractError`. Returns a :class:`Trace`.
    """
    if not isinstance(env, gym.Env):
        raise TypeError(f"env must be a gymnasium.Env, got {type(env).__name__}")
    if not callable(policy):
        raise TypeError("policy must be a callable policy(obs, rng) -> action")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    # the agent's stream must differ from the environment's (gymnasium seeds its own from `seed`)
    rng = np.random.default_rng(None if seed is None else [int(seed), 0xA6E7])
    out = env.reset(seed=seed)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise APIContractError("reset() must return (observation, info dict)")
    obs, info = out
    if not env.observation_space.contains(obs):
        raise APIContractError(f"reset() observation {obs!r} is outside {env.observation_space}")
    observations, actions, rewards, terms, truncs, infos = [obs], [], [], [], [], [info]
    for _ in range(max_steps):
        action = policy(obs, rng)
        if not env.action_space.contains(action):
            raise APIContractError(f"the policy chose {action!r}, outside {env.action_space}")
        out = env.step(action)
        if not (isinstance(out, tuple) and len(out) == 5):
            raise APIContractError("step() must return (obs, reward, terminated, truncated, info)")
        obs, reward, terminated, truncated, info = out
        if not env.observation_space.contains(obs):
            raise APIContractError(f"step() observation {obs!r} is outside {env.observation_space}")
        if not isinstance(reward, (int, float, np.integer, np.floating)) or isinstance(reward, bool):
            raise APIContractError(f"reward must be a real number, got {type(reward).__name__}")
        if not isinstance(terminated, (bool, np.bool_)) or not isinstance(truncated, (bool, np.bool_)):
            raise APIContractError("terminated and truncated must be bools")
        if not isinstance(info, dict):
            raise APIContractError("info must be a dict")
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        infos.append(info)
        if terminated or truncated:
            break
    return Trace(np.asarray(observations), np.asarray(actions), np.asarray(rewards, dtype=np.float64),
                 np.asarray(terms, dtype=bool), np.asarray(truncs, dtype=bool), infos)


__all__ = ["make_env", "RandomWalkEnv", "TravelEnv", "MaxBiasEnv", "RiskyChain", "FlatDiscreteObservation",
           "TRAVEL_STATES", "TRAVEL_ACTIONS", "register_envs",
           "Trace", "APIContractError", "rollout"]
