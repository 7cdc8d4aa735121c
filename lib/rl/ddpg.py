"""Deterministic policy gradients: DPG, DDPG and TD3 for continuous actions.

Book: seed-73, seed-74, seed-75

* :func:`dpg_gradient` — the deterministic policy-gradient theorem's estimator
  ``grad_theta J = E_s[ grad_a Q(s, a)|_{a = mu(s)} . grad_theta mu_theta(s) ]``, computed as the
  two factors it names (``dQ/da`` first, then a vector-Jacobian product through the actor), so it
  can be checked against autograd of the composition ``Q(s, mu_theta(s))``.
* :func:`train_ddpg` — DDPG in one loop: actor ``mu``, critic ``Q``, their target copies updated by
  Polyak averaging (``lib.rl.nets.soft_update``), Gaussian exploration noise, a replay buffer;
  the critic regresses to :func:`ddpg_target`.
* TD3 (``DDPGConfig(td3=True)``) adds twin critics with the clipped double-Q target
  ``min(Q1', Q2')``, target-policy smoothing (clipped noise on the target action) and delayed
  actor/target updates (every ``policy_delay`` critic steps).

Both critics of TD3 are stored as one *ensemble* module (batched matrix multiplies), which halves the
Python overhead per update — this is what makes 20k Pendulum steps fit a notebook's budget on a CPU.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import pathlib
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range, eval_seed
from .envs import make_env
from .nets import mlp, soft_update
from .replay import ReplayBuffer
from .rollout import evaluate


def dpg_gradient(actor: nn.Module, q_fn, states: torch.Tensor) -> list[torch.Tensor]:
    """``grad_theta mean_s Q(s, mu_theta(s))`` via the DPG chain rule, one tensor per actor parameter.

    ``q_fn(states, actions) -> (batch,)`` is any differentiable critic (a network or a known formula).
    """
    if not isinstance(states, torch.Tensor) or states.ndim != 2:
        raise ValueError("states must be a 2-D torch tensor (batch, state_dim)")
    params = [p for p in actor.parameters() if p.requires_grad]
    with torch.no_grad():
        a0 = actor(states)
    a = a0.clone().requires_grad_(True)
    q = q_fn(states, a)
    if q.shape != (states.shape[0],):
        raise ValueError(f"q_fn must return shape ({states.shape[0]},), got {tuple(q.shape)}")
    (dq_da,) = torch.autograd.grad(q.mean(), a)                 # grad_a Q at a = mu(s)
    mu = actor(states)
    return list(torch.autograd.grad(mu, params, grad_outputs=dq_da))  # dQ/da . dmu/dtheta


class EnsembleMLP(nn.Module):
    """``k`` independent MLPs evaluated together: input (batch, in) -> output (k, batch, out)."""

    def __init__(self, k: int, sizes: Sequence[int], activation: str = "relu"):
        super().__init__()
        if k < 1 or len(sizes) < 2:
            raise ValueError("need k >= 1 and at least two layer sizes")
        self.k = int(k)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(len(sizes) - 1):
            bound = 1.0 / math.sqrt(sizes[i])   # nn.Linear's default init
            self.weights.append(nn.Parameter(torch.empty(k, sizes[i], sizes[i + 1]).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(k, 1, sizes[i + 1]).uniform_(-bound, bound)))
        self.act = {"relu": torch.relu, "tanh": torch.tanh}[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.k, *x.shape)
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < n - 1:
                h = self.act(h)
        return h


class Critics(nn.Module):
    """``n_critics`` Q-networks ``Q_i(s, a)``; ``forward`` returns shape (n_critics, batch)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256), n_critics: int = 2):
        super().__init__()
        self.net = EnsembleMLP(n_critics, [obs_dim + act_dim, *hidden, 1])

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], -1)).squeeze(-1)


