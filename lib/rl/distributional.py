"""Distributional RL with a categorical return distribution (C51, Bellemare, Dabney & Munos 2017).

The return ``Z(s, a)`` is modelled as a categorical distribution on a fixed support of
``N`` atoms ``z_i = v_min + i * dz``. The distributional Bellman target ``r + gamma * Z(s', a*)``
lands between atoms, so each shifted atom's mass is split between its two neighbours in
proportion to closeness (:func:`categorical_projection`); the network is trained by
cross-entropy to that projected target.
"""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from .nets import mlp
from .replay import ReplayBuffer
from .returns import check_gamma


def make_support(v_min: float, v_max: float, n_atoms: int) -> torch.Tensor:
    """The fixed atoms ``z`` (n_atoms,), evenly spaced from ``v_min`` to ``v_max``."""
    if not v_max > v_min:
        raise ValueError(f"v_max must exceed v_min, got {v_min}, {v_max}")
    if n_atoms < 2:
        raise ValueError(f"n_atoms must be >= 2, got {n_atoms}")
    return torch.linspace(float(v_min), float(v_max), int(n_atoms), dtype=torch.float64)


def categorical_projection(next_probs, rewards, dones, gamma: float, support) -> torch.Tensor:
    """Project ``r + gamma (1 - done) z`` with probabilities ``next_probs`` onto ``support``.

    next_probs : (B, N) probabilities of the next state's chosen-action distribution.
    rewards, dones : (B,). support : (N,) evenly spaced atoms.
    Returns (B, N) probabilities on the support (rows sum to 1); dtype of ``next_probs``.
    """
    gamma = check_gamma(gamma)
    p = torch.as_tensor(next_probs)
    if not torch.is_floating_point(p):
        p = p.double()
    z = torch.as_tensor(support, dtype=p.dtype)
    r = torch.as_tensor(rewards, dtype=p.dtype)
    d = torch.as_tensor(dones, dtype=p.dtype)
    if z.ndim != 1 or z.shape[0] < 2:
        raise ValueError(f"support must be 1-D with >= 2 atoms, got shape {tuple(z.shape)}")
    if p.ndim != 2 or p.shape[1] != z.shape[0]:
        raise ValueError(f"next_probs must have shape (B, {z.shape[0]}), got {tuple(p.shape)}")
    if r.shape != (p.shape[0],) or d.shape != (p.shape[0],):
        raise ValueError(f"rewards and dones must have shape ({p.shape[0]},), got {tuple(r.shape)}, {tuple(d.shape)}")
    if torch.any(p < -1e-6) or not torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-4):
        raise ValueError("each row of next_probs must be a probability distribution")
    gaps = z[1:] - z[:-1]
    if not torch.allclose(gaps, gaps[0].expand_as(gaps), rtol=1e-4, atol=1e-8) or gaps[0] <= 0:
        raise ValueError("support must be increasing and evenly spaced")
    return _project(p, r, d, gamma, z)


def _project(p, r, d, gamma, z):
    """:func:`categorical_projection` without input checks (the training loop's hot path)."""
    v_min, v_max, n = float(z[0]), float(z[-1]), z.shape[0]
    dz = (v_max - v_min) / (n - 1)
    tz = (r[:, None] + gamma * (1.0 - d[:, None]) * z[None, :]).clamp(v_min, v_max)
    b = (tz - v_min) / dz                        # fractional index of each shifted atom
    lo, hi = b.floor().long().clamp(0, n - 1), b.ceil().long().clamp(0, n - 1)
    w_hi = b - lo.to(b.dtype)                    # mass going up is the distance above lo
    w_lo = 1.0 - w_hi
    out = torch.zeros_like(p)
    out.scatter_add_(1, lo, p * w_lo)
    out.scatter_add_(1, hi, p * w_hi)            # when lo == hi, w_hi == 0: all mass stays on lo
    return out


class C51Net(nn.Module):
    """``s -> (B, A, N)`` probabilities over the support for every action."""

    def __init__(self, obs_dim: int, n_actions: int, n_atoms: int = 51, hidden=(64, 64)):
        super().__init__()
        self.obs_dim, self.n_actions, self.n_atoms = int(obs_dim), int(n_actions), int(n_atoms)
        self.net = mlp([obs_dim, *hidden, n_actions * n_atoms], activation="relu")

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).view(-1, self.n_actions, self.n_atoms)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(obs), dim=-1)


class RiskyChain(gym.Env):
    """An episodic chain of ``length`` steps with a stochastic-reward choice at each step.

    Observation: one-hot of the step index (``length + 1`` dims, last = terminal).
    Action 0 ("safe") pays ``safe_reward``; action 1 ("risky") pays ``high`` with probability
    ``p_high`` else ``low``. The episode ends after ``length`` steps, so the return of the
    risky policy is a discounted sum of coin flips: a many-peaked distribution.
    """

    def __init__(self, length: int = 4, safe_reward: float = 1.0, high: float = 3.0, low: float = -1.0,
                 p_high: float = 0.6):
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not 0 <= p_high <= 1:
            raise ValueError(f"p_high must be in [0, 1], got {p_high}")
        self.length, self.safe_reward, self.high, self.low, self.p_high = int(length), safe_reward, high, low, p_high
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0
        self._rng = np.random.default_rng(0)

    def _obs(self):
        o = np.zeros(self.length + 1, dtype=np.float32)
        o[self.t] = 1.0
        return o

    def reset(self, *, seed=None, options=None):
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


