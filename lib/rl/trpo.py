"""Trust Region Policy Optimization: natural-gradient steps inside a KL ball.

Maximise the surrogate ``L(theta) = E[pi_theta(a|s) / pi_old(a|s) * A]`` subject to
``mean_s KL(pi_old(.|s) || pi_theta(.|s)) <= delta``. With ``g = grad L`` and ``F`` the Fisher
matrix (the Hessian of the mean KL at ``theta_old``), the step direction ``x = F^{-1} g`` comes from
conjugate gradient using only Fisher-vector products ``F v`` (two backward passes, never ``F``
itself); it is scaled to the boundary, ``beta = sqrt(2 delta / x^T F x)``, and a backtracking line
search halves it until the *exact* KL is ``<= delta`` and the surrogate improved. Every accepted
step therefore satisfies the constraint (tested); when no fraction works the policy is left unchanged.

:func:`train_trpo` is the whole algorithm in one loop: rollout -> GAE -> one :func:`trpo_step` of
the actor -> epochs of critic regression -> diagnostics -> evaluation. It shares only leaf pieces
with A2C and PPO (the rollout buffer, GAE, :mod:`lib.objectives`); it does not import PPO, which
the book teaches after it.

Book: seed-68 (TRPO and its trust region), seed-67 (the evolution of PPO: TRPO's run).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from lib import progress as progress_bar
from lib.objectives import explained_variance, importance_surrogate, value_loss
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range, eval_seed

from .actor_critic import ActorCritic, check_on_policy_config, make_policy
from .rollout import EpisodeTracker, RolloutBuffer, collect_rollout, evaluate, make_vec_env, space_dims


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, n_iters: int = 10,
                       tol: float = 1e-10) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given only ``v -> A v``.

    Returns ``x`` after at most ``n_iters`` iterations (exact in ``dim`` iterations in exact arithmetic).
    """
    if not isinstance(b, torch.Tensor) or b.ndim != 1:
        raise ValueError("b must be a 1-D torch tensor")
    if n_iters < 1:
        raise ValueError(f"n_iters must be >= 1, got {n_iters}")
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(n_iters):
        if rr <= tol:
            break
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def actor_params(policy) -> list[nn.Parameter]:
    """The parameters TRPO moves: the actor's weights (and the log-std of a Gaussian policy)."""
    ps = list(policy.actor.parameters())
    if getattr(policy, "continuous", False):
        ps.append(policy.log_std)
    return ps


def mean_kl(policy, obs: torch.Tensor, old_dist) -> torch.Tensor:
    """Exact ``mean_s KL(pi_old(.|s) || pi_theta(.|s))`` over the batch of states."""
    new = policy.dist(obs)
    kl = torch.distributions.kl_divergence(old_dist, new)
    return (kl.sum(-1) if policy.continuous else kl).mean()