class Actor(nn.Module):
    """Deterministic policy ``mu(s) = max_action * tanh(MLP(s))``."""

    def __init__(self, obs_dim: int, act_dim: int, max_action: float, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], "relu", output_activation="tanh")
        self.max_action = float(max_action)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.max_action * self.net(obs)


def ddpg_target(actor_targ: nn.Module, critics_targ: nn.Module, rewards, next_obs, terminated, gamma: float,
                max_action: float, policy_noise: float | None = None, noise_clip: float = 0.5) -> torch.Tensor:
    """The critic's regression target ``y = r + gamma (1 - terminated) min_i Q_i'(s', a')``.

    ``a' = mu'(s')`` (DDPG), or with ``policy_noise`` given (TD3's target-policy smoothing)
    ``a' = clip(mu'(s') + clip(eps, -c, c), -max_action, max_action)``, ``eps ~ N(0, sigma^2)``,
    with ``sigma = policy_noise * max_action`` and ``c = noise_clip * max_action``. The minimum
    runs over the target critics (one critic: plain DDPG; two: TD3's clipped double-Q).
    """
    with torch.no_grad():
        a2 = actor_targ(next_obs)
        if policy_noise is not None:   # target policy smoothing
            noise = (torch.randn_like(a2) * policy_noise * max_action).clamp(
                -noise_clip * max_action, noise_clip * max_action)
            a2 = (a2 + noise).clamp(-max_action, max_action)
        q2 = critics_targ(next_obs, a2).min(0).values       # clipped double-Q (min over 1 = DDPG)
        return rewards + gamma * (1.0 - terminated) * q2


@dataclasses.dataclass
class DDPGConfig:
    """Hyperparameters of :func:`train_ddpg`, with the seed (``td3=True`` switches on TD3's three
    changes). Defaults: the book's CPU setting for Pendulum-v1 (the benchmark appendix compares it
    with RL-Zoo's). Checked on construction.

    env_id : a Gymnasium id or a zero-argument function returning an env with Box actions
        (symmetric bounds ``[-max_action, max_action]``).
    total_steps : environment steps. Pendulum swings up within 5k–20k.
    td3 : twin critics with the clipped double-Q target, target-policy smoothing and delayed
        actor updates (Fujimoto et al. 2018); False is DDPG (Lillicrap et al. 2016).
    learning_starts : steps of uniformly random actions before the first update (TD3 paper: 25k
        on MuJoCo; 1k suffices on Pendulum).
    batch_size : transitions per update (Spinning Up: 100; TD3 paper: 256).
    gamma : discount factor in [0, 1] (Zoo Pendulum: 0.98; typical 0.99).
    tau : Polyak factor of the target updates, in (0, 1] (TD3 paper and Spinning Up: 0.005).
    actor_lr, critic_lr : Adam step sizes (1e-3 in the TD3 paper).
    hidden : hidden widths of the actor and of each critic ((256, 256) in the TD3 paper; (64, 64)
        suffices on Pendulum).
    expl_noise : std of the Gaussian exploration noise, as a fraction of ``max_action`` (0.1).
    policy_noise : TD3's target-smoothing std, a fraction of ``max_action`` (0.2).
    noise_clip : TD3's target-smoothing clip, a fraction of ``max_action`` (0.5).
    policy_delay : TD3: actor and targets move every ``policy_delay`` critic steps (2).
    buffer_size : replay capacity (1e5–1e6; capped at ``total_steps``).
    eval_every : steps between deterministic evaluations (and one at the end); eval_episodes :
        episodes each, seeded from :func:`lib.runs.eval_seed` of ``seed``.
    stop_return : stop after an evaluation whose mean return reaches this (None: never).
    log_every : steps between the rows of critic diagnostics in ``run.log.updates``.
    seed : seeds torch (initialisation, smoothing noise), the acting and replay generator, the
        environment and its action space (random warm-up actions).
    """

    env_id: object = "Pendulum-v1"
    total_steps: int = 20_000
    td3: bool = True
    learning_starts: int = 1_000
    batch_size: int = 256
    gamma: float = 0.98
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    hidden: tuple = (256, 256)
    expl_noise: float = 0.1
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    buffer_size: int = 200_000
    eval_every: int = 2_000
    eval_episodes: int = 10
    stop_return: float | None = None
    log_every: int = 100
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.env_id, str) or callable(self.env_id)):
            raise TypeError(f"DDPGConfig.env_id must be a Gymnasium id or a function returning an env, "
                            f"got {type(self.env_id).__name__}")
        check_int(self, "total_steps", "batch_size", "policy_delay", "buffer_size", "eval_every",
                  "eval_episodes", "log_every")
        check_int(self, "learning_starts", "seed", minimum=0)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_open=True)
        check_positive(self, "actor_lr", "critic_lr")
        for name in ("expl_noise", "policy_noise", "noise_clip"):
            check_range(self, name, 0.0, math.inf)
        self.hidden = tuple(self.hidden)


