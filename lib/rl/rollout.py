"""On-policy rollouts shared by A2C, TRPO and PPO: vectorised environments, a rollout buffer, evaluation.

The buffer is time-major ``(T, N)`` (``T = n_steps`` per environment, ``N = n_envs``) and keeps
``terminated`` and ``truncated`` apart, plus ``final_values`` (the critic's value of the real last
observation of a truncated episode), so that :func:`lib.rl.gae.compute_gae` bootstraps correctly.
Environments use gymnasium's *same-step* autoreset: when an episode ends, ``step`` already
returns the first observation of the next one and the real last observation sits in
``info["final_obs"]``. :class:`EpisodeTracker` follows the episodes across rollouts and records
each finished one in the run's :class:`lib.runs.TrainLog`.

Book: seed-64 (A2C), seed-68 (TRPO), seed-71 (PPO in practice: the buffer's shapes).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np
import torch

from lib.runs import EVAL_SEED_BASE, TrainLog

from .gae import compute_gae, normalize_advantages


def make_vec_env(env_id, n_envs: int, seed: int | None = None, **kwargs):
    """A gymnasium ``SyncVectorEnv`` of ``n_envs`` copies with same-step autoreset (reset with ``seed``).

    ``env_id`` is a registered id such as ``"CartPole-v1"`` (``kwargs`` go to ``gym.make``) or a
    zero-argument function returning an environment (a custom one; called once per copy)."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    if not (isinstance(env_id, str) or callable(env_id)):
        raise TypeError(f"env_id must be a string such as 'CartPole-v1' or a function returning an env, "
                        f"got {type(env_id).__name__}")
    if not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    if callable(env_id):
        if kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} apply to a registered id, not a function")
        env = gym.vector.SyncVectorEnv([env_id] * int(n_envs), autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        env = gym.make_vec(env_id, num_envs=int(n_envs), vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)
    env.action_space.seed(seed)
    return env


def space_dims(env) -> tuple[int, int, bool]:
    """``(obs_dim, act_dim, continuous)`` of a vector env's single spaces (Box obs; Discrete or Box actions)."""
    import gymnasium as gym

    obs_space = env.single_observation_space
    act_space = env.single_action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"need a flat Box observation space, got {obs_space}")
    if isinstance(act_space, gym.spaces.Discrete):
        return int(obs_space.shape[0]), int(act_space.n), False
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return int(obs_space.shape[0]), int(act_space.shape[0]), True
    raise ValueError(f"unsupported action space {act_space}")


