"""Distributional RL with a categorical return distribution (C51, Bellemare, Dabney & Munos 2017).

The return ``Z(s, a)`` is modelled as a categorical distribution on a fixed support of
``N`` atoms ``z_i = v_min + i * dz``. The distributional Bellman target ``r + gamma * Z(s', a*)``
lands between atoms, so each shifted atom's mass is split between its two neighbours in
proportion to closeness (:func:`categorical_projection`); the network is trained by
cross-entropy to that projected target (:func:`c51_loss`, in the loop :func:`train_c51`).

Book: seed-63
"""
from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..runs import Run, Stopwatch, TrainLog, check_int, check_range
from .dqn import linear_epsilon
from .envs import RiskyChain, make_env
from .nets import fused_adam, mlp
from .replay import ReplayBuffer
from .returns import check_gamma


def _check_projection_inputs(p, r, d, gamma, z) -> None:
    check_gamma(gamma)
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


def make_support(v_min: float, v_max: float, n_atoms: int) -> torch.Tensor:
    """The fixed atoms ``z`` (n_atoms,), evenly spaced from ``v_min`` to ``v_max``."""
    if not v_max > v_min:
        raise ValueError(f"v_max must exceed v_min, got {v_min}, {v_max}")
    if n_atoms < 2:
        raise ValueError(f"n_atoms must be >= 2, got {n_atoms}")
    return torch.linspace(float(v_min), float(v_max), int(n_atoms), dtype=torch.float64)


def categorical_projection(next_probs, rewards, dones, gamma: float, support, check: bool = True) -> torch.Tensor:
    """Project ``r + gamma (1 - done) z`` with probabilities ``next_probs`` onto ``support``.

    next_probs : (B, N) probabilities of the next state's chosen-action distribution.
    rewards, dones : (B,). support : (N,) evenly spaced atoms.
    Returns (B, N) probabilities on the support (rows sum to 1); dtype of ``next_probs``.
    ``check=False`` skips the input checks (the training loop's hot path, on inputs it built).
    """
    p = torch.as_tensor(next_probs)
    if not torch.is_floating_point(p):
        p = p.double()
    z = torch.as_tensor(support, dtype=p.dtype)
    r = torch.as_tensor(rewards, dtype=p.dtype)
    d = torch.as_tensor(dones, dtype=p.dtype)
    if check:
        _check_projection_inputs(p, r, d, gamma, z)
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


@dataclasses.dataclass
class C51Config:
    """Hyperparameters of :func:`train_c51`, with the seed. Defaults: a small problem on a CPU
    (the C51 paper's Atari setting: 51 atoms on [-10, 10], lr 2.5e-4, 50M frames). Checked on
    construction.

    env_id : a Gymnasium id or a zero-argument function returning an env (flat Box observation,
        Discrete actions). Default: :class:`lib.rl.envs.RiskyChain` with its defaults.
    n_atoms : atoms of the fixed support (51 in the paper, hence the name).
    v_min, v_max : ends of the support; returns outside are clipped onto the end atoms, so they
        should bracket the returns the task can produce.
    gamma : discount factor in [0, 1].
    total_steps : environment steps (one update per step after ``learning_starts``).
    lr : Adam step size; lr_end : if set, the step size decays linearly from ``lr`` to ``lr_end``
        over the updates (less SGD noise in the final distributions).
    batch_size : transitions per update (32 in the paper).
    buffer_size : replay capacity in transitions.
    learning_starts : steps of acting before the first update.
    target_update_interval : steps between hard copies online -> target network.
    eps_start, eps_end, eps_decay_steps : the epsilon-greedy schedule (linear decay, then flat).
    hidden : hidden widths of the MLP.
    seed : seeds torch, the acting generator, the replay sampler and the environment.
    """

    env_id: object = RiskyChain
    n_atoms: int = 51
    v_min: float = -5.0
    v_max: float = 12.0
    gamma: float = 0.9
    total_steps: int = 6_000
    lr: float = 1e-3
    lr_end: float | None = None
    batch_size: int = 64
    buffer_size: int = 10_000
    learning_starts: int = 200
    target_update_interval: int = 100
    eps_start: float = 1.0
    eps_end: float = 0.1
    eps_decay_steps: int = 1_000
    hidden: tuple = (64, 64)
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.env_id, str) or callable(self.env_id)):
            raise TypeError(f"C51Config.env_id must be a Gymnasium id or a function returning an env, "
                            f"got {type(self.env_id).__name__}")
        check_int(self, "n_atoms", minimum=2)
        check_int(self, "total_steps", "batch_size", "buffer_size", "target_update_interval", "eps_decay_steps")
        check_int(self, "learning_starts", "seed", minimum=0)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "eps_start", 0.0, 1.0)
        check_range(self, "eps_end", 0.0, 1.0)
        for name in ("lr", "lr_end"):
            v = getattr(self, name)
            if name == "lr_end" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"C51Config.{name} must be a positive number, got {v!r}")
        if not self.v_max > self.v_min:
            raise ValueError(f"C51Config.v_max must exceed v_min, got {self.v_min}, {self.v_max}")
        self.hidden = tuple(self.hidden)


