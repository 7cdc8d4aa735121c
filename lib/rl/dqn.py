"""Deep Q-Networks: the two network shapes, the (Double) DQN target, and a CPU-friendly
training loop with replay, a target network and a linear epsilon schedule.

Book: seed-51, seed-52, seed-53

Shapes
------
* :class:`QNetAllActions`  ``Q(s) -> R^A``: one forward pass scores every action.
* :class:`QNetStateAction` ``Q(s, a) -> R``: the action is an input (one-hot), so choosing the
  greedy action needs ``A`` forward passes (one per action). Both count their passes in
  ``forward_passes`` so the difference can be measured.

Target (``dones`` = terminated, not time-limit truncation)::

    DQN:         y = r + gamma (1 - done) max_a' Q_target(s', a')
    Double DQN:  y = r + gamma (1 - done) Q_target(s', argmax_a' Q_online(s', a'))

:func:`train_dqn` is the whole algorithm in one loop (act epsilon-greedily, store, learn from a
replayed batch with :func:`dqn_targets`, copy the target network, evaluate);
``python -m lib.rl.dqn --make-checkpoint DIR`` makes the shipped CartPole network.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ..runs import EVAL_SEED_BASE, Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range
from .bandits import linear_schedule
from .envs import make_env
from .nets import fused_adam, mlp
from .replay import ReplayBuffer
from .returns import check_gamma
from .rollout import evaluate


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
    """Exploration rate decaying linearly from ``start`` to ``end`` over ``decay_steps``, then flat
    (:func:`lib.rl.bandits.linear_schedule`, the book's one linear schedule, at ``step``)."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    return linear_schedule(start, end, decay_steps)(int(step))


# ------------------------------------------------------------------ config, run, evaluation
@dataclasses.dataclass
class DQNConfig:
    """Hyperparameters of :func:`train_dqn`, with the seed. Defaults: the RL-Zoo setting for
    CartPole-v1 (rl-baselines3-zoo ``hyperparams/dqn.yml``). Checked on construction.

    env_id : a Gymnasium id (``"CartPole-v1"``) or a zero-argument function returning an env with
        a flat Box observation and Discrete actions.
    total_steps : environment steps to train for (at most; see ``stop_return``). CartPole needs
        10k–50k.
    kind : ``"all"`` — ``Q(s) -> R^A``, one pass scores every action (the DQN paper's shape);
        ``"sa"`` — ``Q(s, a) -> R``, one pass per action.
    double : use the Double DQN target (van Hasselt et al. 2016): the online net picks
        ``argmax_a' Q(s', a')``, the target net evaluates it.
    hidden : hidden layer widths of the MLP. Zoo: (256, 256); small problems: (16,)–(64,).
    lr : Adam step size. Zoo CartPole: 2.3e-3; Atari (Mnih et al. 2015): 2.5e-4 with RMSProp.
    gamma : discount factor in [0, 1]. Typically 0.99.
    batch_size : transitions per gradient step. Typically 32–256.
    buffer_size : replay capacity (transitions); the oldest are overwritten. 1e4–1e6.
    learning_starts : environment steps of acting before the first update (fills the buffer).
    train_freq : environment steps between training phases (Zoo: 256; the DQN paper: 4).
    gradient_steps : gradient steps per training phase (Zoo: 128; the DQN paper: 1).
    target_update_interval : environment steps between hard copies online -> target network
        (Zoo: 256 steps; the DQN paper: 10k).
    eps_start, eps_end, eps_decay_steps : epsilon-greedy exploration rate, decayed linearly from
        ``eps_start`` to ``eps_end`` over ``eps_decay_steps`` environment steps, then flat
        (Zoo: 1 -> 0.04 over 16% of 50k steps = 8k).
    max_grad_norm : gradient-norm clip of every update (SB3's default 10).
    eval_every : environment steps between greedy evaluations; eval_episodes : episodes each
        (evaluation ``k`` at step ``s`` resets its episodes with seeds ``EVAL_SEED_BASE + s + i``).
    stop_return : stop once an evaluation's mean return reaches this (None: never). CartPole's
        "solved" threshold is 475.
    seed : seeds torch (network init), the acting/exploration generator, the replay sampler and
        the environment.
    """

    env_id: object = "CartPole-v1"
    total_steps: int = 100_000
    kind: str = "all"
    double: bool = False
    hidden: tuple = (256, 256)
    lr: float = 2.3e-3
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    train_freq: int = 256
    gradient_steps: int = 128
    target_update_interval: int = 256
    eps_start: float = 1.0
    eps_end: float = 0.04
    eps_decay_steps: int = 8_000
    max_grad_norm: float = 10.0
    eval_every: int = 2_048
    eval_episodes: int = 10
    stop_return: float | None = 475.0
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.env_id, str) or callable(self.env_id)):
            raise TypeError(f"DQNConfig.env_id must be a Gymnasium id or a function returning an env, "
                            f"got {type(self.env_id).__name__}")
        check_choice(self, "kind", ("all", "sa"))
        check_int(self, "total_steps", "batch_size", "buffer_size", "train_freq", "gradient_steps",
                  "target_update_interval", "eval_every", "eval_episodes", "eps_decay_steps")
        check_int(self, "learning_starts", "seed", minimum=0)
        check_positive(self, "lr", "max_grad_norm")
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "eps_start", 0.0, 1.0)
        check_range(self, "eps_end", 0.0, 1.0)
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                                  for h in self.hidden):
            raise ValueError(f"DQNConfig.hidden must be a non-empty tuple of positive widths, got {self.hidden!r}")