def fisher_vector_product(policy, obs: torch.Tensor, old_dist, v: torch.Tensor, damping: float = 0.1) -> torch.Tensor:
    """``(F + damping I) v`` with ``F`` the Hessian of the mean KL at the current parameters."""
    params = actor_params(policy)
    kl = mean_kl(policy, obs, old_dist)
    grads = torch.autograd.grad(kl, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    hv = torch.autograd.grad(flat @ v, params)
    return torch.cat([h.reshape(-1) for h in hv]).detach() + damping * v


def detached_dist(policy, obs):
    """The policy's action distribution at ``obs``, frozen (no graph): ``pi_old`` of a TRPO step."""
    with torch.no_grad():
        d = policy.dist(obs)
    if policy.continuous:
        return torch.distributions.Normal(d.loc.clone(), d.scale.clone(), validate_args=False)
    return torch.distributions.Categorical(logits=d.logits.clone(), validate_args=False)


def trpo_step(policy, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor, max_kl: float = 0.01,
              cg_iters: int = 10, damping: float = 0.1, backtrack_coef: float = 0.5, max_backtracks: int = 10,
              accept_ratio: float = 0.0) -> dict:
    """One TRPO policy update on a batch; returns diagnostics.

    A point of the line search is accepted when its exact KL is ``<= max_kl`` and its surrogate gain
    exceeds ``accept_ratio`` times the first-order prediction for that fraction (and is positive).
    Keys: ``accepted`` (bool), ``kl`` (exact KL of the accepted step, 0 if rejected), ``step_frac``
    (the accepted fraction of the full step), ``n_backtracks``, ``expected_improve`` (first-order, at
    the full step), ``surrogate_gain`` (actual), ``kl_full`` (KL of the full step), ``tried`` (list
    of ``(frac, kl, gain)`` for every point the line search evaluated).
    """
    if not max_kl > 0:
        raise ValueError(f"max_kl must be positive, got {max_kl}")
    if not 0 < backtrack_coef < 1:
        raise ValueError(f"backtrack_coef must be in (0, 1), got {backtrack_coef}")
    if advantages.shape != (obs.shape[0],):
        raise ValueError(f"advantages must have shape ({obs.shape[0]},), got {tuple(advantages.shape)}")
    params = actor_params(policy)
    old_dist = detached_dist(policy, obs)
    with torch.no_grad():
        old_logp = policy.log_prob(old_dist, actions)
    adv = advantages.detach()

    def surrogate():
        return importance_surrogate(policy.log_prob(policy.dist(obs), actions), old_logp, adv)

    L0 = surrogate()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(L0, params)])
    L0 = L0.item()
    if float(g.norm()) < 1e-12:
        return {"accepted": False, "kl": 0.0, "step_frac": 0.0, "n_backtracks": 0, "expected_improve": 0.0,
                "surrogate_gain": 0.0, "kl_full": 0.0, "tried": []}
    x = conjugate_gradient(lambda v: fisher_vector_product(policy, obs, old_dist, v, damping), g, cg_iters)
    xFx = float(x @ fisher_vector_product(policy, obs, old_dist, x, damping))
    beta = np.sqrt(2 * max_kl / max(xFx, 1e-12))
    full_step = beta * x
    expected = float(g @ full_step)
    theta0 = parameters_to_vector(params).detach().clone()
    tried = []
    out = {"accepted": False, "kl": 0.0, "step_frac": 0.0, "n_backtracks": max_backtracks,
           "expected_improve": expected, "surrogate_gain": 0.0}
    frac = 1.0
    for k in range(max_backtracks):
        vector_to_parameters(theta0 + frac * full_step, params)
        with torch.no_grad():
            kl = float(mean_kl(policy, obs, old_dist))
            gain = float(surrogate()) - L0
        tried.append((frac, kl, gain))
        if kl <= max_kl and gain > 0 and gain >= accept_ratio * frac * expected:
            out.update(accepted=True, kl=kl, step_frac=frac, n_backtracks=k, surrogate_gain=gain)
            break
        frac *= backtrack_coef
    if not out["accepted"]:
        vector_to_parameters(theta0, params)
    out["kl_full"] = tried[0][1]
    out["tried"] = tried
    return out


@dataclasses.dataclass
class TRPOConfig:
    """TRPO hyperparameters. Defaults: Spinning Up's TRPO (``delta`` 0.01, 10 CG iterations,
    damping 0.1, backtrack coefficient 0.8 there, 0.5 here as in Schulman's modular_rl) with
    SB3-style vectorised rollouts; the critic is fitted by Adam as in SB3's ``TRPO``.

    env_id: gymnasium environment with a flat Box observation (Discrete or Box actions).
    total_steps: environment steps over all ``n_envs`` copies (CartPole: 6e4 to 1e5).
    n_envs: parallel environments per rollout (8).
    n_steps: steps per environment per rollout; one TRPO step uses ``n_steps * n_envs``
        transitions (128, so 1024: the Fisher matrix needs a large batch).
    gamma: discount in [0, 1] (0.99).
    lam: GAE lambda in [0, 1] (0.95; Spinning Up 0.97).
    max_kl: the trust region's radius delta on the mean KL (0.001 to 0.05; paper and
        Spinning Up 0.01).
    cg_iters: conjugate-gradient iterations for ``F x = g`` (10).
    damping: ``F + damping I`` keeps the system well conditioned (0.1; Spinning Up 0.1).
    backtrack_coef: the line search multiplies the step by this (0.5 to 0.8).
    max_backtracks: points the line search tries before rejecting the step (10).
    accept_ratio: least share of the first-order predicted gain a point must realise (0.0:
        any positive gain; modular_rl 0.1).
    lr: the critic's Adam learning rate (1e-3).
    critic_epochs: passes of the critic over each rollout (10; Spinning Up 80 full-batch steps).
    critic_batch: the critic's minibatch size (256).
    hidden: hidden layer widths of the actor and critic MLPs ((64, 64)).
    eval_every: environment steps between greedy evaluations (and one at the end).
    eval_episodes: episodes per evaluation, seeded by ``lib.runs.eval_seed(seed)``.
    stop_return: stop at the first evaluation whose mean return reaches it (None: never).
    seed: seeds the network, the environments, the action sampling and the critic's minibatches.
    """

    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 128
    gamma: float = 0.99
    lam: float = 0.95
    max_kl: float = 0.01
    cg_iters: int = 10
    damping: float = 0.1
    backtrack_coef: float = 0.5
    max_backtracks: int = 10
    accept_ratio: float = 0.0
    lr: float = 1e-3
    critic_epochs: int = 10
    critic_batch: int = 256
    hidden: tuple = (64, 64)
    eval_every: int = 10_000
    eval_episodes: int = 10
    stop_return: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_on_policy_config(self)
        check_positive(self, "max_kl")
        check_int(self, "cg_iters", "max_backtracks", "critic_epochs", "critic_batch")
        check_range(self, "damping", 0.0, np.inf, high_open=True)
        check_range(self, "backtrack_coef", 0.0, 1.0, low_open=True, high_open=True)
        check_range(self, "accept_ratio", 0.0, np.inf, high_open=True)


