"""Experience replay: a fixed-size circular buffer of transitions sampled uniformly.

Stores ``(obs, action, reward, next_obs, done)`` in preallocated NumPy arrays (fast on CPU);
``done`` means *terminated* (no bootstrap), not cut by a time limit. The one buffer of the
off-policy methods: DQN and C51 (action indices), DDPG/TD3 (action vectors) and MADDPG (all
agents' observations and actions concatenated, one reward per agent: ``reward_shape=(n_agents,)``).

Book: seed-52, seed-57, seed-63, seed-75
"""
from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Circular buffer of transitions.

    Parameters
    ----------
    capacity : maximum number of transitions kept; the oldest are overwritten.
    obs_shape : shape of one observation, e.g. ``(4,)``.
    seed : seed of the buffer's own sampling generator.
    obs_dtype : dtype of stored observations (float32 by default).
    action_shape : shape of one action: ``()`` for a discrete action index (DQN, C51), ``(act_dim,)``
        for a continuous action vector (DDPG, TD3).
    action_dtype : dtype of stored actions (int64 for indices, float32 for continuous actions).
    reward_shape : shape of one reward: ``()`` for one agent, ``(n_agents,)`` for one per agent.
    """

    def __init__(self, capacity: int, obs_shape, seed: int = 0, obs_dtype=np.float32, action_shape=(),
                 action_dtype=np.int64, reward_shape=()):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        obs_shape = (int(obs_shape),) if np.isscalar(obs_shape) else tuple(int(s) for s in obs_shape)
        if any(s < 1 for s in obs_shape):
            raise ValueError(f"obs_shape must contain positive sizes, got {obs_shape}")
        self.capacity = int(capacity)
        self.obs_shape = obs_shape
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        action_shape = (int(action_shape),) if np.isscalar(action_shape) else tuple(int(s) for s in action_shape)
        if any(s < 1 for s in action_shape):
            raise ValueError(f"action_shape must contain positive sizes, got {action_shape}")
        self.action_shape = action_shape
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        reward_shape = (int(reward_shape),) if np.isscalar(reward_shape) else tuple(int(s) for s in reward_shape)
        if any(s < 1 for s in reward_shape):
            raise ValueError(f"reward_shape must contain positive sizes, got {reward_shape}")
        self.reward_shape = reward_shape
        self.rewards = np.zeros((capacity, *reward_shape), dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, done) -> None:
        """Add one transition, or a batch (leading dimension ``B``) of transitions."""
        obs = np.asarray(obs, dtype=self.obs.dtype)
        batched = obs.shape != self.obs_shape
        if batched and obs.shape[1:] != self.obs_shape:
            raise ValueError(f"obs must have shape {self.obs_shape} or (B, *{self.obs_shape}), got {obs.shape}")
        obs = obs.reshape(-1, *self.obs_shape)
        b = obs.shape[0]
        next_obs = np.asarray(next_obs, dtype=self.obs.dtype).reshape(-1, *self.obs_shape)
        action = np.asarray(action, dtype=self.actions.dtype).reshape(-1, *self.action_shape)
        reward = np.asarray(reward, dtype=np.float32).reshape(-1, *self.reward_shape)
        done = np.asarray(done, dtype=np.float32).reshape(-1)
        if not (next_obs.shape[0] == action.shape[0] == reward.shape[0] == done.shape[0] == b):
            raise ValueError("obs, action, reward, next_obs and done must describe the same number of transitions")
        idx = (self.pos + np.arange(b)) % self.capacity
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.actions[idx] = action
        self.rewards[idx] = reward
        self.dones[idx] = done
        self.pos = int((self.pos + b) % self.capacity)
        self.size = int(min(self.size + b, self.capacity))

    def sample(self, batch_size: int, rng: np.random.Generator | None = None) -> dict:
        """A uniform random batch (with replacement): dict of arrays ``obs (B, *obs_shape)``,
        ``actions (B, *action_shape)``, ``rewards (B, *reward_shape)``, ``next_obs``, ``dones (B,)``.

        Indices come from ``rng`` when given (a training loop's own generator), else from the
        buffer's generator seeded at construction."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        idx = (rng or self.rng).integers(0, self.size, size=batch_size)
        return {"obs": self.obs[idx], "actions": self.actions[idx], "rewards": self.rewards[idx],
                "next_obs": self.next_obs[idx], "dones": self.dones[idx]}


__all__ = ["ReplayBuffer"]