@dataclasses.dataclass
class DQNRun(Run):
    """What :func:`train_dqn` returns: ``config``, ``log`` (a :class:`lib.runs.TrainLog`: evaluations,
    training episodes, one loss/Q row per training phase, wall time), the trained ``q_net``, and
    two diagnostics per evaluation: ``eval_q0`` the mean of ``max_a Q(s_0, a)`` over the evaluation
    episodes' start states, ``eval_g0`` the mean discounted return realised from them."""

    q_net: nn.Module = None
    eval_q0: list = dataclasses.field(default_factory=list)
    eval_g0: list = dataclasses.field(default_factory=list)
    env_steps: int = 0


def _obs_tensor(obs) -> torch.Tensor:
    return torch.as_tensor(np.asarray(obs, dtype=np.float32))


class _DiscountedReturn(gym.Wrapper):
    """Adds up the discounted return of the wrapped env's *first* episode in ``g``."""

    def __init__(self, env, gamma: float):
        super().__init__(env)
        self.gamma, self.g, self.t, self.done = gamma, 0.0, 0, False

    def step(self, action):
        out = self.env.step(action)
        if not self.done:
            self.g += self.gamma ** self.t * float(out[1])
            self.t += 1
            self.done = bool(out[2] or out[3])
        return out


@torch.no_grad()
def evaluate_q_policy(q_net: nn.Module, env_id="CartPole-v1", n_episodes: int = 10, seed: int = EVAL_SEED_BASE,
                      gamma: float = 0.99) -> dict:
    """Greedy episodes of ``q_net`` by :func:`lib.rl.rollout.evaluate` (episode ``i`` reset with
    ``seed + i``), with DQN's two extra diagnostics.

    Returns a dict: ``returns`` (n,) undiscounted (what ``evaluate`` returns), ``disc_returns`` (n,)
    the realised discounted returns from the start states, and ``q0`` (n,) the network's
    ``max_a Q(s_0, a)`` there — their gap is the overestimation the Double DQN section measures.
    The discounted returns need the rewards, which ``evaluate`` does not expose: each episode's
    env is wrapped to add them up.
    """
    gamma = check_gamma(gamma)
    made, q0 = [], []

    def make():
        made.append(_DiscountedReturn(make_env(env_id), gamma))
        return made[-1]

    def visit(obs, alive):
        if not q0:     # the first call sees the start states
            q0.append(q_net.q_values(_obs_tensor(obs)).max(dim=1).values.numpy().astype(np.float64))

    def greedy(obs):
        return q_net.q_values(_obs_tensor(obs)).argmax(dim=1).numpy()

    returns = evaluate(greedy, make, n_episodes, seed, visit=visit)
    return {"returns": returns, "disc_returns": np.array([e.g for e in made]), "q0": q0[0]}


