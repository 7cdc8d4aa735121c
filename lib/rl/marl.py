"""Multi-agent RL: matrix games with independent learners, and MADDPG vs independent DDPG.

Matrix games
------------
:class:`MatrixGame` holds the two players' payoff tables ``A[i, j]`` (row player) and ``B[i, j]``
(column player). :func:`pure_nash` lists pure equilibria; two independent learners are provided:

* :func:`independent_q_learning` — each player treats the other as part of a (non-stationary)
  environment and runs stateless epsilon-greedy Q-learning on its own payoff;
* :func:`independent_gradient_ascent` — each player follows the exact gradient of its expected
  payoff w.r.t. its own softmax logits (Singh et al.'s IGA with softmax): in zero-sum games the
  joint strategy *cycles* around the mixed equilibrium while the time average approaches it.

MADDPG (Lowe et al. 2017)
-------------------------
Decentralised actors ``mu_i(o_i)``; critics ``Q_i(o_1..o_N, a_1..a_N)`` that see every agent's
observation and action during training (``centralized=True``), or only ``Q_i(o_i, a_i)``
(``centralized=False``: independent DDPG). Runs on a PettingZoo parallel environment with
continuous actions in ``[low, high]`` (e.g. ``mpe2.simple_spread_v3``). :func:`train_maddpg` is the
whole algorithm in one loop over :class:`lib.rl.replay.ReplayBuffer`;
``python -m lib.rl.marl --make-checkpoint DIR --seeds 0 1 2 3 4`` makes the shipped comparison.

Book: seed-56, seed-57
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys

import numpy as np
import torch
from torch import nn

from ..runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range
from .mc_td import epsilon_greedy_action
from .nets import mlp, soft_update
from .replay import ReplayBuffer


# ================================================================== matrix games
@dataclasses.dataclass(frozen=True)
class MatrixGame:
    name: str
    A: np.ndarray              # (m, n) row player's payoffs
    B: np.ndarray              # (m, n) column player's payoffs
    row_actions: tuple
    col_actions: tuple

    def __post_init__(self):
        A, B = np.asarray(self.A, dtype=np.float64), np.asarray(self.B, dtype=np.float64)
        if A.ndim != 2 or A.shape != B.shape:
            raise ValueError(f"A and B must be 2-D tables of equal shape, got {A.shape}, {B.shape}")
        if len(self.row_actions) != A.shape[0] or len(self.col_actions) != A.shape[1]:
            raise ValueError("action names must match the payoff table's shape")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)

    def expected_payoffs(self, p, q) -> tuple[float, float]:
        """Expected payoffs of mixed strategies ``p`` (m,) and ``q`` (n,)."""
        p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
        return float(p @ self.A @ q), float(p @ self.B @ q)


def prisoners_dilemma() -> MatrixGame:
    """Cooperate/defect; the unique Nash equilibrium is (defect, defect)."""
    A = np.array([[-1.0, -3.0], [0.0, -2.0]])
    return MatrixGame("prisoner's dilemma", A, A.T, ("cooperate", "defect"), ("cooperate", "defect"))


def coordination_game() -> MatrixGame:
    """A cooperative game with two pure equilibria of different value (both players get the same)."""
    A = np.array([[4.0, 0.0], [0.0, 2.0]])
    return MatrixGame("coordination", A, A.copy(), ("a", "b"), ("a", "b"))


def matching_pennies() -> MatrixGame:
    """Zero-sum; no pure equilibrium, the unique Nash equilibrium is (1/2, 1/2) for both."""
    A = np.array([[1.0, -1.0], [-1.0, 1.0]])
    return MatrixGame("matching pennies", A, -A, ("heads", "tails"), ("heads", "tails"))


def pure_nash(game: MatrixGame) -> list[tuple[int, int]]:
    """All pure-strategy Nash equilibria ``(i, j)``: neither player gains by deviating alone."""
    out = []
    for i in range(game.A.shape[0]):
        for j in range(game.A.shape[1]):
            if game.A[i, j] >= game.A[:, j].max() - 1e-12 and game.B[i, j] >= game.B[i, :].max() - 1e-12:
                out.append((i, j))
    return out


def independent_q_learning(game: MatrixGame, n_rounds: int = 5000, alpha: float = 0.1, epsilon: float = 0.1,
                           seed: int = 0) -> dict:
    """Two stateless epsilon-greedy Q-learners playing ``n_rounds`` rounds.

    Returns ``Q_row`` (m,), ``Q_col`` (n,), ``actions`` (n_rounds, 2), and ``q_history`` lists.
    """
    if n_rounds < 1:
        raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
    if not 0 < alpha <= 1 or not 0 <= epsilon <= 1:
        raise ValueError("need alpha in (0, 1] and epsilon in [0, 1]")
    rng = np.random.default_rng(seed)
    m, n = game.A.shape
    q1, q2 = np.zeros(m), np.zeros(n)
    acts = np.zeros((n_rounds, 2), dtype=np.int64)
    h1, h2 = np.zeros((n_rounds, m)), np.zeros((n_rounds, n))
    for t in range(n_rounds):
        i = epsilon_greedy_action(q1, epsilon, rng)
        j = epsilon_greedy_action(q2, epsilon, rng)
        q1[i] += alpha * (game.A[i, j] - q1[i])
        q2[j] += alpha * (game.B[i, j] - q2[j])
        acts[t] = (i, j)
        h1[t], h2[t] = q1, q2
    return {"Q_row": q1, "Q_col": q2, "actions": acts, "q_row_history": h1, "q_col_history": h2}


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def independent_gradient_ascent(game: MatrixGame, n_steps: int = 5000, lr: float = 0.05, theta_row=None,
                                theta_col=None) -> dict:
    """Simultaneous exact policy-gradient ascent on each player's own expected payoff (softmax logits).

    Returns the strategies over time ``p`` (n_steps+1, m), ``q`` (n_steps+1, n) and their running
    averages ``p_avg``, ``q_avg``.
    """
    if n_steps < 1 or not lr > 0:
        raise ValueError("need n_steps >= 1 and lr > 0")
    m, n = game.A.shape
    th1 = np.zeros(m) if theta_row is None else np.array(theta_row, dtype=np.float64)
    th2 = np.zeros(n) if theta_col is None else np.array(theta_col, dtype=np.float64)
    if th1.shape != (m,) or th2.shape != (n,):
        raise ValueError(f"initial logits must have shapes ({m},) and ({n},)")
    P, Q = [_softmax(th1)], [_softmax(th2)]
    for _ in range(n_steps):
        p, q = P[-1], Q[-1]
        u1 = game.A @ q              # payoff of each row action against q
        u2 = game.B.T @ p
        th1 = th1 + lr * p * (u1 - p @ u1)   # d/dtheta of p . u1 for softmax p
        th2 = th2 + lr * q * (u2 - q @ u2)
        P.append(_softmax(th1))
        Q.append(_softmax(th2))
    P, Q = np.array(P), np.array(Q)
    steps = np.arange(1, len(P) + 1)[:, None]
    return {"p": P, "q": Q, "p_avg": np.cumsum(P, 0) / steps, "q_avg": np.cumsum(Q, 0) / steps}


# ================================================================== MADDPG / independent DDPG
def make_spread_env(max_cycles: int = 25):
    """``mpe2.simple_spread_v3`` with two agents, continuous actions and a purely shared reward:
    the default environment of :class:`MADDPGConfig` and of the shipped comparison."""
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(N=2, max_cycles=max_cycles, continuous_actions=True, local_ratio=0.0)


# Episode ``e`` of the run with seed ``s`` resets the environment with seed
# ``s * EPISODE_SEED_STRIDE + e``: a prime stride keeps the episode seeds of different runs apart
# for up to a million episodes each.
EPISODE_SEED_STRIDE = 1_000_003


@dataclasses.dataclass
class MADDPGConfig:
    """Hyperparameters of :func:`train_maddpg`, with the seed and the environment. Defaults: close
    to the MADDPG paper's (Lowe et al. 2017, appendix, and the authors' code): two 64-unit layers,
    gamma 0.95, tau 0.01; scaled down for a CPU where they differ (lr 1e-3, not 1e-2; batch 256,
    not 1024; 25 updates every 25 steps, not one every 100). Checked on construction.

    env_id : a zero-argument function returning a PettingZoo *parallel* env with Box actions
        (``continuous_actions=True``). Default: :func:`make_spread_env`.
    centralized : critics ``Q_i(o_1..o_N, a_1..a_N)`` (MADDPG); False: ``Q_i(o_i, a_i)``
        (independent DDPG, the same code otherwise).
    n_episodes : training episodes (simple_spread: 25 steps each; the shipped runs use 400).
    gamma : discount factor in [0, 1]; tau : Polyak factor of the target updates in (0, 1].
    actor_lr, critic_lr : Adam step sizes.
    hidden : hidden widths of every actor and critic.
    batch_size : transitions per update; buffer_size : replay capacity.
    learning_starts : environment steps of uniformly random actions before the first update.
    update_every : environment steps between update phases; updates_per_phase : gradient steps
        (one critic and one actor step per agent) in each.
    noise_std : std of the Gaussian exploration noise, a fraction of the action range.
    action_reg : weight of the penalty on the actor's pre-activation (keeps actions off the
        bounds, as the authors' code does with 1e-3).
    max_grad_norm : gradient-norm clip of every critic and actor step (0.5 in the authors' code;
        1.0 here).
    seed : seeds torch (initialisation), the acting and replay generator, and the episodes' resets
        (episode ``e``: ``seed * EPISODE_SEED_STRIDE + e``).
    """

    env_id: object = make_spread_env
    centralized: bool = True
    n_episodes: int = 1000
    gamma: float = 0.95
    tau: float = 0.01
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    hidden: tuple = (64, 64)
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 2_000
    update_every: int = 25
    updates_per_phase: int = 25
    noise_std: float = 0.1
    action_reg: float = 1e-3
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not callable(self.env_id):
            raise TypeError(f"MADDPGConfig.env_id must be a function returning a PettingZoo parallel env, "
                            f"got {type(self.env_id).__name__}")
        check_int(self, "n_episodes", "batch_size", "buffer_size", "update_every", "updates_per_phase")
        check_int(self, "learning_starts", "seed", minimum=0)
        check_range(self, "gamma", 0.0, 1.0)
        check_range(self, "tau", 0.0, 1.0, low_open=True)
        check_positive(self, "actor_lr", "critic_lr", "max_grad_norm")
        check_range(self, "noise_std", 0.0, np.inf)
        check_range(self, "action_reg", 0.0, np.inf)
        self.hidden = tuple(self.hidden)


class _Actor(nn.Module):
    def __init__(self, obs_dim, act_dim, hidden, low, high):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim], activation="relu")
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def pre(self, obs):
        return self.net(obs)

    def forward(self, obs):
        return self.low + (self.high - self.low) * (torch.tanh(self.net(obs)) + 1) / 2


class MultiAgentDDPG:
    """The networks of N agents: actors ``mu_i(o_i)``, critics (``centralized``: MADDPG; else
    independent DDPG), their target copies and optimisers. :func:`train_maddpg` trains them."""

    def __init__(self, obs_dims, act_dims, lows, highs, cfg: MADDPGConfig):
        self.cfg = cfg
        self.n = len(obs_dims)
        if not (len(act_dims) == len(lows) == len(highs) == self.n) or self.n < 1:
            raise ValueError("obs_dims, act_dims, lows and highs must list one entry per agent")
        self.obs_dims, self.act_dims = list(obs_dims), list(act_dims)
        self.lows = [np.asarray(l, dtype=np.float32) for l in lows]
        self.highs = [np.asarray(h, dtype=np.float32) for h in highs]
        tot_o, tot_a = sum(obs_dims), sum(act_dims)
        self.actors, self.critics = [], []
        for i in range(self.n):
            self.actors.append(_Actor(obs_dims[i], act_dims[i], cfg.hidden, self.lows[i], self.highs[i]))
            cin = tot_o + tot_a if cfg.centralized else obs_dims[i] + act_dims[i]
            self.critics.append(mlp([cin, *cfg.hidden, 1], activation="relu"))
        self.actors_t = [copy.deepcopy(a).requires_grad_(False) for a in self.actors]
        self.critics_t = [copy.deepcopy(c).requires_grad_(False) for c in self.critics]
        self.aopt = [torch.optim.Adam(a.parameters(), lr=cfg.actor_lr) for a in self.actors]
        self.copt = [torch.optim.Adam(c.parameters(), lr=cfg.critic_lr) for c in self.critics]

    def critic_input(self, i: int, obs: list, acts: list) -> torch.Tensor:
        """What agent ``i``'s critic sees: every (obs, action) when centralized, else its own."""
        if self.cfg.centralized:
            return torch.cat(list(obs) + list(acts), dim=-1)
        return torch.cat([obs[i], acts[i]], dim=-1)

    def split(self, x, dims) -> list[torch.Tensor]:
        """Cut a replayed batch of concatenated per-agent vectors back into one tensor per agent."""
        return [t.contiguous() for t in torch.split(torch.as_tensor(x), list(dims), dim=-1)]

    @torch.no_grad()
    def act(self, obs: list, noise_std: float = 0.0, rng: np.random.Generator | None = None) -> list:
        """Every agent's action ``mu_i(o_i)`` (+ Gaussian noise of std ``noise_std`` times its
        action range), clipped to its bounds."""
        out = []
        for i, o in enumerate(obs):
            a = self.actors[i](torch.as_tensor(np.asarray(o, dtype=np.float32))).numpy()
            if noise_std > 0:
                a = a + rng.normal(0.0, noise_std * (self.highs[i] - self.lows[i]), size=a.shape)
            out.append(np.clip(a, self.lows[i], self.highs[i]).astype(np.float32))
        return out

    def state_dict(self) -> dict:
        return {f"actor{i}.{k}": v for i, a in enumerate(self.actors) for k, v in a.state_dict().items()}

    def load_actors(self, sd: dict) -> None:
        for i, a in enumerate(self.actors):
            a.load_state_dict({k.split(".", 1)[1]: v for k, v in sd.items() if k.startswith(f"actor{i}.")})