@dataclasses.dataclass
class DDPGRun(Run):
    """What :func:`train_ddpg` returns: ``config``, ``log`` (evaluations, training episodes, a row
    of ``critic_loss``/``q_mean`` every ``log_every`` steps, wall time), the trained ``actor`` and
    ``critics`` (one for DDPG, two for TD3), and the action bound ``max_action``."""

    actor: Actor = None
    critics: Critics = None
    max_action: float = 1.0

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        """The deterministic policy ``mu(s)`` (clipped to the bounds) for a batch of observations."""
        a = self.actor(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy()
        return np.clip(a, -self.max_action, self.max_action).astype(np.float32)


def train_ddpg(cfg: DDPGConfig | None = None, progress: bool = False) -> DDPGRun:
    """Train DDPG or TD3 on ``cfg.env_id`` (Box actions); returns a :class:`DDPGRun`.

    Uniform random actions for the first ``learning_starts`` steps, then ``mu(s)`` + Gaussian
    noise; one critic step per environment step towards :func:`ddpg_target`; the actor ascends
    ``Q_1(s, mu(s))`` and the targets follow by Polyak averaging every ``policy_delay`` critic
    steps (TD3) or every step (DDPG). Evaluates every ``eval_every`` steps and at the end.
    """
    cfg = cfg or DDPGConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = make_env(cfg.env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"DDPG/TD3 need a continuous (Box) action space, got {env.action_space}")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    max_action = float(env.action_space.high[0])
    actor = Actor(obs_dim, act_dim, max_action, cfg.hidden)
    critics = Critics(obs_dim, act_dim, cfg.hidden, 2 if cfg.td3 else 1)
    actor_targ = copy.deepcopy(actor).requires_grad_(False)
    critics_targ = copy.deepcopy(critics).requires_grad_(False)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=cfg.actor_lr, foreach=True)
    critic_opt = torch.optim.Adam(critics.parameters(), lr=cfg.critic_lr, foreach=True)
    buf = ReplayBuffer(min(cfg.buffer_size, cfg.total_steps), (obs_dim,), seed=cfg.seed, action_shape=(act_dim,),
                       action_dtype=np.float32)
    run = DDPGRun(cfg, TrainLog(), actor, critics, max_action)
    delay = cfg.policy_delay if cfg.td3 else 1
    smoothing = cfg.policy_noise if cfg.td3 else None
    env.action_space.seed(cfg.seed)
    obs, _ = env.reset(seed=cfg.seed)
    ep_ret, n_updates = 0.0, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.total_steps, desc="TD3" if cfg.td3 else "DDPG", unit="step", mininterval=1.0)
    with Stopwatch(run.log):
        for step in range(1, cfg.total_steps + 1):
            # act: random warm-up, then mu(s) plus Gaussian exploration noise
            if step <= cfg.learning_starts:
                a = env.action_space.sample()
            else:
                with torch.no_grad():
                    a = actor(torch.as_tensor(obs[None], dtype=torch.float32)).numpy()
                if cfg.expl_noise > 0:
                    a = a + rng.normal(0, cfg.expl_noise * max_action, size=a.shape)
                a = np.clip(a, -max_action, max_action).astype(np.float32)[0]
            next_obs, r, term, trunc, _ = env.step(a)
            buf.add(obs, a, r, next_obs, float(term))
            ep_ret += r
            obs = next_obs
            if term or trunc:
                run.log.record_episode(step, ep_ret)
                ep_ret = 0.0
                obs, _ = env.reset()
            if step > cfg.learning_starts:
                b = buf.sample(cfg.batch_size, rng)
                o, act, rew, o2, done = (torch.as_tensor(b[k])
                                         for k in ("obs", "actions", "rewards", "next_obs", "dones"))
                # critic(s): regress every Q_i(s, a) to the one target y
                y = ddpg_target(actor_targ, critics_targ, rew, o2, done, cfg.gamma, max_action, smoothing,
                                cfg.noise_clip)
                q = critics(o, act)                                   # (n_critics, batch)
                critic_loss = (q - y).pow(2).mean(1).sum()
                critic_opt.zero_grad()
                critic_loss.backward()
                critic_opt.step()
                n_updates += 1
                # actor and targets: every `delay` critic steps, ascend Q_1(s, mu(s)), then Polyak
                if n_updates % delay == 0:
                    actor_loss = -critics(o, actor(o))[0].mean()
                    actor_opt.zero_grad()
                    actor_loss.backward()
                    actor_opt.step()
                    soft_update(actor_targ, actor, cfg.tau)
                    soft_update(critics_targ, critics, cfg.tau)
                if step % cfg.log_every == 0:
                    run.log.record_update(step, critic_loss=critic_loss.item(), q_mean=q[0].mean().item(),
                                          actor_updated=float(n_updates % delay == 0))
            if bar is not None:
                bar.update(1)
            if step % cfg.eval_every == 0 or step == cfg.total_steps:
                mean = run.log.record_eval(step, lambda: evaluate(run.act, cfg.env_id, cfg.eval_episodes,
                                                                  eval_seed(cfg.seed)))
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    break
    if bar is not None:
        bar.close()
    env.close()
    return run


