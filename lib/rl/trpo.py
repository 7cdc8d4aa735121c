"""Trust Region Policy Optimization: natural-gradient steps inside a KL ball.

Maximise the surrogate ``L(theta) = E[pi_theta(a|s) / pi_old(a|s) * A]`` subject to
``mean_s KL(pi_old(.|s) || pi_theta(.|s)) <= delta``. With ``g = grad L`` and ``F`` the Fisher
matrix (the Hessian of the mean KL at ``theta_old``), the step direction ``x = F^{-1} g`` comes from
conjugate gradient using only Fisher-vector products ``F v`` (two backward passes, never ``F``
itself); it is scaled to the boundary, ``beta = sqrt(2 delta / x^T F x)``, and a backtracking line
search halves it until the *exact* KL is ``<= delta`` and the surrogate improved. Every accepted
step therefore satisfies the constraint (tested); when no fraction works the policy is left unchanged.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .actor_critic import check_config, make_policy, run_on_policy
from .ppo import explained_variance, value_loss


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


def _detached_dist(policy, obs):
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
    old_dist = _detached_dist(policy, obs)
    with torch.no_grad():
        old_logp = policy.log_prob(old_dist, actions)
    adv = advantages.detach()

    def surrogate():
        logp = policy.log_prob(policy.dist(obs), actions)
        return (torch.exp(logp - old_logp) * adv).mean()

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
    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 128
    gamma: float = 0.99
    lam: float = 0.95
    max_kl: float = 0.01
    cg_iters: int = 10
    damping: float = 0.1
    lr: float = 1e-3             # critic's Adam learning rate
    critic_epochs: int = 10
    critic_batch: int = 256
    hidden: tuple = (64, 64)
    eval_every: int = 10_000
    eval_episodes: int = 10


def train_trpo(cfg: TRPOConfig | None = None, seed: int = 0, progress: bool = False, stop_at: float | None = None):
    """Train TRPO (actor by :func:`trpo_step`, critic by Adam regression on the lambda-returns)."""
    cfg = cfg or TRPOConfig()
    check_config(cfg)
    policy = make_policy(cfg, seed)
    critic_opt = torch.optim.Adam(policy.critic.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)

    def update(buf, frac):
        data = buf.flat()
        adv = data["advantages"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        info = trpo_step(policy, data["obs"], data["actions"], adv, cfg.max_kl, cfg.cg_iters, cfg.damping)
        n = data["obs"].shape[0]
        vls = []
        for _ in range(cfg.critic_epochs):
            perm = torch.as_tensor(rng.permutation(n))
            for s in range(0, n, cfg.critic_batch):
                idx = perm[s:s + cfg.critic_batch]
                vl = value_loss(policy.value(data["obs"][idx]), data["returns"][idx])
                critic_opt.zero_grad()
                vl.backward()
                critic_opt.step()
                vls.append(vl.item())
        info = {k: v for k, v in info.items() if k != "tried"}
        info["value_loss"] = float(np.mean(vls))
        info["explained_variance"] = explained_variance(buf.values, buf.returns)
        return info

    log = run_on_policy(cfg, policy, update, seed, progress, stop_at)
    return policy, log


__all__ = ["conjugate_gradient", "actor_params", "mean_kl", "fisher_vector_product", "trpo_step",
           "TRPOConfig", "train_trpo"]