# ------------------------------------------------------------------ the training loop
def train_dqn(cfg: DQNConfig | None = None, progress: bool = False) -> DQNRun:
    """Train (Double) DQN on a discrete-action environment; returns a :class:`DQNRun`.

    One environment, epsilon-greedy acting; every ``train_freq`` steps, ``gradient_steps``
    Huber-loss updates towards :func:`dqn_targets` on replayed batches; hard target copies every
    ``target_update_interval`` steps; greedy evaluation every ``eval_every`` steps (stopping early
    once it reaches ``stop_return``).
    """
    cfg = cfg or DQNConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = make_env(cfg.env_id)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"DQN needs a discrete action space, {cfg.env_id} has {env.action_space}")
    obs_dim, n_actions = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    online = make_q_network(cfg.kind, obs_dim, n_actions, cfg.hidden)
    target = make_q_network(cfg.kind, obs_dim, n_actions, cfg.hidden)
    target.load_state_dict(online.state_dict())
    target.requires_grad_(False)
    opt = fused_adam(online.parameters(), cfg.lr)
    buf = ReplayBuffer(cfg.buffer_size, (obs_dim,), seed=cfg.seed)
    run = DQNRun(cfg, TrainLog(), online)
    obs, _ = env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    ep_ret = 0.0
    steps = range(1, cfg.total_steps + 1)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="DQN" + (" (double)" if cfg.double else ""), mininterval=1.0)
    with Stopwatch(run.log):
        for step in steps:
            # act: epsilon-greedy on the online network
            eps = linear_epsilon(step - 1, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
            if rng.random() < eps:
                action = int(rng.integers(n_actions))
            else:
                with torch.no_grad():
                    action = int(online.q_values(_obs_tensor(obs)[None]).argmax(dim=1).item())
            next_obs, r, term, trunc, _ = env.step(action)
            buf.add(obs, action, r, next_obs, float(term))   # done = terminated: truncation bootstraps
            ep_ret += r
            obs = next_obs
            if term or trunc:
                run.log.record_episode(step, ep_ret)
                ep_ret = 0.0
                obs, _ = env.reset()
            # learn: gradient_steps Huber-loss steps towards the (Double) DQN target
            if step > cfg.learning_starts and step % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    b = buf.sample(cfg.batch_size)
                    nx = torch.from_numpy(b["next_obs"])
                    with torch.no_grad():
                        y = dqn_targets(b["rewards"], b["dones"], target.q_values(nx), cfg.gamma,
                                        online.q_values(nx) if cfg.double else None)
                    q = q_of_actions(online, torch.from_numpy(b["obs"]), torch.from_numpy(b["actions"]))
                    loss = nn.functional.smooth_l1_loss(q, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(online.parameters(), cfg.max_grad_norm, foreach=True)
                    opt.step()
                run.log.record_update(step, loss=loss.item(), q_mean=q.mean().item())
            if step % cfg.target_update_interval == 0:
                target.load_state_dict(online.state_dict())
            # evaluate: greedy episodes on fresh seeds (with the start-state Q and discounted return)
            if step % cfg.eval_every == 0:
                def greedy_returns():
                    ev = evaluate_q_policy(online, cfg.env_id, cfg.eval_episodes, EVAL_SEED_BASE + step, cfg.gamma)
                    run.eval_q0.append(float(ev["q0"].mean()))
                    run.eval_g0.append(float(ev["disc_returns"].mean()))
                    return ev["returns"]

                mean = run.log.record_eval(step, greedy_returns)
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    break
    env.close()
    run.env_steps = step
    return run


# ------------------------------------------------------------------ checkpoints
def save_q_network(q_net: nn.Module, directory, config: DQNConfig, metrics: dict, command: str) -> pathlib.Path:
    """Write ``model.safetensors`` and ``meta.json`` (command, commit, machine, config, metrics) to
    ``directory``."""
    from safetensors.torch import save_file

    from ..provenance import git_commit, machine, tree_dirty

    directory = pathlib.Path(directory)
    if not isinstance(config.env_id, str):
        raise ValueError("only networks trained on a registered Gymnasium id can be saved with their config")
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in q_net.state_dict().items()}, str(directory / "model.safetensors"))
    cfg = dataclasses.asdict(config)
    cfg["hidden"] = list(cfg["hidden"])
    meta = {"command": command, "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(), "config": cfg,
            "obs_dim": q_net.obs_dim, "n_actions": q_net.n_actions, "metrics": metrics}
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_q_network(directory) -> tuple[nn.Module, dict]:
    """Load a network saved by :func:`save_q_network` (safetensors: no pickle). Returns (net, sidecar).

    The sidecar ``meta.json`` records the command, commit, machine, config and metrics."""
    from safetensors.torch import load_file

    directory = pathlib.Path(directory)
    sidecar = directory / "meta.json"
    if not sidecar.is_file() or not (directory / "model.safetensors").is_file():
        raise FileNotFoundError(f"{directory} must hold model.safetensors and meta.json")
    meta = json.loads(sidecar.read_text())
    cfg = meta["config"]
    net = make_q_network(cfg["kind"], meta["obs_dim"], meta["n_actions"], tuple(cfg["hidden"]))
    net.load_state_dict(load_file(str(directory / "model.safetensors")))
    net.eval()
    return net, meta


