"""Actor-critic: a policy (actor) and a state-value function (critic), and A2C.

* :class:`ActorCritic` — separate MLPs for the actor (categorical logits, or a Gaussian mean with a
  learned state-independent log-std) and the critic ``V(s)``; shared by A2C, TRPO and PPO, which
  build it with :func:`make_policy`.
* :func:`a2c_loss` / :func:`train_a2c` — synchronous advantage actor-critic: n-step rollouts
  from vectorised environments, advantage ``A = G^lambda - V`` (GAE), one gradient step per rollout on
  ``-log pi(a|s) A + c_v (V - G)^2 - c_e H[pi]``. :func:`train_a2c` is the whole algorithm in one
  loop: rollout -> GAE -> one update -> diagnostics -> evaluation.

The variance a baseline removes is measured on a tabular MDP by
:func:`lib.rl.policy_gradient.reinforce_gradient_samples` (estimator ``"baseline"``).

Book: seed-64 (actor-critic, A2C), seed-65 (baselines and advantages).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch import nn

from lib import progress as progress_bar
from lib.runs import (Run, Stopwatch, TrainLog, check_int, check_positive, check_range,
                      eval_seed)

from .nets import mlp
from .rollout import EpisodeTracker, RolloutBuffer, collect_rollout, evaluate, make_vec_env, space_dims


class ActorCritic(nn.Module):
    """Actor and critic MLPs for a flat observation.

    ``act_dim`` is the number of discrete actions, or the dimension of a continuous action when
    ``continuous=True`` (diagonal Gaussian policy with learned log-std ``log_std_init``).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), continuous: bool = False,
                 activation: str = "tanh", log_std_init: float = 0.0):
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be positive, got {obs_dim}, {act_dim}")
        self.obs_dim, self.act_dim, self.continuous = int(obs_dim), int(act_dim), bool(continuous)
        self.actor = mlp([obs_dim, *hidden, act_dim], activation, output_gain=0.01)
        self.critic = mlp([obs_dim, *hidden, 1], activation, output_gain=1.0)
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def _check(self, obs: torch.Tensor) -> torch.Tensor:
        if not isinstance(obs, torch.Tensor):
            raise TypeError(f"obs must be a torch tensor, got {type(obs).__name__}")
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have shape (batch, {self.obs_dim}), got {tuple(obs.shape)}")
        return obs

    def dist(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        out = self.actor(self._check(obs))
        if self.continuous:
            return torch.distributions.Normal(out, self.log_std.exp().expand_as(out), validate_args=False)
        return torch.distributions.Categorical(logits=out, validate_args=False)

    def log_prob(self, dist, actions: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(actions)
        return lp.sum(-1) if self.continuous else lp

    def entropy(self, dist) -> torch.Tensor:
        h = dist.entropy()
        return h.sum(-1) if self.continuous else h

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``V(s)``, shape (batch,)."""
        return self.critic(self._check(obs)).squeeze(-1)

    def act(self, obs: torch.Tensor):
        """Sample actions; returns ``(actions, log_probs, values)``."""
        d = self.dist(obs)
        a = d.sample()
        return a, self.log_prob(d, a), self.value(obs)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        """``(log_probs, entropy, values)`` of given actions (for the update)."""
        d = self.dist(obs)
        return self.log_prob(d, actions), self.entropy(d), self.value(obs)

    def deterministic(self, obs_np: np.ndarray) -> np.ndarray:
        """Greedy action (argmax / Gaussian mean) for evaluation, numpy in and out."""
        with torch.no_grad():
            out = self.actor(torch.as_tensor(np.asarray(obs_np), dtype=torch.float32))
        return out.numpy() if self.continuous else out.argmax(-1).numpy()


def a2c_loss(log_probs: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor, returns: torch.Tensor,
             entropy: torch.Tensor, vf_coef: float = 0.5, ent_coef: float = 0.0):
    """A2C loss ``-mean(log pi * A) + vf_coef * mean((V - G)^2) - ent_coef * mean(H)``.

    All inputs shape (batch,). Returns ``(loss, {"policy_loss", "value_loss", "entropy"})``.
    """
    n = log_probs.shape
    for name, t in (("advantages", advantages), ("values", values), ("returns", returns), ("entropy", entropy)):
        if t.shape != n:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(n)} like log_probs")
    pl = -(log_probs * advantages.detach()).mean()
    vl = (values - returns.detach()).pow(2).mean()
    ent = entropy.mean()
    return pl + vf_coef * vl - ent_coef * ent, {"policy_loss": pl.item(), "value_loss": vl.item(),
                                                "entropy": ent.item()}


def make_policy(cfg) -> ActorCritic:
    """An :class:`ActorCritic` sized for ``cfg.env_id`` with ``cfg.hidden`` layers, initialised
    from ``torch.manual_seed(cfg.seed)`` (the first random draws of every on-policy run)."""
    env = make_vec_env(cfg.env_id, 1)
    obs_dim, act_dim, cont = space_dims(env)
    env.close()
    torch.manual_seed(cfg.seed)
    return ActorCritic(obs_dim, act_dim, cfg.hidden, cont)


def check_on_policy_config(cfg) -> None:
    """The checks every on-policy config shares (A2C, TRPO, PPO): sizes, seed, discounts, lr."""
    if not isinstance(cfg.env_id, str) or not cfg.env_id:
        raise ValueError(f"{type(cfg).__name__}.env_id must be a gymnasium id such as "
                         f"'CartPole-v1', got {cfg.env_id!r}")
    check_int(cfg, "total_steps", "n_envs", "n_steps", "eval_every", "eval_episodes")
    check_int(cfg, "seed", minimum=0)
    check_range(cfg, "gamma", 0.0, 1.0)
    check_range(cfg, "lam", 0.0, 1.0)
    check_positive(cfg, "lr")
    hidden = cfg.hidden
    if not isinstance(hidden, (tuple, list)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise ValueError(f"{type(cfg).__name__}.hidden must be a tuple of positive layer widths, "
                         f"got {hidden!r}")
    if cfg.stop_return is not None:
        check_range(cfg, "stop_return", -np.inf, np.inf, low_open=True, high_open=True)


@dataclasses.dataclass
class A2CConfig:
    """A2C hyperparameters. Defaults: Stable-Baselines3's ``A2C`` defaults (which follow the A2C
    paper, Mnih et al. 2016, and OpenAI baselines); RMSprop as there.

    env_id: gymnasium environment with a flat Box observation (Discrete or Box actions).
    total_steps: environment steps over all ``n_envs`` copies (CartPole: 5e4 to 2e5).
    n_envs: parallel environments per rollout (SB3 zoo CartPole: 8).
    n_steps: steps per environment per rollout; one update uses ``n_steps * n_envs``
        transitions (A2C: 5, so updates are many and small).
    gamma: discount in [0, 1] (0.99).
    lam: GAE lambda in [0, 1]; 1.0 gives the n-step Monte Carlo advantage of the A2C paper.
    lr: RMSprop learning rate (7e-4, SB3).
    rms_alpha, rms_eps: RMSprop's smoothing constant and epsilon (0.99 and 1e-5, SB3's A2C).
    vf_coef: weight of the critic's squared error in the loss (0.5).
    ent_coef: weight of the entropy bonus (0.0 on CartPole; 0.01 on Atari).
    max_grad_norm: the gradient's global norm is clipped to this (0.5).
    hidden: hidden layer widths of both MLPs ((64, 64)).
    normalize_advantages: standardise the advantages of each rollout (off in SB3's A2C).
    eval_every: environment steps between greedy evaluations (and one at the end).
    eval_episodes: episodes per evaluation, seeded by ``lib.runs.eval_seed(seed)``.
    stop_return: stop at the first evaluation whose mean return reaches it (None: never).
    seed: seeds the network, the environments and the action sampling.
    """

    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 5
    gamma: float = 0.99
    lam: float = 1.0
    lr: float = 7e-4
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    hidden: tuple = (64, 64)
    normalize_advantages: bool = False
    eval_every: int = 10_000
    eval_episodes: int = 10
    stop_return: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_on_policy_config(self)
        check_range(self, "rms_alpha", 0.0, 1.0, high_open=True)
        check_positive(self, "rms_eps", "max_grad_norm")
        check_range(self, "vf_coef", 0.0, np.inf, high_open=True)
        check_range(self, "ent_coef", 0.0, np.inf, high_open=True)


@dataclasses.dataclass
class A2CRun(Run):
    """A finished A2C run: ``config``, ``log`` (a :class:`lib.runs.TrainLog`) and the policy."""

    policy: ActorCritic


def train_a2c(cfg: A2CConfig | None = None, progress: bool = False) -> A2CRun:
    """Train A2C; returns an :class:`A2CRun`. One loop: rollout -> GAE -> one gradient step ->
    diagnostics -> evaluation every ``cfg.eval_every`` steps."""
    cfg = cfg or A2CConfig()
    policy = make_policy(cfg)
    optimizer = torch.optim.RMSprop(policy.parameters(), lr=cfg.lr, alpha=cfg.rms_alpha,
                                    eps=cfg.rms_eps)
    env = make_vec_env(cfg.env_id, cfg.n_envs, cfg.seed)
    buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, *space_dims(env))
    obs, _ = env.reset(seed=cfg.seed)
    log = TrainLog()
    episodes = EpisodeTracker(cfg.n_envs, log)
    steps_per_update = cfg.n_steps * cfg.n_envs
    n_updates = max(1, cfg.total_steps // steps_per_update)
    next_eval = cfg.eval_every
    with Stopwatch(log), progress_bar(total=n_updates * steps_per_update, desc="A2C", unit="step",
                                      enabled=progress) as bar:
        for update in range(n_updates):
            # 1. rollout: n_steps in each of the n_envs environments
            obs = collect_rollout(env, policy, buffer, obs, episodes)
            # 2. advantages and critic targets by GAE, bootstrapped from V(last obs)
            with torch.no_grad():
                last_values = policy.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            buffer.compute_advantages(last_values, cfg.gamma, cfg.lam)
            # 3. one gradient step on the whole rollout
            data = buffer.flat()
            advantages = data["advantages"]
            if cfg.normalize_advantages:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            log_probs, entropy, values = policy.evaluate_actions(data["obs"], data["actions"])
            loss, info = a2c_loss(log_probs, advantages, values, data["returns"], entropy,
                                  cfg.vf_coef, cfg.ent_coef)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            optimizer.step()
            # 4. diagnostics, then a greedy evaluation every eval_every steps (and at the end)
            step = (update + 1) * steps_per_update
            log.record_update(step, **info)
            bar.update(steps_per_update)
            if step >= next_eval or update == n_updates - 1:
                next_eval += cfg.eval_every
                mean = log.record_eval(step, lambda: evaluate(
                    policy.deterministic, cfg.env_id, cfg.eval_episodes, seed=eval_seed(cfg.seed)))
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    break
    env.close()
    return A2CRun(cfg, log, policy)


__all__ = ["ActorCritic", "a2c_loss", "make_policy", "check_on_policy_config", "A2CConfig", "A2CRun",
           "train_a2c"]
