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
continuous actions in ``[low, high]`` (e.g. ``mpe2.simple_spread_v3``).
"""
from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch
from torch import nn

from .nets import mlp, soft_update
from .returns import check_gamma


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
        i = int(rng.integers(m)) if rng.random() < epsilon else int(rng.choice(np.flatnonzero(q1 == q1.max())))
        j = int(rng.integers(n)) if rng.random() < epsilon else int(rng.choice(np.flatnonzero(q2 == q2.max())))
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
@dataclasses.dataclass
class MADDPGConfig:
    centralized: bool = True       # False: independent DDPG (each critic sees only its own obs and action)
    n_episodes: int = 1000
    gamma: float = 0.95
    tau: float = 0.01
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    hidden: tuple = (64, 64)
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 2_000   # env steps of random-ish acting before updates
    update_every: int = 25         # env steps between update phases
    updates_per_phase: int = 25
    noise_std: float = 0.1         # Gaussian exploration noise, as a fraction of the action range
    action_reg: float = 1e-3       # penalty on the actor's pre-activation (keeps actions off the bounds)
    seed: int = 0

    def validate(self):
        for name in ("n_episodes", "batch_size", "buffer_size", "update_every", "updates_per_phase"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_gamma(self.gamma)
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.noise_std < 0:
            raise ValueError("noise_std must be >= 0")
        return self


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
    """N actor/critic pairs; ``centralized`` critics (MADDPG) or local ones (independent DDPG)."""

    def __init__(self, obs_dims, act_dims, lows, highs, cfg: MADDPGConfig):
        self.cfg = cfg.validate()
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

    @torch.no_grad()
    def act(self, obs: list, noise_std: float = 0.0, rng: np.random.Generator | None = None) -> list:
        out = []
        for i, o in enumerate(obs):
            a = self.actors[i](torch.as_tensor(np.asarray(o, dtype=np.float32))).numpy()
            if noise_std > 0:
                a = a + rng.normal(0.0, noise_std * (self.highs[i] - self.lows[i]), size=a.shape)
            out.append(np.clip(a, self.lows[i], self.highs[i]).astype(np.float32))
        return out

    def update(self, batch: dict) -> dict:
        """One critic and one actor step for every agent on a replayed batch."""
        cfg = self.cfg
        obs = [torch.as_tensor(x) for x in batch["obs"]]
        acts = [torch.as_tensor(x) for x in batch["acts"]]
        nobs = [torch.as_tensor(x) for x in batch["next_obs"]]
        rews = [torch.as_tensor(x) for x in batch["rews"]]
        done = torch.as_tensor(batch["done"])
        with torch.no_grad():
            nacts = [self.actors_t[j](nobs[j]) for j in range(self.n)]
        info = {}
        for i in range(self.n):
            with torch.no_grad():
                y = rews[i] + cfg.gamma * (1 - done) * self.critics_t[i](self.critic_input(i, nobs, nacts)).squeeze(-1)
            q = self.critics[i](self.critic_input(i, obs, acts)).squeeze(-1)
            closs = nn.functional.mse_loss(q, y)
            self.copt[i].zero_grad()
            closs.backward()
            nn.utils.clip_grad_norm_(self.critics[i].parameters(), 1.0)
            self.copt[i].step()
            new_acts = list(acts)
            new_acts[i] = self.actors[i](obs[i])
            aloss = -self.critics[i](self.critic_input(i, obs, new_acts)).mean() \
                + cfg.action_reg * (self.actors[i].pre(obs[i]) ** 2).mean()
            self.aopt[i].zero_grad()
            aloss.backward()
            nn.utils.clip_grad_norm_(self.actors[i].parameters(), 1.0)
            self.aopt[i].step()
            info[f"critic_loss_{i}"] = float(closs.detach())
        for i in range(self.n):
            soft_update(self.actors_t[i], self.actors[i], cfg.tau)
            soft_update(self.critics_t[i], self.critics[i], cfg.tau)
        return info

    def state_dict(self) -> dict:
        return {f"actor{i}.{k}": v for i, a in enumerate(self.actors) for k, v in a.state_dict().items()}

    def load_actors(self, sd: dict) -> None:
        for i, a in enumerate(self.actors):
            a.load_state_dict({k.split(".", 1)[1]: v for k, v in sd.items() if k.startswith(f"actor{i}.")})


class _MABuffer:
    def __init__(self, cap, obs_dims, act_dims, seed):
        self.cap, self.pos, self.size = cap, 0, 0
        self.obs = [np.zeros((cap, d), np.float32) for d in obs_dims]
        self.next_obs = [np.zeros((cap, d), np.float32) for d in obs_dims]
        self.acts = [np.zeros((cap, d), np.float32) for d in act_dims]
        self.rews = [np.zeros(cap, np.float32) for _ in obs_dims]
        self.done = np.zeros(cap, np.float32)
        self.rng = np.random.default_rng(seed)

    def add(self, obs, acts, rews, next_obs, done):
        p = self.pos
        for i in range(len(obs)):
            self.obs[i][p], self.acts[i][p], self.rews[i][p], self.next_obs[i][p] = obs[i], acts[i], rews[i], next_obs[i]
        self.done[p] = done
        self.pos, self.size = (p + 1) % self.cap, min(self.size + 1, self.cap)

    def sample(self, b):
        idx = self.rng.integers(0, self.size, size=b)
        return {"obs": [o[idx] for o in self.obs], "acts": [a[idx] for a in self.acts],
                "rews": [r[idx] for r in self.rews], "next_obs": [o[idx] for o in self.next_obs],
                "done": self.done[idx]}


@dataclasses.dataclass
class MARLRun:
    agent: MultiAgentDDPG
    episode_team_returns: list     # sum over steps of the mean reward across agents, per episode
    wall_time_s: float


def _spaces(env):
    agents = list(env.possible_agents)
    obs_dims = [int(np.prod(env.observation_space(a).shape)) for a in agents]
    act_sp = [env.action_space(a) for a in agents]
    for sp in act_sp:
        if not hasattr(sp, "low"):
            raise ValueError("MADDPG needs continuous (Box) actions: create the env with continuous_actions=True")
    return agents, obs_dims, [int(np.prod(s.shape)) for s in act_sp], [s.low for s in act_sp], [s.high for s in act_sp]


def train_maddpg(env, config: MADDPGConfig | None = None, progress: bool = False) -> MARLRun:
    """Train MADDPG (``centralized=True``) or independent DDPG on a PettingZoo parallel env."""
    cfg = (config or MADDPGConfig()).validate()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    agents, obs_dims, act_dims, lows, highs = _spaces(env)
    ma = MultiAgentDDPG(obs_dims, act_dims, lows, highs, cfg)
    buf = _MABuffer(cfg.buffer_size, obs_dims, act_dims, cfg.seed)
    team, steps = [], 0
    it = range(cfg.n_episodes)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="MADDPG" if cfg.centralized else "independent DDPG", mininterval=1.0)
    for ep in it:
        obs_d, _ = env.reset(seed=cfg.seed * 1_000_003 + ep)
        total = 0.0
        while env.agents:
            obs = [obs_d[a] for a in agents]
            if steps < cfg.learning_starts:
                acts = [rng.uniform(lows[i], highs[i]).astype(np.float32) for i in range(len(agents))]
            else:
                acts = ma.act(obs, cfg.noise_std, rng)
            nobs_d, rew_d, term_d, trunc_d, _ = env.step({a: acts[i] for i, a in enumerate(agents)})
            nobs = [nobs_d.get(a, obs[i]) for i, a in enumerate(agents)]
            rews = [float(rew_d.get(a, 0.0)) for a in agents]
            done = float(any(term_d.get(a, False) for a in agents))
            buf.add(obs, acts, rews, nobs, done)
            total += float(np.mean(rews))
            obs_d = nobs_d
            steps += 1
            if steps >= cfg.learning_starts and steps % cfg.update_every == 0:
                for _ in range(cfg.updates_per_phase):
                    ma.update(buf.sample(cfg.batch_size))
        team.append(total)
    return MARLRun(ma, team, time.perf_counter() - t0)


def evaluate_team(env, agent: MultiAgentDDPG, n_episodes: int = 20, seed: int = 123_456) -> np.ndarray:
    """Team return (sum over steps of the mean agent reward) of the noiseless actors, per episode."""
    agents = list(env.possible_agents)
    out = np.zeros(n_episodes)
    for e in range(n_episodes):
        obs_d, _ = env.reset(seed=seed + e)
        while env.agents:
            acts = agent.act([obs_d[a] for a in agents])
            obs_d, rew_d, _, _, _ = env.step({a: acts[i] for i, a in enumerate(agents)})
            out[e] += float(np.mean([rew_d[a] for a in agents]))
    return out


__all__ = ["MatrixGame", "prisoners_dilemma", "coordination_game", "matching_pennies", "pure_nash",
           "independent_q_learning", "independent_gradient_ascent", "MADDPGConfig", "MultiAgentDDPG",
           "MARLRun", "train_maddpg", "evaluate_team"]


# ================================================================== shipped comparison (simple_spread)
def make_spread_env(max_cycles: int = 25):
    """``mpe2.simple_spread_v3`` with two agents, continuous actions and a purely shared reward."""
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(N=2, max_cycles=max_cycles, continuous_actions=True, local_ratio=0.0)


SPREAD_CONFIG = dict(n_episodes=400, learning_starts=1000, updates_per_phase=10, batch_size=128)


def save_actors(agent: MultiAgentDDPG, path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in agent.state_dict().items()}, str(path))


def load_spread_agents(directory) -> tuple[dict, dict]:
    """Rebuild the shipped simple_spread actors: ``({"maddpg": [agent per seed], "iddpg": [...]}, sidecar)``."""
    import json
    import pathlib

    from safetensors.torch import load_file

    directory = pathlib.Path(directory)
    meta = json.loads((directory / "config.json").read_text())
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


def make_spread_checkpoint(directory, seeds=(0, 1, 2), eval_episodes: int = 30) -> dict:
    """Train MADDPG and independent DDPG on simple_spread for each seed; save actors, curves and
    evaluation returns (``config.json``) so a notebook can reload and re-evaluate them."""
    import json
    import pathlib

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"env": "mpe2.simple_spread_v3(N=2, max_cycles=25, continuous_actions=True, local_ratio=0.0)",
            "config": SPREAD_CONFIG, "seeds": list(seeds), "eval_episodes": eval_episodes, "eval_seed": 123_456,
            "command": "OMP_NUM_THREADS=1 python -c \"from lib.rl.marl import make_spread_checkpoint; "
                       f"make_spread_checkpoint('{directory.as_posix()}', {tuple(seeds)})\"",
            "curves": {}, "eval": {}, "wall_time_s": {}}
    for seed in seeds:
        for method in ("maddpg", "iddpg"):
            env = make_spread_env()
            run = train_maddpg(env, MADDPGConfig(centralized=(method == "maddpg"), seed=seed, **SPREAD_CONFIG))
            ev = evaluate_team(env, run.agent, eval_episodes)
            save_actors(run.agent, directory / f"{method}-seed{seed}.safetensors")
            key = f"{method}-seed{seed}"
            meta["curves"][key] = [round(x, 4) for x in run.episode_team_returns]
            meta["eval"][key] = float(ev.mean())
            meta["wall_time_s"][key] = round(run.wall_time_s, 1)
            (directory / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(key, round(float(ev.mean()), 3), flush=True)
    return meta


__all__ += ["make_spread_env", "SPREAD_CONFIG", "save_actors", "load_spread_agents", "make_spread_checkpoint"]
