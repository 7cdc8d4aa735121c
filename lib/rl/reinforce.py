"""REINFORCE with neural policies: reward-to-go, an optional learned value baseline.

For episodes ``tau_i`` sampled from ``pi_theta`` the surrogate loss

    L(theta) = -(1/n) sum_i sum_t log pi_theta(a_t|s_t) (G_t - b(s_t)),
    G_t = sum_{k>=t} gamma^(k-t) r_k      (reward-to-go, lib.rl.returns.discounted_returns)

has ``-grad L`` equal to an unbiased estimate of ``grad J`` (for ``gamma = 1``, or with the
``gamma^t`` weights of the discounted objective). :func:`exact_surrogate_gradient` weights every
trajectory of a small finite MDP by its probability, so the estimator's expectation can be
compared with finite differences of the exact objective — the check promised by the book.

:func:`train_reinforce` is the algorithm on a Gymnasium environment in one loop: sample a batch of
whole episodes -> reward-to-go -> advantages against a learned value baseline -> one policy step ->
value regression -> diagnostics -> evaluation.

Book: seed-54 (value-based vs policy-based), seed-55 (policy gradient).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from lib import progress as progress_bar
from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range

from .nets import mlp
from .returns import discounted_returns
from .rollout import evaluate, make_vec_env, space_dims


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
    """``E[-grad L]`` over every trajectory of a small ``lib.rl.tabular.FiniteMDP``.

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
# Update u's episodes start from environment seeds TRAIN_SEED_STRIDE * seed + u * n_episodes + i
# (fresh starts every update; a prime stride keeps the runs of different seeds apart), and its
# evaluation (if any) from EVAL_SEED_BASE + u + i, away from the training seeds of seed 0.
TRAIN_SEED_STRIDE = 100_003
EVAL_SEED_BASE = 50_000


@dataclasses.dataclass
class ReinforceConfig:
    """REINFORCE hyperparameters. Defaults: tuned by the book for CartPole-v1 (Spinning Up's
    ``vpg`` is the same algorithm with GAE; its lr is 3e-4 for the policy, 1e-3 for the value).

    env_id: gymnasium environment with a flat Box observation and Discrete actions.
    n_episodes: whole episodes per policy update, run in parallel (4 to 32).
    n_updates: policy updates (each one gradient step on the batch).
    gamma: discount in [0, 1] of the reward-to-go (0.99).
    lr: the policy's Adam learning rate (1e-3 to 1e-2 for this small batch).
    hidden: hidden layer widths of the policy MLP ((64,)).
    baseline: ``"none"`` or ``"value"`` (a learned ``V(s)`` fitted to the reward-to-go).
    value_lr: the value network's Adam learning rate (1e-2).
    value_epochs: full-batch regression steps of the value network per update (5).
    value_hidden: hidden layer widths of the value MLP ((64,)).
    normalize: standardise the advantages over the batch's steps (True).
    eval_every: updates between greedy evaluations (and one at the end).
    eval_episodes: episodes per evaluation (seeded from :data:`EVAL_SEED_BASE`).
    stop_return: stop at the first evaluation whose mean return reaches it (None: never; 475 is
        CartPole-v1's "solved").
    max_steps: longest episode (CartPole-v1's time limit is 500).
    seed: seeds the networks, the action sampling and (with :data:`TRAIN_SEED_STRIDE`) the
        episodes' starts.
    """

    env_id: str = "CartPole-v1"
    n_episodes: int = 8
    n_updates: int = 300
    gamma: float = 0.99
    lr: float = 5e-3
    hidden: tuple = (64,)
    baseline: str = "value"
    value_lr: float = 1e-2
    value_epochs: int = 5
    value_hidden: tuple = (64,)
    normalize: bool = True
    eval_every: int = 10
    eval_episodes: int = 10
    stop_return: float | None = 475.0
    max_steps: int = 500
    seed: int = 0

    def __post_init__(self):
        check_choice(self, "baseline", ("none", "value"))
        check_int(self, "n_episodes", "n_updates", "eval_every", "eval_episodes", "max_steps", "value_epochs")
        check_int(self, "seed", minimum=0)
        check_range(self, "gamma", 0.0, 1.0)
        check_positive(self, "lr", "value_lr")
        if self.stop_return is not None:
            check_range(self, "stop_return", -np.inf, np.inf, low_open=True, high_open=True)


