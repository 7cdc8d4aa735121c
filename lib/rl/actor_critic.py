"""Actor-critic: a policy (actor) and a state-value function (critic), and A2C.

* :class:`ActorCritic` — separate MLPs for the actor (categorical logits, or a Gaussian mean with a
  learned state-independent log-std) and the critic ``V(s)``; shared by A2C, TRPO and PPO.
* :func:`a2c_loss` / :func:`train_a2c` — synchronous advantage actor-critic: n-step rollouts
  from vectorised environments, advantage ``A = G^lambda - V`` (GAE), one gradient step per rollout on
  ``-log pi(a|s) A + c_v (V - G)^2 - c_e H[pi]``.
* :func:`baseline_gradient_samples` — per-episode policy-gradient estimates on a tabular MDP with no
  baseline, a constant baseline or the state value, to measure the variance a baseline removes.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .nets import mlp
from .policy_gradient import FiniteMDP, _check_theta, check_episodes, score_weighted_sum, value_tables
from .returns import discounted_returns
from .rollout import EvalLog, RolloutBuffer, collect_rollout, evaluate, make_vec_env, space_dims


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


@dataclasses.dataclass
class A2CConfig:
    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 5
    gamma: float = 0.99
    lam: float = 1.0
    lr: float = 7e-4
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    hidden: tuple = (64, 64)
    normalize_advantages: bool = False
    eval_every: int = 10_000
    eval_episodes: int = 10


def check_config(cfg) -> None:
    """Shared validation of the on-policy configs (positive sizes, ranges)."""
    for name in ("total_steps", "n_envs", "n_steps", "eval_every", "eval_episodes"):
        v = getattr(cfg, name)
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    for name in ("gamma", "lam"):
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if not getattr(cfg, "lr", 1.0) > 0:
        raise ValueError(f"lr must be positive, got {cfg.lr}")


class OnPolicyLog(EvalLog):
    """What a training run records: episodes, evaluations, per-update diagnostics, wall time
    (``eval_time`` is the part of it spent in evaluation episodes)."""

    def __init__(self):
        super().__init__()
        self.episodes: dict = {}
        self.updates: list[dict] = []
        self.wall_time = 0.0

    def as_dict(self) -> dict:
        return {"eval_steps": self.eval_steps, "eval_returns": self.eval_returns, "eval_stds": self.eval_stds,
                "updates": self.updates, "eval_time": self.eval_time, "episode_returns": self.episodes.get("returns", []),
                "episode_end_steps": self.episodes.get("end_steps", []), "wall_time": self.wall_time}


def run_on_policy(cfg, policy: ActorCritic, update_fn, seed: int = 0, progress: bool = False,
                  stop_at: float | None = None) -> OnPolicyLog:
    """The loop shared by A2C, TRPO and PPO: rollout -> advantages -> ``update_fn(buffer, progress)``.

    ``update_fn`` returns a dict of diagnostics (logged per update). Evaluates the deterministic
    policy every ``cfg.eval_every`` steps; with ``stop_at`` it stops at the first evaluation whose
    mean return reaches it.
    """
    check_config(cfg)
    env = make_vec_env(cfg.env_id, cfg.n_envs, seed)
    obs_dim, act_dim, cont = space_dims(env)
    buf = RolloutBuffer(cfg.n_steps, cfg.n_envs, obs_dim, act_dim, cont)
    obs, _ = env.reset(seed=seed)
    log = OnPolicyLog()
    steps_per = cfg.n_steps * cfg.n_envs
    n_updates = max(1, cfg.total_steps // steps_per)
    next_eval = cfg.eval_every
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_updates * steps_per, desc=type(cfg).__name__.replace("Config", ""), unit="step")
    for u in range(n_updates):
        obs = collect_rollout(env, policy, buf, obs, log.episodes)
        with torch.no_grad():
            last_v = policy.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        buf.compute_advantages(last_v, cfg.gamma, cfg.lam)
        diag = update_fn(buf, (u + 1) / n_updates)
        diag["step"] = (u + 1) * steps_per
        log.updates.append(diag)
        if bar is not None:
            bar.update(steps_per)
        steps = (u + 1) * steps_per
        if steps >= next_eval or u == n_updates - 1:
            next_eval += cfg.eval_every
            mean = log.record_eval(steps, lambda: evaluate(policy.deterministic, cfg.env_id, cfg.eval_episodes,
                                                           seed=10_000 + 97 * seed))
            if stop_at is not None and mean >= stop_at:
                break
    if bar is not None:
        bar.close()
    env.close()
    log.wall_time = time.perf_counter() - t0
    return log


def make_policy(cfg, seed: int = 0) -> ActorCritic:
    """An :class:`ActorCritic` sized for ``cfg.env_id`` (seeded)."""
    env = make_vec_env(cfg.env_id, 1)
    obs_dim, act_dim, cont = space_dims(env)
    env.close()
    torch.manual_seed(seed)
    return ActorCritic(obs_dim, act_dim, cfg.hidden, cont)


def train_a2c(cfg: A2CConfig | None = None, seed: int = 0, progress: bool = False, stop_at: float | None = None):
    """Train A2C; returns ``(policy, OnPolicyLog)``. RMSprop as in the A2C paper / SB3."""
    cfg = cfg or A2CConfig()
    policy = make_policy(cfg, seed)
    opt = torch.optim.RMSprop(policy.parameters(), lr=cfg.lr, alpha=0.99, eps=1e-5)

    def update(buf: RolloutBuffer, frac: float) -> dict:
        data = buf.flat()
        adv = data["advantages"]
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        lp, ent, v = policy.evaluate_actions(data["obs"], data["actions"])
        loss, info = a2c_loss(lp, adv, v, data["returns"], ent, cfg.vf_coef, cfg.ent_coef)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        opt.step()
        return info

    log = run_on_policy(cfg, policy, update, seed, progress, stop_at)
    return policy, log


# ---------------------------------------------------------------- baselines and variance (tabular)

def baseline_gradient_samples(mdp: FiniteMDP, theta, states, actions, rewards, baseline="value") -> np.ndarray:
    """Per-episode gradient estimates ``sum_t gamma^t grad log pi(a_t|s_t) (G_t - b_t)``, shape (n, S, A).

    ``baseline``: ``"none"`` (b = 0), a number (constant b), or ``"value"`` (b = V_t(s_t), exact,
    which makes ``G_t - b_t`` a Monte Carlo estimate of the advantage). Every choice is unbiased
    because ``E[grad log pi(a|s)] = 0`` for any ``b`` that does not depend on the action.
    """
    theta = _check_theta(mdp, theta)
    states, actions, rewards = check_episodes(mdp, states, actions, rewards)
    H = states.shape[1]
    G = discounted_returns(rewards.T, mdp.gamma).T
    if isinstance(baseline, str):
        if baseline == "none":
            b = np.zeros_like(G)
        elif baseline == "value":
            V, _ = value_tables(mdp, theta)
            b = V[np.arange(H)[None, :], states]
        else:
            raise ValueError(f"baseline must be 'none', 'value' or a number, got {baseline!r}")
    elif isinstance(baseline, (int, float, np.floating, np.integer)) and not isinstance(baseline, bool):
        b = np.full_like(G, float(baseline))
    else:
        raise TypeError(f"baseline must be 'none', 'value' or a number, got {type(baseline).__name__}")
    coef = (mdp.gamma ** np.arange(H))[None, :] * (G - b)
    return score_weighted_sum(theta, states, actions, coef)


__all__ = ["ActorCritic", "a2c_loss", "A2CConfig", "train_a2c", "run_on_policy", "make_policy",
           "OnPolicyLog", "check_config", "baseline_gradient_samples"]