@dataclasses.dataclass
class RolloutBuffer:
    """Storage for one on-policy rollout of ``n_steps`` x ``n_envs`` transitions (time-major).

    Fill it with :func:`collect_rollout`, then call :meth:`compute_advantages` and iterate
    :meth:`minibatches`. Arrays: ``obs (T, N, obs_dim)``, ``actions (T, N)`` or ``(T, N, act_dim)``,
    ``log_probs, values, rewards, terminated, truncated, final_values (T, N)``.
    """

    n_steps: int
    n_envs: int
    obs_dim: int
    act_dim: int = 1
    continuous: bool = False

    def __post_init__(self):
        for name in ("n_steps", "n_envs", "obs_dim", "act_dim"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        T, N = self.n_steps, self.n_envs
        self.obs = np.zeros((T, N, self.obs_dim), np.float32)
        self.actions = np.zeros((T, N, self.act_dim) if self.continuous else (T, N),
                                np.float32 if self.continuous else np.int64)
        for name in ("log_probs", "values", "rewards", "terminated", "truncated", "final_values"):
            setattr(self, name, np.zeros((T, N), np.float32))
        self.last_values = np.zeros(N, np.float32)
        self.advantages = None
        self.returns = None
        self.pos = 0

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def add(self, obs, actions, log_probs, values, rewards, terminated, truncated, final_values=None):
        """Store one vector step (every argument has a leading ``n_envs`` axis)."""
        if self.full:
            raise RuntimeError("buffer is full: call reset() before adding more steps")
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = 0.0 if final_values is None else final_values
        self.pos += 1

    def reset(self) -> None:
        self.pos = 0
        self.advantages = self.returns = None

    def compute_advantages(self, last_values, gamma: float, lam: float) -> None:
        """GAE(lambda) advantages and lambda-returns over the whole buffer (see :mod:`lib.rl.gae`)."""
        if not self.full:
            raise RuntimeError(f"buffer holds {self.pos} of {self.n_steps} steps; fill it first")
        self.last_values = np.asarray(last_values, np.float32).reshape(self.n_envs)
        self.advantages, self.returns = compute_gae(
            self.rewards, self.values, self.last_values, gamma, lam, self.terminated, self.truncated,
            self.final_values)

    def flat(self, device=None) -> dict[str, torch.Tensor]:
        """All transitions flattened to ``n_steps * n_envs`` rows, as torch tensors."""
        if self.advantages is None:
            raise RuntimeError("call compute_advantages() before reading training batches")
        n = self.n_steps * self.n_envs
        out = {
            "obs": torch.as_tensor(self.obs.reshape(n, self.obs_dim)),
            "actions": torch.as_tensor(self.actions.reshape((n, self.act_dim) if self.continuous else (n,))),
            "log_probs": torch.as_tensor(self.log_probs.reshape(n)),
            "values": torch.as_tensor(self.values.reshape(n)),
            "advantages": torch.as_tensor(self.advantages.reshape(n), dtype=torch.float32),
            "returns": torch.as_tensor(self.returns.reshape(n), dtype=torch.float32),
        }
        return {k: v.to(device) for k, v in out.items()} if device is not None else out

    def minibatches(self, batch_size: int, rng: np.random.Generator, normalize: bool = True,
                    device=None) -> Iterator[dict[str, torch.Tensor]]:
        """One epoch: a random permutation of the rows cut into minibatches of ``batch_size``.

        With ``normalize`` the advantages are standardised per minibatch (as SB3 does).
        """
        n = self.n_steps * self.n_envs
        if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be an integer in [1, {n}], got {batch_size!r}")
        data = self.flat(device)
        perm = torch.as_tensor(rng.permutation(n))
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            mb = {k: v[idx] for k, v in data.items()}
            if normalize and len(idx) > 1:
                mb["advantages"] = normalize_advantages(mb["advantages"])
            yield mb


class EpisodeTracker:
    """The running return and length of each sub-environment's current episode.

    :meth:`step` adds one vector step; every episode that ends is recorded in ``log`` (a
    :class:`lib.runs.TrainLog`, a fresh one by default) with the number of environment steps
    taken so far, and its length is appended to ``lengths``.
    """

    def __init__(self, n_envs: int, log: TrainLog | None = None):
        if not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
        self.log = TrainLog() if log is None else log
        self.running_return = np.zeros(n_envs)
        self.running_length = np.zeros(n_envs, np.int64)
        self.steps = 0
        self.lengths: list[int] = []

    def step(self, rewards, done) -> None:
        """One vector step: ``rewards`` and ``done`` (terminated or truncated) per environment."""
        self.steps += len(self.running_return)
        self.running_return += rewards
        self.running_length += 1
        for i in np.flatnonzero(done):
            self.log.record_episode(self.steps, float(self.running_return[i]))
            self.lengths.append(int(self.running_length[i]))
            self.running_return[i] = 0.0
            self.running_length[i] = 0


def collect_rollout(env, policy, buffer: RolloutBuffer, obs: np.ndarray,
                    episodes: EpisodeTracker | None = None):
    """Run ``policy`` in the vector ``env`` until ``buffer`` is full, starting from ``obs``.

    ``policy`` must offer ``act(obs_tensor) -> (actions, log_probs, values)`` and
    ``value(obs_tensor)``. For truncated episodes the value of ``info["final_obs"]`` is stored as
    ``final_values``; after the loop the buffer's advantages are *not* yet computed (call
    ``buffer.compute_advantages(policy.value(next_obs), gamma, lam)``). ``episodes``, when
    given, records the episodes that finish. Returns the observation to continue from.
    """
    buffer.reset()
    for _ in range(buffer.n_steps):
        with torch.no_grad():
            o = torch.as_tensor(obs, dtype=torch.float32)
            actions, logp, values = policy.act(o)
        a_np = actions.numpy()
        env_actions = np.clip(a_np, env.single_action_space.low, env.single_action_space.high) \
            if buffer.continuous else a_np
        next_obs, rewards, term, trunc, info = env.step(env_actions)
        final_values = None
        if np.any(trunc):
            final_values = np.zeros(buffer.n_envs, np.float32)
            idx = np.flatnonzero(trunc & ~term)
            if len(idx):
                fo = np.stack([info["final_obs"][i] for i in idx]).astype(np.float32)
                with torch.no_grad():
                    final_values[idx] = policy.value(torch.as_tensor(fo)).numpy()
        trunc = trunc & ~term
        buffer.add(obs, a_np, logp.numpy(), values.numpy(), rewards, term, trunc, final_values)
        if episodes is not None:
            episodes.step(rewards, term | trunc)
        obs = next_obs
    return obs


def evaluate(policy_fn, env_id: str, n_episodes: int = 10, seed: int = EVAL_SEED_BASE, max_steps: int = 10_000,
             visit=None, **env_kwargs) -> np.ndarray:
    """Returns of ``n_episodes`` episodes, run in parallel (one per sub-environment).

    ``policy_fn(obs_array) -> actions_array`` (e.g. a deterministic policy). Each sub-environment
    is reset with ``seed + i`` and its first episode is counted. Returns an array (n_episodes,).
    ``visit(obs, alive)``, when given, is called before every step with the observations and the
    mask of episodes still running (e.g. to record the visited states).
    """
    if not callable(policy_fn):
        raise TypeError("policy_fn must be a function obs -> actions")
    if visit is not None and not callable(visit):
        raise TypeError("visit must be a function (obs, alive) -> None")
    if not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    env = make_vec_env(env_id, n_episodes, seed, **env_kwargs)
    obs, _ = env.reset(seed=[seed + i for i in range(n_episodes)])
    totals = np.zeros(n_episodes)
    alive = np.ones(n_episodes, bool)
    for _ in range(max_steps):
        if visit is not None:
            visit(obs, alive)
        a = np.asarray(policy_fn(obs))
        obs, r, term, trunc, _ = env.step(a)
        totals += r * alive
        alive &= ~(term | trunc)
        if not alive.any():
            break
    env.close()
    return totals


__all__ = ["make_vec_env", "space_dims", "RolloutBuffer", "EpisodeTracker", "collect_rollout", "evaluate"]
