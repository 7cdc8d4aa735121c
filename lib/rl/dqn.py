"""Deep Q-Networks: the two network shapes, the (Double) DQN target, and a CPU-friendly
training loop with replay, a target network and a linear epsilon schedule.

Shapes
------
* :class:`QNetAllActions`  ``Q(s) -> R^A``: one forward pass scores every action.
* :class:`QNetStateAction` ``Q(s, a) -> R``: the action is an input (one-hot), so choosing the
  greedy action needs ``A`` forward passes (one per action). Both count their passes in
  ``forward_passes`` so the difference can be measured.

Target (``dones`` = terminated, not time-limit truncation)::

    DQN:         y = r + gamma (1 - done) max_a' Q_target(s', a')
    Double DQN:  y = r + gamma (1 - done) Q_target(s', argmax_a' Q_online(s', a'))
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time

import numpy as np
import torch
from torch import nn

from .nets import mlp
from .replay import ReplayBuffer
from .returns import check_gamma


# ------------------------------------------------------------------ networks
class QNetAllActions(nn.Module):
    """``Q(s) -> (B, A)``: all action values from one pass."""

    def __init__(self, obs_dim: int, n_actions: int, hidden=(64, 64), activation: str = "relu"):
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(f"obs_dim and n_actions must be positive, got {obs_dim}, {n_actions}")
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.net = mlp([obs_dim, *hidden, n_actions], activation=activation)
        self.forward_passes = 0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        self.forward_passes += 1
        return self.net(obs)

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """All action values, shape (B, A)."""
        return self(obs)


class QNetStateAction(nn.Module):
    """``Q(s, a) -> (B,)``: the action enters as a one-hot input; all values need A passes."""

    def __init__(self, obs_dim: int, n_actions: int, hidden=(64, 64), activation: str = "relu"):
        super().__init__()
        if obs_dim < 1 or n_actions < 1:
            raise ValueError(f"obs_dim and n_actions must be positive, got {obs_dim}, {n_actions}")
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.net = mlp([obs_dim + n_actions, *hidden, 1], activation=activation)
        self.forward_passes = 0

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.forward_passes += 1
        onehot = nn.functional.one_hot(actions.long(), self.n_actions).to(obs.dtype)
        return self.net(torch.cat([obs, onehot], dim=-1)).squeeze(-1)

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """All action values, shape (B, A), by one forward pass per action."""
        b = obs.shape[0]
        cols = [self(obs, torch.full((b,), a, dtype=torch.long)) for a in range(self.n_actions)]
        return torch.stack(cols, dim=-1)


def make_q_network(kind: str, obs_dim: int, n_actions: int, hidden=(64, 64)) -> nn.Module:
    """``kind="all"`` -> :class:`QNetAllActions`, ``kind="sa"`` -> :class:`QNetStateAction`."""
    if kind == "all":
        return QNetAllActions(obs_dim, n_actions, hidden)
    if kind == "sa":
        return QNetStateAction(obs_dim, n_actions, hidden)
    raise ValueError(f"kind must be 'all' (Q(s)->all actions) or 'sa' (Q(s,a)->scalar), got {kind!r}")


def q_of_actions(net: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``Q(s_i, a_i)`` for a batch, shape (B,), with either network shape (one pass each)."""
    if isinstance(net, QNetStateAction):
        return net(obs, actions)
    return net(obs).gather(1, actions.long().view(-1, 1)).squeeze(1)


# ------------------------------------------------------------------ targets and schedule
def dqn_targets(rewards, dones, next_q_target, gamma: float, next_q_online=None) -> torch.Tensor:
    """Bellman targets ``y`` of shape (B,).

    ``next_q_target``: (B, A) target-network values at ``s'``; ``next_q_online``: (B, A) online
    values at ``s'`` — when given, the action is chosen by the online net and evaluated by the
    target net (Double DQN). ``dones`` (B,) is 1 where the episode terminated.
    """
    gamma = check_gamma(gamma)
    r = torch.as_tensor(rewards, dtype=torch.float32)
    d = torch.as_tensor(dones, dtype=torch.float32)
    qt = torch.as_tensor(next_q_target, dtype=torch.float32)
    if r.ndim != 1 or d.shape != r.shape:
        raise ValueError(f"rewards and dones must be 1-D of equal length, got {tuple(r.shape)}, {tuple(d.shape)}")
    if qt.ndim != 2 or qt.shape[0] != r.shape[0]:
        raise ValueError(f"next_q_target must have shape (B, A) with B={r.shape[0]}, got {tuple(qt.shape)}")
    if torch.any((d != 0) & (d != 1)):
        raise ValueError("dones must contain only 0/1")
    if next_q_online is None:
        nxt = qt.max(dim=1).values
    else:
        qo = torch.as_tensor(next_q_online, dtype=torch.float32)
        if qo.shape != qt.shape:
            raise ValueError(f"next_q_online must have the shape of next_q_target {tuple(qt.shape)}, got {tuple(qo.shape)}")
        nxt = qt.gather(1, qo.argmax(dim=1, keepdim=True)).squeeze(1)
    return r + gamma * (1.0 - d) * nxt


