"""REINFORCE with neural policies: reward-to-go, an optional learned value baseline.

For episodes ``tau_i`` sampled from ``pi_theta`` the surrogate loss

    L(theta) = -(1/n) sum_i sum_t log pi_theta(a_t|s_t) (G_t - b(s_t)),
    G_t = sum_{k>=t} gamma^(k-t) r_k      (reward-to-go, lib.rl.returns.discounted_returns)

has ``-grad L`` equal to an unbiased estimate of ``grad J`` (for ``gamma = 1``, or with the
``gamma^t`` weights of the discounted objective). :func:`exact_surrogate_gradient` weights every
trajectory of a small finite MDP by its probability, so the estimator's expectation can be
compared with finite differences of the exact objective — the check promised by the book.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn

from .nets import mlp
from .returns import check_gamma, discounted_returns


class CategoricalPolicy(nn.Module):
    """``pi(a|s) = softmax(mlp(s))`` for discrete actions."""

    def __init__(self, obs_dim: int, n_actions: int, hidden=(64,), activation: str = "tanh"):
        super().__init__()
        if obs_dim < 1 or n_actions < 2:
            raise ValueError(f"need obs_dim >= 1 and n_actions >= 2, got {obs_dim}, {n_actions}")
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.net = mlp([obs_dim, *hidden, n_actions], activation=activation, output_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits (B, A)."""
        return self.net(obs)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self(obs))

    def greedy(self, obs_np: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self(torch.as_tensor(np.asarray(obs_np), dtype=torch.float32)).argmax(-1).numpy()


def reward_to_go(rewards, mask, gamma: float) -> np.ndarray:
    """Reward-to-go of time-major episodes ``rewards (T, N)`` that are alive where ``mask`` is 1.

    Each column is one episode padded after its end (mask 0); ``G[t] = 0`` on padding.
    """
    r = np.asarray(rewards, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    if r.ndim != 2 or m.shape != r.shape:
        raise ValueError(f"rewards and mask must share a (T, N) shape, got {r.shape}, {m.shape}")
    return discounted_returns(r * m, gamma) * m


def reinforce_loss(log_probs: torch.Tensor, returns, mask=None, baseline=None, n_episodes: int | None = None,
                   weights=None) -> torch.Tensor:
    """Surrogate ``-(1/n) sum log_probs * (returns - baseline) * weights * mask``.

    All arrays share one shape (e.g. (T, N)). ``n_episodes`` defaults to the last dimension
    (episodes as columns). ``weights`` are optional per-step factors such as ``gamma^t``.
    The baseline is treated as a constant (no gradient flows through it).
    """
    if not isinstance(log_probs, torch.Tensor):
        raise TypeError("log_probs must be a torch tensor carrying gradients")
    g = torch.as_tensor(returns, dtype=log_probs.dtype)
    if g.shape != log_probs.shape:
        raise ValueError(f"returns shape {tuple(g.shape)} must equal log_probs shape {tuple(log_probs.shape)}")
    adv = g
    if baseline is not None:
        b = torch.as_tensor(baseline, dtype=log_probs.dtype).detach()
        if b.shape != g.shape:
            raise ValueError(f"baseline shape {tuple(b.shape)} must equal returns shape {tuple(g.shape)}")
        adv = g - b
    for name, extra in (("mask", mask), ("weights", weights)):
        if extra is not None:
            e = torch.as_tensor(extra, dtype=log_probs.dtype)
            if e.shape != g.shape:
                raise ValueError(f"{name} shape {tuple(e.shape)} must equal returns shape {tuple(g.shape)}")
            adv = adv * e
    n = n_episodes if n_episodes is not None else (log_probs.shape[-1] if log_probs.ndim > 1 else 1)
    if n < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n}")
    return -(log_probs * adv).sum() / n


# ------------------------------------------------------------------ exact check on a finite MDP
def tabular_logits(policy: CategoricalPolicy, n_states: int) -> torch.Tensor:
    """The policy's logits for every one-hot state, shape (S, A) (differentiable)."""
    return policy(torch.eye(n_states, dtype=next(policy.parameters()).dtype))


def exact_surrogate_gradient(policy: CategoricalPolicy, mdp, use_baseline: bool = False,
                             discount_weights: bool = True) -> np.ndarray:
    """``E[-grad L]`` over every trajectory of a small ``lib.rl.policy_gradient.FiniteMDP``.

    The policy acts on one-hot states. Each trajectory's surrogate (reward-to-go with ``gamma^t``
    weights; optional exact value baseline) is weighted by its probability. Returns the flat
    gradient w.r.t. the policy's parameters (float64). ``discount_weights=False`` drops the
    ``gamma^t`` factors, as common practice (and :func:`train_reinforce`) does: the expectation
    is then not the gradient of the discounted objective when ``gamma < 1``.
    """
    from .policy_gradient import enumerate_trajectories, value_tables

    params = list(policy.parameters())
    theta = tabular_logits(policy, mdp.n_states)
    th_np = theta.detach().double().numpy()
    states, actions, rewards, probs = enumerate_trajectories(mdp, th_np)
    H = mdp.horizon
    G = discounted_returns(rewards.T, mdp.gamma)                      # (H, M)
    disc = mdp.gamma ** np.arange(H) if discount_weights else np.ones(H)
    w = disc[:, None] * probs[None, :]                                  # gamma^t * P(tau)
    b = None
    if use_baseline:
        V, _ = value_tables(mdp, th_np)
        b = V[np.arange(H)[:, None], states.T]
    logp = torch.log_softmax(theta, dim=-1)[torch.as_tensor(states.T), torch.as_tensor(actions.T)]  # (H, M)
    loss = reinforce_loss(logp, G, baseline=b, weights=w, n_episodes=1)
    grads = torch.autograd.grad(-loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).double().numpy()


def exact_objective_of_params(policy: CategoricalPolicy, mdp, flat_params: np.ndarray) -> float:
    """``J`` of the MDP when the policy's parameters are set to ``flat_params`` (restored afterwards)."""
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    from .policy_gradient import exact_objective

    old = parameters_to_vector(policy.parameters()).detach().clone()
    with torch.no_grad():
        vector_to_parameters(torch.as_tensor(flat_params, dtype=old.dtype), policy.parameters())
        theta = tabular_logits(policy, mdp.n_states).double().numpy()
        vector_to_parameters(old, policy.parameters())
    return exact_objective(mdp, theta)


def sampled_surrogate_gradient(policy: CategoricalPolicy, mdp, n_episodes: int, seed: int = 0,
                               use_baseline: bool = False, discount_weights: bool = True) -> np.ndarray:
    """The Monte Carlo REINFORCE estimate from ``n_episodes`` sampled episodes (flat, float64).

    ``discount_weights=False`` drops the ``gamma^t`` factors (see :func:`exact_surrogate_gradient`).
    """
    from .policy_gradient import sample_episodes, value_tables

    params = list(policy.parameters())
    theta = tabular_logits(policy, mdp.n_states)
    th_np = theta.detach().double().numpy()
    states, actions, rewards = sample_episodes(mdp, th_np, n_episodes, np.random.default_rng(seed))
    H = mdp.horizon
    G = discounted_returns(rewards.T, mdp.gamma)
    disc = mdp.gamma ** np.arange(H) if discount_weights else np.ones(H)
    w = np.broadcast_to(disc[:, None], G.shape).copy()
    b = None
    if use_baseline:
        V, _ = value_tables(mdp, th_np)
        b = V[np.arange(H)[:, None], states.T]
    logp = torch.log_softmax(theta, dim=-1)[torch.as_tensor(states.T), torch.as_tensor(actions.T)]
    loss = reinforce_loss(logp, G, baseline=b, weights=w)
    grads = torch.autograd.grad(-loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).double().numpy()


# ------------------------------------------------------------------ training on Gymnasium
@dataclasses.dataclass
class ReinforceConfig:
    env_id: str = "CartPole-v1"
    n_episodes: int = 8            # episodes per policy update (run in parallel)
    n_updates: int = 300
    gamma: float = 0.99
    lr: float = 5e-3
    hidden: tuple = (64,)
    baseline: str = "value"        # "none" or "value" (a learned V(s) fitted to the reward-to-go)
    value_lr: float = 1e-2
    value_epochs: int = 5
    normalize: bool = True         # standardise the advantages within a batch
    eval_every: int = 10           # updates between greedy evaluations
    eval_episodes: int = 10
    stop_return: float | None = 475.0
    max_steps: int = 500
    seed: int = 0

    def validate(self):
        if self.baseline not in ("none", "value"):
            raise ValueError(f"baseline must be 'none' or 'value', got {self.baseline!r}")
        for name in ("n_episodes", "n_updates", "eval_every", "eval_episodes", "max_steps", "value_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_gamma(self.gamma)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        return self


@dataclasses.dataclass
class ReinforceResult:
    policy: CategoricalPolicy
    config: ReinforceConfig
    batch_returns: list        # mean training return of each update's episodes
    env_steps: list            # cumulative environment steps after each update
    eval_updates: list
    eval_steps: list
    eval_returns: list
    steps_to_threshold: int | None
    wall_time_s: float


def collect_episodes(env, policy: CategoricalPolicy, max_steps: int, seed: int):
    """Run one episode in every sub-environment of ``env`` (a gymnasium vector env) until all end.

    Returns time-major arrays ``obs (T, N, d)``, ``actions (T, N)``, ``rewards (T, N)``, ``mask (T, N)``
    (1 while the episode is alive).
    """
    obs, _ = env.reset(seed=seed)
    n = obs.shape[0]
    alive = np.ones(n, dtype=bool)
    O, A, R, M = [], [], [], []
    for _ in range(max_steps):
        with torch.no_grad():
            a = policy.dist(torch.as_tensor(obs, dtype=torch.float32)).sample().numpy()
        nobs, r, term, trunc, _ = env.step(a)
        O.append(obs)
        A.append(a)
        R.append(r * alive)
        M.append(alive.astype(np.float64))
        alive = alive & ~(term | trunc)
        obs = nobs
        if not alive.any():
            break
    return np.stack(O).astype(np.float32), np.stack(A), np.stack(R), np.stack(M)


def train_reinforce(config: ReinforceConfig | None = None, progress: bool = False) -> ReinforceResult:
    """REINFORCE (reward-to-go, optional learned value baseline) on a Gymnasium discrete-action env."""
    from .rollout import evaluate, make_vec_env, space_dims

    cfg = (config or ReinforceConfig()).validate()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    env = make_vec_env(cfg.env_id, cfg.n_episodes, cfg.seed)
    obs_dim, n_act, cont = space_dims(env)
    if cont:
        raise ValueError("train_reinforce handles discrete actions only")
    policy = CategoricalPolicy(obs_dim, n_act, cfg.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value = mlp([obs_dim, 64, 1], activation="tanh") if cfg.baseline == "value" else None
    vopt = torch.optim.Adam(value.parameters(), lr=cfg.value_lr) if value is not None else None
    batch_ret, steps_hist, ev_u, ev_s, ev_r = [], [], [], [], []
    steps, reached = 0, None
    it = range(cfg.n_updates)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="REINFORCE", mininterval=1.0)
    for u in it:
        O, A, R, M = collect_episodes(env, policy, cfg.max_steps, seed=cfg.seed * 100_003 + u * cfg.n_episodes)
        G = reward_to_go(R, M, cfg.gamma)
        steps += int(M.sum())
        batch_ret.append(float((R * M).sum(0).mean()))
        steps_hist.append(steps)
        ot = torch.as_tensor(O)
        adv = torch.as_tensor(G, dtype=torch.float32)
        mt = torch.as_tensor(M, dtype=torch.float32)
        if value is not None:
            with torch.no_grad():
                adv = adv - value(ot).squeeze(-1)
        if cfg.normalize:
            mean = (adv * mt).sum() / mt.sum()
            std = (((adv - mean) ** 2 * mt).sum() / mt.sum()).sqrt()
            adv = (adv - mean) / (std + 1e-8)
        logp = policy.dist(ot).log_prob(torch.as_tensor(A))
        loss = reinforce_loss(logp, adv, mask=mt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if value is not None:
            gt = torch.as_tensor(G, dtype=torch.float32)
            for _ in range(cfg.value_epochs):
                vl = (((value(ot).squeeze(-1) - gt) ** 2) * mt).sum() / mt.sum()
                vopt.zero_grad()
                vl.backward()
                vopt.step()
        if (u + 1) % cfg.eval_every == 0 or u == cfg.n_updates - 1:
            rets = evaluate(policy.greedy, cfg.env_id, cfg.eval_episodes, seed=50_000 + u)
            ev_u.append(u + 1)
            ev_s.append(steps)
            ev_r.append(float(rets.mean()))
            if cfg.stop_return is not None and ev_r[-1] >= cfg.stop_return:
                reached = steps
                break
    env.close()
    return ReinforceResult(policy, cfg, batch_ret, steps_hist, ev_u, ev_s, ev_r, reached,
                           time.perf_counter() - t0)


__all__ = ["CategoricalPolicy", "reward_to_go", "reinforce_loss", "tabular_logits", "exact_surrogate_gradient",
           "exact_objective_of_params", "sampled_surrogate_gradient", "ReinforceConfig", "ReinforceResult",
           "collect_episodes", "train_reinforce"]