@dataclasses.dataclass
class MADDPGRun(Run):
    """What :func:`train_maddpg` returns: ``config``, ``log`` (one training episode per row of
    ``episode_returns``: the team return, the sum over steps of the mean reward across agents;
    a row of ``critic_loss_i`` (agent i's last critic loss) per update phase; wall time) and the trained ``agent``."""

    agent: MultiAgentDDPG = None


def _spaces(env):
    agents = list(env.possible_agents)
    obs_dims = [int(np.prod(env.observation_space(a).shape)) for a in agents]
    act_sp = [env.action_space(a) for a in agents]
    for sp in act_sp:
        if not hasattr(sp, "low"):
            raise ValueError("MADDPG needs continuous (Box) actions: create the env with continuous_actions=True")
    return agents, obs_dims, [int(np.prod(s.shape)) for s in act_sp], [s.low for s in act_sp], [s.high for s in act_sp]


def train_maddpg(cfg: MADDPGConfig | None = None, progress: bool = False) -> MADDPGRun:
    """Train MADDPG (``centralized=True``) or independent DDPG on ``cfg.env_id()``; returns a
    :class:`MADDPGRun`.

    Random actions for ``learning_starts`` steps, then ``mu_i(o_i)`` + Gaussian noise; every
    ``update_every`` steps, ``updates_per_phase`` rounds of: per agent, one critic step towards
    ``y_i = r_i + gamma (1 - done) Q_i'(o', mu'(o'))`` and one actor step ascending
    ``Q_i(o, a_1..mu_i(o_i)..a_N)``; then every target follows by Polyak averaging.
    """
    cfg = cfg or MADDPGConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = cfg.env_id()
    agents, obs_dims, act_dims, lows, highs = _spaces(env)
    n = len(agents)
    ma = MultiAgentDDPG(obs_dims, act_dims, lows, highs, cfg)
    buf = ReplayBuffer(cfg.buffer_size, (sum(obs_dims),), seed=cfg.seed, action_shape=(sum(act_dims),),
                       action_dtype=np.float32, reward_shape=(n,))
    run = MADDPGRun(cfg, TrainLog(), ma)
    steps = 0
    episodes = range(cfg.n_episodes)
    if progress:
        from tqdm.auto import tqdm
        episodes = tqdm(episodes, desc="MADDPG" if cfg.centralized else "independent DDPG", mininterval=1.0)
    with Stopwatch(run.log):
        for ep in episodes:
            obs_d, _ = env.reset(seed=cfg.seed * EPISODE_SEED_STRIDE + ep)
            total = 0.0
            while env.agents:
                # act: random warm-up, then every actor's mu_i(o_i) plus Gaussian noise
                obs = [obs_d[a] for a in agents]
                if steps < cfg.learning_starts:
                    acts = [rng.uniform(lows[i], highs[i]).astype(np.float32) for i in range(n)]
                else:
                    acts = ma.act(obs, cfg.noise_std, rng)
                nobs_d, rew_d, term_d, trunc_d, _ = env.step({a: acts[i] for i, a in enumerate(agents)})
                nobs = [nobs_d.get(a, obs[i]) for i, a in enumerate(agents)]
                rews = [float(rew_d.get(a, 0.0)) for a in agents]
                done = float(any(term_d.get(a, False) for a in agents))
                buf.add(np.concatenate(obs), np.concatenate(acts), rews, np.concatenate(nobs), done)
                total += float(np.mean(rews))
                obs_d = nobs_d
                steps += 1
                if steps >= cfg.learning_starts and steps % cfg.update_every == 0:
                    for _ in range(cfg.updates_per_phase):
                        b = buf.sample(cfg.batch_size)
                        o, o2 = ma.split(b["obs"], obs_dims), ma.split(b["next_obs"], obs_dims)
                        a_taken = ma.split(b["actions"], act_dims)
                        r, d = torch.as_tensor(b["rewards"]), torch.as_tensor(b["dones"])
                        with torch.no_grad():
                            a2 = [ma.actors_t[j](o2[j]) for j in range(n)]
                        losses = []
                        for i in range(n):
                            # critic i: regress Q_i(o, a) to r_i + gamma (1 - done) Q_i'(o', mu'(o'))
                            with torch.no_grad():
                                q_next = ma.critics_t[i](ma.critic_input(i, o2, a2)).squeeze(-1)
                                y = r[:, i].contiguous() + cfg.gamma * (1 - d) * q_next
                            q = ma.critics[i](ma.critic_input(i, o, a_taken)).squeeze(-1)
                            critic_loss = nn.functional.mse_loss(q, y)
                            ma.copt[i].zero_grad()
                            critic_loss.backward()
                            nn.utils.clip_grad_norm_(ma.critics[i].parameters(), cfg.max_grad_norm)
                            ma.copt[i].step()
                            losses.append(float(critic_loss.detach()))
                            # actor i: ascend Q_i with its own action replaced by mu_i(o_i)
                            acts_i = list(a_taken)
                            acts_i[i] = ma.actors[i](o[i])
                            actor_loss = -ma.critics[i](ma.critic_input(i, o, acts_i)).mean() \
                                + cfg.action_reg * (ma.actors[i].pre(o[i]) ** 2).mean()
                            ma.aopt[i].zero_grad()
                            actor_loss.backward()
                            nn.utils.clip_grad_norm_(ma.actors[i].parameters(), cfg.max_grad_norm)
                            ma.aopt[i].step()
                        for i in range(n):
                            soft_update(ma.actors_t[i], ma.actors[i], cfg.tau)
                            soft_update(ma.critics_t[i], ma.critics[i], cfg.tau)
                    run.log.record_update(steps, **{f"critic_loss_{i}": x for i, x in enumerate(losses)})
            run.log.record_episode(steps, total)
    return run