def linear_epsilon(step: int, start: float = 1.0, end: float = 0.05, decay_steps: int = 10_000) -> float:
    """Exploration rate decaying linearly from ``start`` to ``end`` over ``decay_steps``, then flat."""
    if not (0 <= end <= 1 and 0 <= start <= 1):
        raise ValueError(f"start and end must be in [0, 1], got {start}, {end}")
    if decay_steps < 1:
        raise ValueError(f"decay_steps must be >= 1, got {decay_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    frac = min(1.0, step / decay_steps)
    return float(start + frac * (end - start))


# ------------------------------------------------------------------ config, training, evaluation
@dataclasses.dataclass
class DQNConfig:
    """Hyperparameters. Defaults follow the RL-Zoo setting for CartPole-v1 (256x256 MLP, lr 2.3e-3,
    128 updates every 256 steps, epsilon 1 -> 0.04 over 8k steps)."""

    env_id: object = "CartPole-v1"   # a Gymnasium id, or a zero-argument function returning an env
    total_steps: int = 100_000
    kind: str = "all"                # "all": Q(s)->R^A, "sa": Q(s,a)->R
    double: bool = False
    hidden: tuple = (256, 256)
    lr: float = 2.3e-3
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    train_freq: int = 256            # env steps between training phases
    gradient_steps: int = 128        # updates per training phase
    target_update_interval: int = 256  # env steps between hard target copies
    eps_start: float = 1.0
    eps_end: float = 0.04
    eps_decay_steps: int = 8_000
    max_grad_norm: float = 10.0
    eval_every: int = 2_048
    eval_episodes: int = 10
    stop_return: float | None = 475.0  # stop once an evaluation reaches this mean (None: never)
    seed: int = 0

    def validate(self) -> "DQNConfig":
        if self.kind not in ("all", "sa"):
            raise ValueError(f"kind must be 'all' or 'sa', got {self.kind!r}")
        for name in ("total_steps", "batch_size", "buffer_size", "train_freq", "gradient_steps",
                     "target_update_interval", "eval_every", "eval_episodes", "eps_decay_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.learning_starts < 0:
            raise ValueError("learning_starts must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        check_gamma(self.gamma)
        return self


@dataclasses.dataclass
class DQNResult:
    q_net: nn.Module
    config: DQNConfig
    eval_steps: list
    eval_returns: list          # mean undiscounted evaluation return at each evaluation
    eval_q0: list               # mean max_a Q(s_0, a) over the evaluation episodes' start states
    eval_g0: list               # mean realised discounted return from those start states
    episode_returns: list       # training episodes' returns (with exploration)
    episode_end_steps: list
    steps_to_threshold: int | None
    env_steps: int
    wall_time_s: float          # total, evaluations included
    eval_time_s: float = 0.0    # time spent in evaluations (subtract for the training-only time)

    def steps_to(self, threshold: float) -> int | None:
        """Environment steps at the first evaluation whose mean return reached ``threshold``."""
        for s, r in zip(self.eval_steps, self.eval_returns):
            if r >= threshold:
                return s
        return None


def make_env(env_id):
    """``gym.make(env_id)`` for a string, ``env_id()`` for a function."""
    import gymnasium as gym

    if isinstance(env_id, str):
        return gym.make(env_id)
    if callable(env_id):
        return env_id()
    raise TypeError(f"env_id must be a Gymnasium id or a function returning an env, got {type(env_id).__name__}")


def _obs_tensor(obs) -> torch.Tensor:
    return torch.as_tensor(np.asarray(obs, dtype=np.float32))


@torch.no_grad()
def evaluate_q_policy(q_net: nn.Module, env_id: str = "CartPole-v1", n_episodes: int = 10, seed: int = 10_000,
                      gamma: float = 0.99, epsilon: float = 0.0) -> dict:
    """Run ``n_episodes`` greedy (or epsilon-greedy) episodes in parallel with batched forward passes.

    Returns a dict with ``returns`` (n,) undiscounted, ``disc_returns`` (n,) realised discounted
    returns from the start state, and ``q0`` (n,) the network's ``max_a Q(s_0, a)``.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    gamma = check_gamma(gamma)
    rng = np.random.default_rng(seed)
    envs = [make_env(env_id) for _ in range(n_episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)]).astype(np.float32)
    q0 = q_net.q_values(_obs_tensor(obs)).max(dim=1).values.numpy().astype(np.float64)
    active = np.ones(n_episodes, dtype=bool)
    ret = np.zeros(n_episodes)
    disc = np.zeros(n_episodes)
    t = 0
    while active.any():
        idx = np.flatnonzero(active)
        acts = q_net.q_values(_obs_tensor(obs[idx])).argmax(dim=1).numpy()
        if epsilon > 0:
            rand = rng.random(len(idx)) < epsilon
            acts[rand] = rng.integers(0, q_net.n_actions, size=int(rand.sum()))
        for j, i in enumerate(idx):
            o, r, term, trunc, _ = envs[i].step(int(acts[j]))
            ret[i] += r
            disc[i] += gamma ** t * r
            obs[i] = o
            if term or trunc:
                active[i] = False
        t += 1
    for e in envs:
        e.close()
    return {"returns": ret, "disc_returns": disc, "q0": q0}


def train_dqn(config: DQNConfig | None = None, progress: bool = False, q_net: nn.Module | None = None) -> DQNResult:
    """Train (Double) DQN on a discrete-action Gymnasium environment. Returns a :class:`DQNResult`.

    One environment, epsilon-greedy acting; every ``train_freq`` steps, ``gradient_steps``
    Huber-loss updates on replayed batches; hard target copies every ``target_update_interval``
    steps; greedy evaluation every ``eval_every`` steps (stopping early at ``stop_return``).
    """
    import gymnasium as gym

    cfg = (config or DQNConfig()).validate()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = make_env(cfg.env_id)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"DQN needs a discrete action space, {cfg.env_id} has {env.action_space}")
    obs_dim, n_actions = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    online = q_net if q_net is not None else make_q_network(cfg.kind, obs_dim, n_actions, cfg.hidden)
    target = make_q_network(cfg.kind, obs_dim, n_actions, cfg.hidden)
    target.load_state_dict(online.state_dict())
    target.requires_grad_(False)
    try:    # the fused kernel removes most of Adam's per-parameter Python overhead on CPU
        opt = torch.optim.Adam(online.parameters(), lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch / unsupported device
        opt = torch.optim.Adam(online.parameters(), lr=cfg.lr, foreach=True)
    buf = ReplayBuffer(cfg.buffer_size, (obs_dim,), seed=cfg.seed)
    obs, _ = env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    ep_ret, ep_returns, ep_ends = 0.0, [], []
    ev_steps, ev_ret, ev_q0, ev_g0 = [], [], [], []
    reached = None
    iterator = range(1, cfg.total_steps + 1)
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="DQN" + (" (double)" if cfg.double else ""), mininterval=1.0)
    step, eval_time = 0, 0.0
    for step in iterator:
        eps = linear_epsilon(step - 1, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
        if rng.random() < eps:
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(online.q_values(_obs_tensor(obs)[None]).argmax(dim=1).item())
        nobs, r, term, trunc, _ = env.step(action)
        buf.add(obs, action, r, nobs, float(term))
        ep_ret += r
        obs = nobs
        if term or trunc:
            ep_returns.append(ep_ret)
            ep_ends.append(step)
            ep_ret = 0.0
            obs, _ = env.reset()
        if step > cfg.learning_starts and step % cfg.train_freq == 0:
            for _ in range(cfg.gradient_steps):
                b = buf.sample(cfg.batch_size)
                o, nx = torch.from_numpy(b["obs"]), torch.from_numpy(b["next_obs"])
                a = torch.from_numpy(b["actions"])
                with torch.no_grad():   # same formula as dqn_targets, without its input checks (hot loop)
                    qt = target.q_values(nx)
                    if cfg.double:
                        nxt = qt.gather(1, online.q_values(nx).argmax(1, keepdim=True)).squeeze(1)
                    else:
                        nxt = qt.max(1).values
                    y = torch.from_numpy(b["rewards"]) + cfg.gamma * (1.0 - torch.from_numpy(b["dones"])) * nxt
                q = q_of_actions(online, o, a)
                loss = nn.functional.smooth_l1_loss(q, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(online.parameters(), cfg.max_grad_norm, foreach=True)
                opt.step()
        if step % cfg.target_update_interval == 0:
            target.load_state_dict(online.state_dict())
        if step % cfg.eval_every == 0:
            te = time.perf_counter()
            ev = evaluate_q_policy(online, cfg.env_id, cfg.eval_episodes, seed=10_000 + step, gamma=cfg.gamma)
            ev_steps.append(step)
            ev_ret.append(float(ev["returns"].mean()))
            ev_q0.append(float(ev["q0"].mean()))
            ev_g0.append(float(ev["disc_returns"].mean()))
            eval_time += time.perf_counter() - te
            if cfg.stop_return is not None and ev_ret[-1] >= cfg.stop_return:
                reached = step
                break
    env.close()
    return DQNResult(online, cfg, ev_steps, ev_ret, ev_q0, ev_g0, ep_returns, ep_ends, reached, step,
                     time.perf_counter() - t0, eval_time)


# ------------------------------------------------------------------ checkpoints
def save_q_network(q_net: nn.Module, directory, config: DQNConfig, metrics: dict, command: str) -> pathlib.Path:
    """Write ``model.safetensors`` and ``config.json`` (config, metrics, command) to ``directory``."""
    from safetensors.torch import save_file

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in q_net.state_dict().items()}, str(directory / "model.safetensors"))
    cfg = dataclasses.asdict(config)
    cfg["hidden"] = list(cfg["hidden"])
    if not isinstance(cfg["env_id"], str):
        raise ValueError("only networks trained on a registered Gymnasium id can be saved with their config")
    meta = {"config": cfg, "obs_dim": q_net.obs_dim, "n_actions": q_net.n_actions,
            "metrics": metrics, "command": command}
    (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_q_network(directory) -> tuple[nn.Module, dict]:
    """Load a network saved by :func:`save_q_network` (safetensors: no pickle). Returns (net, sidecar)."""
    from safetensors.torch import load_file

    directory = pathlib.Path(directory)
    if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
        raise FileNotFoundError(f"{directory} must hold model.safetensors and config.json")
    meta = json.loads((directory / "config.json").read_text())
    cfg = meta["config"]
    net = make_q_network(cfg["kind"], meta["obs_dim"], meta["n_actions"], tuple(cfg["hidden"]))
    net.load_state_dict(load_file(str(directory / "model.safetensors")))
    net.eval()
    return net, meta


__all__ = ["QNetAllActions", "QNetStateAction", "make_q_network", "q_of_actions", "dqn_targets",
           "linear_epsilon", "DQNConfig", "DQNResult", "evaluate_q_policy", "train_dqn",
           "save_q_network", "load_q_network", "make_env", "MaxBiasEnv"]


class MaxBiasEnv:
    """Sutton & Barto's maximisation-bias MDP with a neural-friendly observation.

    Start in A (obs ``[1, 0]``): action 0 ends the episode with reward 0; any other action moves
    to B (obs ``[0, 1]``) with reward 0. In B every action ends the episode with a reward drawn
    from ``N(mean_b, 1)``. With ``mean_b < 0`` going to B is a mistake, yet the max over noisy
    estimates of B's action values makes it look attractive.
    """

    def __init__(self, n_actions: int = 10, mean_b: float = -0.1, seed: int | None = None):
        import gymnasium as gym

        if n_actions < 2:
            raise ValueError(f"n_actions must be >= 2, got {n_actions}")
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(int(n_actions))
        self.mean_b = float(mean_b)
        self._rng = np.random.default_rng(seed)
        self.state = 0

    def reset(self, *, seed=None, options=None):
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
        return np.array([0.0, 1.0], dtype=np.float32), float(self._rng.normal(self.mean_b, 1.0)), True, False, {}

    def close(self):
        pass


def max_estimator_bias(true_means, noise_std: float = 1.0, n_samples: int = 10, n_trials: int = 10_000,
                       seed: int = 0) -> dict:
    """The maximisation bias, measured: each action's value is estimated by the mean of ``n_samples``
    noisy draws ``N(true_means[a], noise_std^2)``.

    Returns the average over ``n_trials`` of ``max_a Qhat(a)`` (single estimator, what the DQN target
    uses), of the double estimator ``Qhat_B(argmax_a Qhat_A(a))`` (what Double DQN uses; two
    independent halves of the samples), and the true ``max_a mu(a)``.
    """
    mu = np.asarray(true_means, dtype=np.float64)
    if mu.ndim != 1 or mu.size < 1:
        raise ValueError(f"true_means must be a non-empty 1-D array, got shape {mu.shape}")
    if noise_std < 0 or n_samples < 2 or n_trials < 1:
        raise ValueError("need noise_std >= 0, n_samples >= 2 and n_trials >= 1")
    rng = np.random.default_rng(seed)
    draws = mu[None, :, None] + noise_std * rng.standard_normal((n_trials, mu.size, n_samples))
    single = draws.mean(-1).max(-1)
    half = n_samples // 2
    qa, qb = draws[..., :half].mean(-1), draws[..., half:].mean(-1)
    double = qb[np.arange(n_trials), qa.argmax(-1)]
    return {"single": float(single.mean()), "double": float(double.mean()), "true_max": float(mu.max()),
            "single_trials": single, "double_trials": double}


__all__ += ["max_estimator_bias"]