@dataclasses.dataclass
class ReinforceRun(Run):
    """A finished REINFORCE run: ``config``, ``log``, the ``policy`` and the ``value`` network
    (None without a baseline). Each row of ``log.updates`` holds, at the environment steps so far,
    ``update`` (its number) and ``batch_return`` (the mean return of its training episodes)."""

    policy: CategoricalPolicy
    value: nn.Module | None


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


def train_reinforce(cfg: ReinforceConfig | None = None, progress: bool = False) -> ReinforceRun:
    """REINFORCE (reward-to-go, optional learned value baseline) on a Gymnasium discrete-action env."""
    cfg = cfg or ReinforceConfig()
    torch.manual_seed(cfg.seed)
    env = make_vec_env(cfg.env_id, cfg.n_episodes, cfg.seed)
    obs_dim, n_actions, continuous = space_dims(env)
    if continuous:
        raise ValueError("train_reinforce handles discrete actions only")
    policy = CategoricalPolicy(obs_dim, n_actions, cfg.hidden)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value = mlp([obs_dim, *cfg.value_hidden, 1], activation="tanh") if cfg.baseline == "value" else None
    value_optimizer = torch.optim.Adam(value.parameters(), lr=cfg.value_lr) if value is not None else None
    log = TrainLog()
    steps = 0
    with Stopwatch(log):
        for update in progress_bar(range(cfg.n_updates), enabled=progress, desc="REINFORCE", mininterval=1.0):
            # 1. a batch of whole episodes, time-major, with a mask of the live steps
            O, A, R, M = collect_episodes(env, policy, cfg.max_steps,
                                          seed=TRAIN_SEED_STRIDE * cfg.seed + update * cfg.n_episodes)
            G = reward_to_go(R, M, cfg.gamma)
            steps += int(M.sum())
            obs, mask = torch.as_tensor(O), torch.as_tensor(M, dtype=torch.float32)
            # 2. advantages: reward-to-go minus the value baseline, standardised over the live steps
            adv = torch.as_tensor(G, dtype=torch.float32)
            if value is not None:
                with torch.no_grad():
                    adv = adv - value(obs).squeeze(-1)
            if cfg.normalize:
                mean = (adv * mask).sum() / mask.sum()
                std = (((adv - mean) ** 2 * mask).sum() / mask.sum()).sqrt()
                adv = (adv - mean) / (std + 1e-8)
            # 3. one policy-gradient step on the surrogate
            log_probs = policy.dist(obs).log_prob(torch.as_tensor(A))
            loss = reinforce_loss(log_probs, adv, mask=mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # 4. the baseline: value_epochs full-batch regression steps on the reward-to-go
            if value is not None:
                targets = torch.as_tensor(G, dtype=torch.float32)
                for _ in range(cfg.value_epochs):
                    v_loss = (((value(obs).squeeze(-1) - targets) ** 2) * mask).sum() / mask.sum()
                    value_optimizer.zero_grad()
                    v_loss.backward()
                    value_optimizer.step()
            # 5. diagnostics, then a greedy evaluation every eval_every updates (and at the end)
            log.record_update(steps, update=update + 1, batch_return=float((R * M).sum(0).mean()))
            if (update + 1) % cfg.eval_every == 0 or update == cfg.n_updates - 1:
                mean_return = log.record_eval(steps, lambda: evaluate(
                    policy.greedy, cfg.env_id, cfg.eval_episodes, seed=EVAL_SEED_BASE + update))
                if cfg.stop_return is not None and mean_return >= cfg.stop_return:
                    break
    env.close()
    return ReinforceRun(cfg, log, policy, value)


__all__ = ["CategoricalPolicy", "reward_to_go", "reinforce_loss", "tabular_logits", "exact_surrogate_gradient",
           "exact_objective_of_params", "sampled_surrogate_gradient", "TRAIN_SEED_STRIDE", "EVAL_SEED_BASE",
           "ReinforceConfig", "ReinforceRun", "collect_episodes", "train_reinforce"]