def save_agent(run: DDPGRun, directory, metadata: dict) -> None:
    """Write ``model.safetensors`` (actor + critics) and ``meta.json`` (config, metadata) into ``directory``."""
    from safetensors.torch import save_file

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {f"actor.{k}": v for k, v in run.actor.state_dict().items()}
    state.update({f"critics.{k}": v for k, v in run.critics.state_dict().items()})
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    cfg = dataclasses.asdict(run.config)
    if not isinstance(cfg["env_id"], str):
        raise ValueError("only agents trained on a registered Gymnasium id can be saved with their config")
    meta = {"config": cfg, **metadata}
    (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_agent(directory) -> tuple[DDPGRun, dict]:
    """Rebuild a run saved by :func:`save_agent` (safetensors: no pickle; an empty log);
    returns ``(run, meta)``."""
    from safetensors.torch import load_file

    d = pathlib.Path(directory)
    meta = json.loads((d / "meta.json").read_text())
    cfg = DDPGConfig(**meta["config"])
    env = make_env(cfg.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    max_action = float(env.action_space.high[0])
    env.close()
    run = DDPGRun(cfg, TrainLog(), Actor(obs_dim, act_dim, max_action, cfg.hidden),
                  Critics(obs_dim, act_dim, cfg.hidden, 2 if cfg.td3 else 1), max_action)
    state = load_file(str(d / "model.safetensors"))
    run.actor.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("actor.")})
    run.critics.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("critics.")})
    return run, meta


__all__ = ["dpg_gradient", "EnsembleMLP", "Critics", "Actor", "ddpg_target", "DDPGConfig", "DDPGRun",
           "train_ddpg", "save_agent", "load_agent"]