@dataclasses.dataclass
class TRPORun(Run):
    """A finished TRPO run: ``config``, ``log`` and the trained ``policy``.

    Each row of ``log.updates`` holds :func:`trpo_step`'s diagnostics (without ``tried``),
    ``value_loss`` (mean over the critic's minibatches) and ``explained_variance``.
    """

    policy: ActorCritic


def train_trpo(cfg: TRPOConfig | None = None, progress: bool = False) -> TRPORun:
    """Train TRPO (actor by :func:`trpo_step`, critic by Adam regression on the lambda-returns)."""
    cfg = cfg or TRPOConfig()
    policy = make_policy(cfg)
    critic_optimizer = torch.optim.Adam(policy.critic.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)  # the critic's minibatch order
    env = make_vec_env(cfg.env_id, cfg.n_envs, cfg.seed)
    buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, *space_dims(env))
    obs, _ = env.reset(seed=cfg.seed)
    log = TrainLog()
    episodes = EpisodeTracker(cfg.n_envs, log)
    steps_per_update = cfg.n_steps * cfg.n_envs
    n_updates = max(1, cfg.total_steps // steps_per_update)
    next_eval = cfg.eval_every
    with Stopwatch(log), progress_bar(total=n_updates * steps_per_update, desc="TRPO", unit="step",
                                      enabled=progress) as bar:
        for update in range(n_updates):
            # 1. rollout with the current policy
            obs = collect_rollout(env, policy, buffer, obs, episodes)
            # 2. GAE advantages (standardised for the actor) and lambda-returns for the critic
            with torch.no_grad():
                last_values = policy.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            buffer.compute_advantages(last_values, cfg.gamma, cfg.lam)
            data = buffer.flat()
            advantages = data["advantages"]
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            # 3. the actor: one natural-gradient step inside the KL ball, by line search
            info = trpo_step(policy, data["obs"], data["actions"], advantages, cfg.max_kl, cfg.cg_iters,
                             cfg.damping, cfg.backtrack_coef, cfg.max_backtracks, cfg.accept_ratio)
            # 4. the critic: critic_epochs passes of shuffled minibatches on the lambda-returns
            n = data["obs"].shape[0]
            critic_losses = []
            for _ in range(cfg.critic_epochs):
                perm = torch.as_tensor(rng.permutation(n))
                for start in range(0, n, cfg.critic_batch):
                    idx = perm[start:start + cfg.critic_batch]
                    v_loss = value_loss(policy.value(data["obs"][idx]), data["returns"][idx])
                    critic_optimizer.zero_grad()
                    v_loss.backward()
                    critic_optimizer.step()
                    critic_losses.append(v_loss.item())
            # 5. diagnostics, then a greedy evaluation every eval_every steps (and at the end)
            step = (update + 1) * steps_per_update
            info = {k: v for k, v in info.items() if k != "tried"}
            log.record_update(step, **info, value_loss=float(np.mean(critic_losses)),
                              explained_variance=explained_variance(buffer.values, buffer.returns))
            bar.update(steps_per_update)
            if step >= next_eval or update == n_updates - 1:
                next_eval += cfg.eval_every
                mean = log.record_eval(step, lambda: evaluate(
                    policy.deterministic, cfg.env_id, cfg.eval_episodes, seed=eval_seed(cfg.seed)))
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    break
    env.close()
    return TRPORun(cfg, log, policy)


__all__ = ["conjugate_gradient", "actor_params", "mean_kl", "fisher_vector_product", "detached_dist",
           "trpo_step", "TRPOConfig", "TRPORun", "train_trpo"]