@dataclasses.dataclass
class C51Config:
    n_atoms: int = 51
    v_min: float = -5.0
    v_max: float = 12.0
    gamma: float = 0.9
    total_steps: int = 6_000
    lr: float = 1e-3
    lr_end: float | None = None  # if set: the step size decays linearly from lr to lr_end
    batch_size: int = 64
    buffer_size: int = 10_000
    learning_starts: int = 200
    target_update_interval: int = 100
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_decay_steps: int = 1_000
    hidden: tuple = (64, 64)
    seed: int = 0


def c51_loss(net: C51Net, target_net: C51Net, batch: dict, support: torch.Tensor, gamma: float) -> torch.Tensor:
    """Cross-entropy between the projected target and the predicted distribution of the taken action."""
    o = torch.as_tensor(batch["obs"])
    a = torch.as_tensor(batch["actions"]).long()
    with torch.no_grad():
        nprob = target_net(torch.as_tensor(batch["next_obs"]))            # (B, A, N)
        z = support.to(nprob.dtype)
        a_star = (nprob * z).sum(-1).argmax(1)
        p_next = nprob[torch.arange(len(a_star)), a_star]
        target = _project(p_next, torch.as_tensor(batch["rewards"]), torch.as_tensor(batch["dones"]), gamma, z)
    logp = torch.log_softmax(net.logits(o), dim=-1)[torch.arange(len(a)), a]
    return -(target * logp).sum(-1).mean()


def train_c51(env: gym.Env, config: C51Config | None = None) -> tuple[C51Net, torch.Tensor, list]:
    """Train C51 with replay, a target network and epsilon-greedy acting on the mean of Z.

    Returns (network, support, loss history).
    """
    from .dqn import linear_epsilon

    cfg = config or C51Config()
    gamma = check_gamma(cfg.gamma)
    for name in ("lr", "lr_end"):
        value = getattr(cfg, name)
        if name == "lr_end" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"C51Config.{name} must be a positive number, got {value!r}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    obs_dim, n_act = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    support = make_support(cfg.v_min, cfg.v_max, cfg.n_atoms).float()
    net, tgt = C51Net(obs_dim, n_act, cfg.n_atoms, cfg.hidden), C51Net(obs_dim, n_act, cfg.n_atoms, cfg.hidden)
    tgt.load_state_dict(net.state_dict())
    try:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    buf = ReplayBuffer(cfg.buffer_size, (obs_dim,), seed=cfg.seed)
    obs, _ = env.reset(seed=cfg.seed)
    losses = []
    for step in range(cfg.total_steps):
        if rng.random() < linear_epsilon(step, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps):
            a = int(rng.integers(n_act))
        else:
            with torch.no_grad():
                a = int((net(torch.as_tensor(obs)[None]) * support).sum(-1).argmax(1).item())
        nobs, r, term, trunc, _ = env.step(a)
        buf.add(obs, a, r, nobs, float(term))
        obs = nobs
        if term or trunc:
            obs, _ = env.reset()
        if step >= cfg.learning_starts:
            if cfg.lr_end is not None:  # linear decay: less SGD noise in the final network
                frac = (step - cfg.learning_starts) / max(1, cfg.total_steps - cfg.learning_starts)
                for group in opt.param_groups:
                    group["lr"] = cfg.lr + frac * (cfg.lr_end - cfg.lr)
            loss = c51_loss(net, tgt, buf.sample(cfg.batch_size), support, gamma)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if step % cfg.target_update_interval == 0:
            tgt.load_state_dict(net.state_dict())
    return net, support, losses


def monte_carlo_returns(env: gym.Env, policy, first_action: int, n: int, gamma: float, seed: int = 0) -> np.ndarray:
    """``n`` sampled discounted returns from the start state: take ``first_action``, then ``policy(obs)``."""
    gamma = check_gamma(gamma)
    out = np.empty(n)
    obs, _ = env.reset(seed=seed)
    for i in range(n):
        if i:
            obs, _ = env.reset()
        a, g, disc = int(first_action), 0.0, 1.0
        while True:
            obs, r, term, trunc, _ = env.step(a)
            g += disc * r
            disc *= gamma
            if term or trunc:
                break
            a = int(policy(obs))
        out[i] = g
    return out


def wasserstein1(support, probs, samples) -> float:
    """W1 distance between a categorical distribution (``support``, ``probs``) and an empirical
    sample: the integral of |CDF difference| over the line."""
    z = np.asarray(support, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if z.shape != p.shape or z.ndim != 1:
        raise ValueError(f"support and probs must be 1-D of equal length, got {z.shape}, {p.shape}")
    if x.size == 0:
        raise ValueError("samples is empty")
    grid = np.union1d(z, x)
    cdf_p = np.array([p[z <= g].sum() for g in grid])
    cdf_x = np.searchsorted(x, grid, side="right") / x.size
    return float(np.sum(np.abs(cdf_p - cdf_x)[:-1] * np.diff(grid)))


__all__ = ["make_support", "categorical_projection", "C51Net", "RiskyChain", "C51Config", "c51_loss",
           "train_c51", "monte_carlo_returns", "wasserstein1"]
