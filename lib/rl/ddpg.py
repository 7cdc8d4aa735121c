"""Deterministic policy gradients: DPG, DDPG and TD3 for continuous actions.

* :func:`dpg_gradient` — the deterministic policy-gradient theorem's estimator
  ``grad_theta J = E_s[ grad_a Q(s, a)|_{a = mu(s)} . grad_theta mu_theta(s) ]``, computed as the
  two factors it names (``dQ/da`` first, then a vector-Jacobian product through the actor), so it
  can be checked against autograd of the composition ``Q(s, mu_theta(s))``.
* :class:`DDPGAgent` — actor ``mu``, critic ``Q``, their target copies updated by Polyak averaging
  (``lib.rl.nets.soft_update``), Gaussian exploration noise, a replay buffer.
* TD3 (``DDPGAgent(..., td3=True)``) adds twin critics with the clipped double-Q target
  ``min(Q1', Q2')``, target-policy smoothing (clipped noise on the target action) and delayed
  actor/target updates (every ``policy_delay`` critic steps).

Both critics of TD3 are stored as one *ensemble* module (batched matrix multiplies), which halves the
Python overhead per update — this is what makes 20k Pendulum steps fit a notebook's budget on a CPU.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .nets import mlp, soft_update
from .replay import ReplayBuffer
from .rollout import EvalLog


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


@dataclasses.dataclass
class DDPGConfig:
    """DDPG / TD3 hyperparameters (``td3=True`` switches on the three TD3 changes)."""

    env_id: str = "Pendulum-v1"
    total_steps: int = 20_000
    td3: bool = True
    learning_starts: int = 1_000
    batch_size: int = 256
    gamma: float = 0.98
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    hidden: tuple = (256, 256)
    expl_noise: float = 0.1          # std of the Gaussian exploration noise, as a fraction of max_action
    policy_noise: float = 0.2        # TD3 target smoothing std (fraction of max_action)
    noise_clip: float = 0.5          # TD3 target smoothing clip (fraction of max_action)
    policy_delay: int = 2            # TD3: actor and targets updated every policy_delay critic steps
    buffer_size: int = 200_000
    eval_every: int = 2_000
    eval_episodes: int = 10

    def __post_init__(self):
        for name in ("total_steps", "batch_size", "policy_delay", "buffer_size", "eval_every", "eval_episodes"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.learning_starts < 0:
            raise ValueError("learning_starts must be >= 0")
        if not 0 <= self.gamma <= 1 or not 0 < self.tau <= 1:
            raise ValueError("need gamma in [0, 1] and tau in (0, 1]")
        if min(self.expl_noise, self.policy_noise, self.noise_clip) < 0:
            raise ValueError("noise scales must be >= 0")


class DDPGAgent:
    """DDPG (``cfg.td3=False``: one critic, no smoothing, no delay) or TD3 (``cfg.td3=True``)."""

    def __init__(self, obs_dim: int, act_dim: int, max_action: float, cfg: DDPGConfig):
        self.cfg = cfg
        self.max_action = float(max_action)
        self.actor = Actor(obs_dim, act_dim, max_action, cfg.hidden)
        self.critics = Critics(obs_dim, act_dim, cfg.hidden, 2 if cfg.td3 else 1)
        self.actor_targ = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_targ = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=cfg.critic_lr, foreach=True)
        self.n_updates = 0

    def act(self, obs: np.ndarray, noise_std: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
        """``mu(s)`` (+ Gaussian noise of std ``noise_std * max_action``), clipped to the action bounds."""
        with torch.no_grad():
            a = self.actor(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy()
        if noise_std > 0:
            a = a + (rng or np.random.default_rng()).normal(0, noise_std * self.max_action, size=a.shape)
        return np.clip(a, -self.max_action, self.max_action).astype(np.float32)

    def target_q(self, rew, next_obs, term) -> torch.Tensor:
        """The critic's regression target ``r + gamma (1 - terminated) Q'(s', a')``."""
        cfg = self.cfg
        with torch.no_grad():
            a2 = self.actor_targ(next_obs)
            if cfg.td3:   # target policy smoothing
                noise = (torch.randn_like(a2) * cfg.policy_noise * self.max_action).clamp(
                    -cfg.noise_clip * self.max_action, cfg.noise_clip * self.max_action)
                a2 = (a2 + noise).clamp(-self.max_action, self.max_action)
            q2 = self.critics_targ(next_obs, a2).min(0).values     # clipped double-Q (min over 1 = DDPG)
            return rew + cfg.gamma * (1.0 - term) * q2

    def update(self, batch) -> dict:
        """One critic step; the actor and targets move every ``policy_delay`` steps (TD3) or every step.

        ``batch`` is a dict from :meth:`lib.rl.replay.ReplayBuffer.sample` or a tuple of tensors
        ``(obs, act, rew, next_obs, terminated)``."""
        if isinstance(batch, dict):
            batch = tuple(torch.as_tensor(batch[k]) for k in ("obs", "actions", "rewards", "next_obs", "dones"))
        obs, act, rew, next_obs, term = batch
        y = self.target_q(rew, next_obs, term)
        q = self.critics(obs, act)                                # (n_critics, batch)
        critic_loss = (q - y).pow(2).mean(1).sum()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.n_updates += 1
        info = {"critic_loss": critic_loss.item(), "q_mean": q[0].mean().item()}
        delay = self.cfg.policy_delay if self.cfg.td3 else 1
        if self.n_updates % delay == 0:
            actor_loss = -self.critics(obs, self.actor(obs))[0].mean()   # ascend Q1(s, mu(s))
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            soft_update(self.actor_targ, self.actor, self.cfg.tau)
            soft_update(self.critics_targ, self.critics, self.cfg.tau)
            info["actor_loss"] = actor_loss.item()
        return info

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"actor.{k}": v for k, v in self.actor.state_dict().items()}
        out.update({f"critics.{k}": v for k, v in self.critics.state_dict().items()})
        return out


@dataclasses.dataclass
class OffPolicyLog(EvalLog):
    """Evaluations (from :class:`lib.rl.rollout.EvalLog`), episodes, critic diagnostics, wall time."""

    episode_returns: list = dataclasses.field(default_factory=list)
    episode_end_steps: list = dataclasses.field(default_factory=list)
    critic_loss: list = dataclasses.field(default_factory=list)
    q_mean: list = dataclasses.field(default_factory=list)
    wall_time: float = 0.0


def evaluate_agent(agent: DDPGAgent, env_id: str, n_episodes: int = 10, seed: int = 10_000) -> np.ndarray:
    """Returns of the deterministic policy ``mu`` on ``n_episodes`` seeded episodes (run in parallel)."""
    from .rollout import evaluate

    return evaluate(lambda o: agent.act(o), env_id, n_episodes, seed)


def train_ddpg(cfg: DDPGConfig | None = None, seed: int = 0, progress: bool = False,
               stop_at: float | None = None) -> tuple[DDPGAgent, OffPolicyLog]:
    """Train DDPG or TD3 on ``cfg.env_id`` (a Box-action gymnasium env); returns ``(agent, log)``.

    Uniform random actions for the first ``learning_starts`` steps, then ``mu(s)`` + Gaussian noise,
    one gradient step per environment step. Evaluates every ``cfg.eval_every`` steps.
    """
    import gymnasium as gym

    cfg = cfg or DDPGConfig()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make(cfg.env_id)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"DDPG/TD3 need a continuous (Box) action space, got {env.action_space}")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    max_action = float(env.action_space.high[0])
    agent = DDPGAgent(obs_dim, act_dim, max_action, cfg)
    buf = ReplayBuffer(min(cfg.buffer_size, cfg.total_steps), (obs_dim,), seed=seed, action_shape=(act_dim,),
                       action_dtype=np.float32)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    log = OffPolicyLog()
    ep_ret = 0.0
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.total_steps, desc="TD3" if cfg.td3 else "DDPG", unit="step", mininterval=1.0)
    for step in range(1, cfg.total_steps + 1):
        if step <= cfg.learning_starts:
            a = env.action_space.sample()
        else:
            a = agent.act(obs[None], cfg.expl_noise, rng)[0]
        next_obs, r, term, trunc, _ = env.step(a)
        buf.add(obs, a, r, next_obs, float(term))
        ep_ret += r
        obs = next_obs
        if term or trunc:
            log.episode_returns.append(float(ep_ret))
            log.episode_end_steps.append(step)
            ep_ret = 0.0
            obs, _ = env.reset()
        if step > cfg.learning_starts:
            info = agent.update(buf.sample(cfg.batch_size, rng))
            if step % 100 == 0:
                log.critic_loss.append(info["critic_loss"])
                log.q_mean.append(info["q_mean"])
        if bar is not None:
            bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.total_steps:
            mean = log.record_eval(step, lambda: evaluate_agent(agent, cfg.env_id, cfg.eval_episodes,
                                                                seed=10_000 + 97 * seed))
            if stop_at is not None and mean >= stop_at:
                break
    if bar is not None:
        bar.close()
    env.close()
    log.wall_time = time.perf_counter() - t0
    return agent, log


def save_agent(agent: DDPGAgent, directory, metadata: dict) -> None:
    """Write ``model.safetensors`` (actor + critics) and ``meta.json`` (config, metadata) into ``directory``."""
    import json
    import pathlib

    from safetensors.torch import save_file

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in agent.state_dict().items()}, str(d / "model.safetensors"))
    meta = {"config": dataclasses.asdict(agent.cfg), **metadata}
    (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_agent(directory) -> tuple[DDPGAgent, dict]:
    """Rebuild an agent saved by :func:`save_agent` (safetensors: no pickle); returns ``(agent, meta)``."""
    import json
    import pathlib

    import gymnasium as gym
    from safetensors.torch import load_file

    d = pathlib.Path(directory)
    meta = json.loads((d / "meta.json").read_text())
    c = dict(meta["config"])
    c["hidden"] = tuple(c["hidden"])
    cfg = DDPGConfig(**c)
    env = gym.make(cfg.env_id)
    agent = DDPGAgent(env.observation_space.shape[0], env.action_space.shape[0], float(env.action_space.high[0]), cfg)
    env.close()
    state = load_file(str(d / "model.safetensors"))
    agent.actor.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("actor.")})
    agent.critics.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("critics.")})
    return agent, meta


__all__ = ["dpg_gradient", "EnsembleMLP", "Critics", "Actor", "DDPGConfig", "DDPGAgent",
           "OffPolicyLog", "evaluate_agent", "train_ddpg", "save_agent", "load_agent"]