@dataclasses.dataclass
class C51Run(Run):
    """What :func:`train_c51` returns: ``config``, ``log`` (one ``loss`` row per update, training
    episodes, wall time), the trained ``net`` and its ``support`` (the atoms, float32)."""

    net: C51Net = None
    support: torch.Tensor = None


def c51_loss(net: C51Net, target_net: C51Net, batch: dict, support: torch.Tensor, gamma: float) -> torch.Tensor:
    """Cross-entropy between the projected target and the predicted distribution of the taken action.

    The target: the target network's distribution at ``s'`` for the action with the largest
    mean, projected by :func:`categorical_projection` after the shift ``r + gamma (1 - done) z``."""
    o = torch.as_tensor(batch["obs"])
    a = torch.as_tensor(batch["actions"]).long()
    with torch.no_grad():
        nprob = target_net(torch.as_tensor(batch["next_obs"]))            # (B, A, N)
        z = support.to(nprob.dtype)
        a_star = (nprob * z).sum(-1).argmax(1)
        p_next = nprob[torch.arange(len(a_star)), a_star]
        target = categorical_projection(p_next, torch.as_tensor(batch["rewards"]), torch.as_tensor(batch["dones"]),
                                        gamma, z, check=False)
    logp = torch.log_softmax(net.logits(o), dim=-1)[torch.arange(len(a)), a]
    return -(target * logp).sum(-1).mean()


def train_c51(cfg: C51Config | None = None, progress: bool = False) -> C51Run:
    """Train C51 with replay, a target network and epsilon-greedy acting on the mean of Z;
    returns a :class:`C51Run`."""
    cfg = cfg or C51Config()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = make_env(cfg.env_id)
    obs_dim, n_act = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    support = make_support(cfg.v_min, cfg.v_max, cfg.n_atoms).float()
    net, tgt = C51Net(obs_dim, n_act, cfg.n_atoms, cfg.hidden), C51Net(obs_dim, n_act, cfg.n_atoms, cfg.hidden)
    tgt.load_state_dict(net.state_dict())
    opt = fused_adam(net.parameters(), cfg.lr)
    buf = ReplayBuffer(cfg.buffer_size, (obs_dim,), seed=cfg.seed)
    run = C51Run(cfg, TrainLog(), net, support)
    obs, _ = env.reset(seed=cfg.seed)
    ep_ret = 0.0
    steps = range(cfg.total_steps)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="C51", mininterval=1.0)
    with Stopwatch(run.log):
        for step in steps:
            # act: epsilon-greedy on the mean of each action's return distribution
            if rng.random() < linear_epsilon(step, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps):
                a = int(rng.integers(n_act))
            else:
                with torch.no_grad():
                    a = int((net(torch.as_tensor(obs)[None]) * support).sum(-1).argmax(1).item())
            nobs, r, term, trunc, _ = env.step(a)
            buf.add(obs, a, r, nobs, float(term))
            ep_ret += r
            obs = nobs
            if term or trunc:
                run.log.record_episode(step + 1, ep_ret)
                ep_ret = 0.0
                obs, _ = env.reset()
            # learn: one cross-entropy step towards the projected distributional target
            if step >= cfg.learning_starts:
                if cfg.lr_end is not None:  # linear decay: less SGD noise in the final network
                    frac = (step - cfg.learning_starts) / max(1, cfg.total_steps - cfg.learning_starts)
                    for group in opt.param_groups:
                        group["lr"] = cfg.lr + frac * (cfg.lr_end - cfg.lr)
                loss = c51_loss(net, tgt, buf.sample(cfg.batch_size), support, cfg.gamma)
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.log.record_update(step + 1, loss=float(loss.detach()))
            if step % cfg.target_update_interval == 0:
                tgt.load_state_dict(net.state_dict())
    env.close()
    return run


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


__all__ = ["make_support", "categorical_projection", "C51Net", "C51Config", "C51Run", "c51_loss",
           "train_c51", "monte_carlo_returns", "wasserstein1"]