# The shipped network (data/checkpoints/dqn-cartpole): the Zoo defaults, stopped at the solved
# threshold, then scored on 20 fresh episodes seeded from CHECKPOINT_EVAL_SEED.
CHECKPOINT_EVAL_SEED = 2024
CHECKPOINT_EVAL_EPISODES = 20


def make_checkpoint(directory, seed: int = 0, command: str | None = None) -> dict:
    """Train :class:`DQNConfig` defaults (seed ``seed``, at most 100k steps, stop at 475) and save
    the network with its metrics to ``directory``; returns the metrics."""
    cfg = DQNConfig(seed=seed, total_steps=100_000, stop_return=475.0)
    run = train_dqn(cfg)
    ev = evaluate_q_policy(run.q_net, "CartPole-v1", CHECKPOINT_EVAL_EPISODES, seed=CHECKPOINT_EVAL_SEED)["returns"]
    metrics = {"eval_return_mean": float(ev.mean()), "eval_return_std": float(ev.std()),
               "eval_episodes": CHECKPOINT_EVAL_EPISODES, "eval_seed": CHECKPOINT_EVAL_SEED,
               "env_steps": run.env_steps, "steps_to_475": run.log.steps_to(475.0),
               "eval_steps": run.log.eval_steps, "eval_returns": run.log.eval_returns,
               "wall_time_s": round(run.log.wall_time, 1), "torch_threads": torch.get_num_threads()}
    command = command or f"OMP_NUM_THREADS=1 python -m lib.rl.dqn --make-checkpoint {directory} --seed {seed}"
    save_q_network(run.q_net, directory, cfg, metrics, command)
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.rl.dqn",
                                 description="Make the shipped DQN checkpoint "
                                             "(CartPole-v1, data/checkpoints/dqn-cartpole).")
    ap.add_argument("--make-checkpoint", metavar="DIR", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cmd = "OMP_NUM_THREADS=1 python -m lib.rl.dqn " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(make_checkpoint(args.make_checkpoint, args.seed, cmd.strip())))
    return 0


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


__all__ = ["QNetAllActions", "QNetStateAction", "make_q_network", "q_of_actions", "dqn_targets",
           "linear_epsilon", "DQNConfig", "DQNRun", "evaluate_q_policy", "train_dqn",
           "save_q_network", "load_q_network", "make_checkpoint", "max_estimator_bias"]


if __name__ == "__main__":
    sys.exit(main())