# Seed of the first evaluation episode of the shipped comparison (episode i: TEAM_EVAL_SEED + i).
TEAM_EVAL_SEED = 123_456


def evaluate_team(env, agent: MultiAgentDDPG, n_episodes: int = 20, seed: int = TEAM_EVAL_SEED) -> np.ndarray:
    """Team return (sum over steps of the mean agent reward) of the noiseless actors, per episode
    (episode ``i`` reset with ``seed + i``).

    Its own loop rather than :func:`lib.rl.rollout.evaluate`, which runs Gymnasium vector envs:
    a PettingZoo parallel env takes and returns one dict per agent."""
    agents = list(env.possible_agents)
    out = np.zeros(n_episodes)
    for e in range(n_episodes):
        obs_d, _ = env.reset(seed=seed + e)
        while env.agents:
            acts = agent.act([obs_d[a] for a in agents])
            obs_d, rew_d, _, _, _ = env.step({a: acts[i] for i, a in enumerate(agents)})
            out[e] += float(np.mean([rew_d[a] for a in agents]))
    return out


# ================================================================== shipped comparison (simple_spread)
SPREAD_CONFIG = dict(n_episodes=400, learning_starts=1000, updates_per_phase=10, batch_size=128)
SPREAD_EVAL_EPISODES = 30


def save_actors(agent: MultiAgentDDPG, path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in agent.state_dict().items()}, str(path))


def load_spread_agents(directory) -> tuple[dict, dict]:
    """Rebuild the shipped simple_spread actors: ``({"maddpg": [agent per seed], "iddpg": [...]}, sidecar)``.

    The sidecar ``meta.json`` records the command, commit, machine, config and metrics."""
    from safetensors.torch import load_file

    directory = pathlib.Path(directory)
    sidecar = directory / "meta.json"
    if not sidecar.is_file():
        raise FileNotFoundError(f"{directory} holds no meta.json")
    meta = json.loads(sidecar.read_text())
    env = make_spread_env()
    agents_, obs_dims, act_dims, lows, highs = _spaces(env)
    out = {}
    for method in ("maddpg", "iddpg"):
        out[method] = []
        for seed in meta["seeds"]:
            cfg = MADDPGConfig(centralized=(method == "maddpg"), seed=seed, **meta["config"])
            ma = MultiAgentDDPG(obs_dims, act_dims, lows, highs, cfg)
            ma.load_actors(load_file(str(directory / f"{method}-seed{seed}.safetensors")))
            out[method].append(ma)
    return out, meta


def make_spread_checkpoint(directory, seeds=(0, 1, 2), eval_episodes: int = SPREAD_EVAL_EPISODES,
                           command: str | None = None) -> dict:
    """Train MADDPG and independent DDPG on simple_spread for each seed; save actors, curves and
    evaluation returns (``meta.json``: command, commit, machine, config, metrics) so a notebook
    can reload and re-evaluate them."""
    from ..provenance import git_commit, machine, tree_dirty

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    command = command or ("OMP_NUM_THREADS=1 python -m lib.rl.marl --make-checkpoint "
                          f"{directory.as_posix()} --seeds {' '.join(str(s) for s in seeds)}")
    meta = {"env": "mpe2.simple_spread_v3(N=2, max_cycles=25, continuous_actions=True, local_ratio=0.0)",
            "command": command, "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(),
            "config": SPREAD_CONFIG, "seeds": list(seeds), "eval_episodes": eval_episodes, "eval_seed": TEAM_EVAL_SEED,
            "curves": {}, "eval": {}, "wall_time_s": {}}
    for seed in seeds:
        for method in ("maddpg", "iddpg"):
            run = train_maddpg(MADDPGConfig(centralized=(method == "maddpg"), seed=seed, **SPREAD_CONFIG))
            ev = evaluate_team(make_spread_env(), run.agent, eval_episodes)
            save_actors(run.agent, directory / f"{method}-seed{seed}.safetensors")
            key = f"{method}-seed{seed}"
            meta["curves"][key] = [round(x, 4) for x in run.log.episode_returns]
            meta["eval"][key] = float(ev.mean())
            meta["wall_time_s"][key] = round(run.log.wall_time, 1)
            (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(key, round(float(ev.mean()), 3), flush=True)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.rl.marl",
                                 description="Make the shipped MADDPG vs independent DDPG comparison on simple_spread "
                                             "(data/checkpoints/marl-spread).")
    ap.add_argument("--make-checkpoint", metavar="DIR", required=True, help="output folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cmd = "OMP_NUM_THREADS=1 python -m lib.rl.marl " + " ".join(argv if argv is not None else sys.argv[1:])
    make_spread_checkpoint(args.make_checkpoint, tuple(args.seeds), command=cmd.strip())
    return 0


__all__ = ["MatrixGame", "prisoners_dilemma", "coordination_game", "matching_pennies", "pure_nash",
           "independent_q_learning", "independent_gradient_ascent", "make_spread_env", "EPISODE_SEED_STRIDE",
           "MADDPGConfig", "MultiAgentDDPG", "MADDPGRun", "train_maddpg", "TEAM_EVAL_SEED", "evaluate_team",
           "SPREAD_CONFIG", "SPREAD_EVAL_EPISODES", "save_actors", "load_spread_agents", "make_spread_checkpoint"]


if __name__ == "__main__":
    sys.exit(main())
