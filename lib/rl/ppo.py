"""Proximal Policy Optimization: PPO-Clip and PPO-Penalty (adaptive KL), and the losses they share.

The loss functions here are model-agnostic (they take log-probabilities and advantages of any
shape), so the same code serves CartPole and a language model (``lib.align.grpo`` and the RLHF
chapter import them):

* :func:`clipped_surrogate` — ``min(r A, clip(r, 1-eps, 1+eps) A)`` with ``r = pi/pi_old``, plus the
  clip fraction and approximate KL diagnostics;
* :func:`kl_penalty_surrogate` — ``r A - beta KL`` (PPO-Penalty), with :class:`AdaptiveKLController`;
* :func:`kl_estimators` — Schulman's k1 / k2 / k3 sample estimators of ``KL(pi_old || pi)``;
* :func:`value_loss` — squared error, optionally clipped around the old values.

:func:`train_ppo` runs the algorithm: rollouts from vectorised environments into a
:class:`~lib.rl.rollout.RolloutBuffer`, GAE, then ``n_epochs`` passes of shuffled minibatches,
logging per epoch the approx-KL, clip fraction, losses and entropy.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from .actor_critic import check_config, make_policy, run_on_policy
from .rollout import RolloutBuffer

VARIANTS = ("clip", "penalty")


def _same_shape(**tensors):
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{k} must be a torch tensor, got {type(v).__name__}")
    if len(set(shapes.values())) != 1:
        raise ValueError(f"inputs must share one shape, got {shapes}")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    if mask.shape != x.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(x.shape)}")
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def clip_objective(ratio, advantage, clip_eps: float = 0.2):
    """The per-sample PPO-Clip objective ``min(r A, clip(r, 1-eps, 1+eps) A)`` (to be maximised).

    Works on numpy arrays or torch tensors (broadcasting); used to draw the objective's curves.
    """
    if not 0.0 < clip_eps < 1.0:
        raise ValueError(f"clip_eps must be in (0, 1), got {clip_eps}")
    if isinstance(ratio, torch.Tensor):
        return torch.minimum(ratio * advantage, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantage)
    ratio = np.asarray(ratio, dtype=np.float64)
    if np.any(ratio < 0):
        raise ValueError("ratio = pi/pi_old must be non-negative")
    return np.minimum(ratio * advantage, np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage)


def kl_estimators(logp_new: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
    """Sample estimates of ``KL(pi_old || pi_new)`` from actions drawn from ``pi_old``.

    With ``log r = logp_new - logp_old``: k1 = ``-log r`` (unbiased, high variance, can be negative),
    k2 = ``(log r)^2 / 2`` (biased, low variance), k3 = ``(r - 1) - log r`` (unbiased and >= 0; the
    "approx_kl" PPO logs). Returns the three means (0-d tensors; ``mask`` selects valid entries).
    """
    _same_shape(logp_new=logp_new, logp_old=logp_old)
    log_r = logp_new - logp_old
    return {"k1": _masked_mean(-log_r, mask), "k2": _masked_mean(0.5 * log_r.pow(2), mask),
            "k3": _masked_mean(torch.expm1(log_r) - log_r, mask)}


def clipped_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                      clip_eps: float = 0.2, mask: torch.Tensor | None = None):
    """PPO-Clip policy loss ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))``.

    Inputs share one shape (e.g. (batch,) for CartPole, (batch, tokens) for a language model with a
    ``mask`` of valid tokens). Returns ``(loss, info)`` with ``info`` = ``clip_fraction`` (share of
    samples with ``|r - 1| > eps``), ``approx_kl`` (k3), ``ratio_mean``, ``ratio_max``.
    """
    _same_shape(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    if not 0.0 < clip_eps < 1.0:
        raise ValueError(f"clip_eps must be in (0, 1), got {clip_eps}")
    log_r = logp_new - logp_old.detach()
    ratio = log_r.exp()
    adv = advantages.detach()
    obj = torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    loss = -_masked_mean(obj, mask)
    with torch.no_grad():
        clipped = ((ratio - 1).abs() > clip_eps).float()
        info = {"clip_fraction": float(_masked_mean(clipped, mask)),
                "approx_kl": float(_masked_mean(torch.expm1(log_r) - log_r, mask)),
                "ratio_mean": float(_masked_mean(ratio, mask)),
                "ratio_max": float(ratio.max())}
    return loss, info


def kl_penalty_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                         beta: float, mask: torch.Tensor | None = None):
    """PPO-Penalty policy loss ``-mean(r A) + beta * KL`` with the k3 estimator of ``KL(pi_old || pi)``."""
    _same_shape(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    log_r = logp_new - logp_old.detach()
    ratio = log_r.exp()
    kl = _masked_mean(torch.expm1(log_r) - log_r, mask)
    loss = -_masked_mean(ratio * advantages.detach(), mask) + beta * kl
    with torch.no_grad():
        info = {"approx_kl": float(kl), "ratio_mean": float(_masked_mean(ratio, mask)),
                "ratio_max": float(ratio.max()), "clip_fraction": float(_masked_mean(((ratio - 1).abs() > 0.2).float(), mask))}
    return loss, info


def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip_eps: float | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``mean((V - G)^2)``; with ``clip_eps`` the PPO2 clipped variant ``max((V-G)^2, (V_clip-G)^2)``."""
    _same_shape(values=values, returns=returns)
    err = (values - returns.detach()).pow(2)
    if clip_eps is not None:
        if old_values is None:
            raise ValueError("clipped value loss needs old_values")
        v_clip = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        err = torch.maximum(err, (v_clip - returns.detach()).pow(2))
    return _masked_mean(err, mask)


class AdaptiveKLController:
    """PPO-Penalty's beta schedule: double beta when KL > 1.5 target, halve it when KL < target / 1.5."""

    def __init__(self, beta: float = 1.0, target: float = 0.01, factor: float = 2.0, band: float = 1.5):
        if beta <= 0 or target <= 0 or factor <= 1 or band <= 1:
            raise ValueError("need beta > 0, target > 0, factor > 1, band > 1")
        self.beta, self.target, self.factor, self.band = float(beta), float(target), float(factor), float(band)

    def update(self, kl: float) -> float:
        if kl > self.target * self.band:
            self.beta *= self.factor
        elif kl < self.target / self.band:
            self.beta /= self.factor
        return self.beta


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """``1 - Var[target - pred] / Var[target]`` (1 = perfect critic, 0 = predicts the mean, NaN if target is constant)."""
    pred, target = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - pred).var() / var)


@dataclasses.dataclass
class PPOConfig:
    """PPO hyperparameters. Defaults: RL-Zoo's tuned CartPole-v1 settings for SB3 PPO."""

    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 32
    batch_size: int = 256
    n_epochs: int = 20
    gamma: float = 0.98
    lam: float = 0.8
    lr: float = 1e-3
    anneal: bool = True            # linear decay of lr and clip_eps to 0 (zoo's lin_1e-3, lin_0.2)
    variant: str = "clip"          # "clip" or "penalty"
    clip_eps: float = 0.2
    kl_target: float = 0.01        # PPO-Penalty's target KL per update
    beta_init: float = 1.0
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    target_kl: float | None = None  # optional early stop of the epochs (SB3's target_kl)
    normalize_advantages: bool = True
    hidden: tuple = (64, 64)
    eval_every: int = 10_000
    eval_episodes: int = 10


def ppo_update(policy, optimizer, buffer: RolloutBuffer, cfg: PPOConfig, rng: np.random.Generator,
               progress_frac: float = 0.0, kl_ctl: AdaptiveKLController | None = None) -> dict:
    """One PPO update phase: ``n_epochs`` shuffled passes over the buffer in minibatches.

    Returns a dict with per-epoch lists (``approx_kl``, ``clip_fraction``, ``policy_loss``,
    ``value_loss``, ``entropy``), the number of gradient steps and, for PPO-Penalty, ``beta``.
    """
    if cfg.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {cfg.variant!r}")
    frac_left = 1.0 - progress_frac if cfg.anneal else 1.0
    lr = cfg.lr * max(frac_left, 0.0)
    for g in optimizer.param_groups:
        g["lr"] = lr
    clip_eps = max(cfg.clip_eps * frac_left, 1e-6)
    out = {k: [] for k in ("approx_kl", "clip_fraction", "policy_loss", "value_loss", "entropy")}
    n_grad = 0
    stop = False
    for _epoch in range(cfg.n_epochs):
        sums = {k: 0.0 for k in out}
        nb = 0
        for mb in buffer.minibatches(cfg.batch_size, rng, cfg.normalize_advantages):
            lp, ent, v = policy.evaluate_actions(mb["obs"], mb["actions"])
            if cfg.variant == "clip":
                pl, info = clipped_surrogate(lp, mb["log_probs"], mb["advantages"], clip_eps)
            else:
                pl, info = kl_penalty_surrogate(lp, mb["log_probs"], mb["advantages"], kl_ctl.beta)
            vl = value_loss(v, mb["returns"])
            loss = pl + cfg.vf_coef * vl - cfg.ent_coef * ent.mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            optimizer.step()
            n_grad += 1
            nb += 1
            for k, val in (("approx_kl", info["approx_kl"]), ("clip_fraction", info["clip_fraction"]),
                           ("policy_loss", pl.item()), ("value_loss", vl.item()), ("entropy", ent.mean().item())):
                sums[k] += val
            if cfg.target_kl is not None and info["approx_kl"] > 1.5 * cfg.target_kl:
                stop = True
                break
        for k in out:
            out[k].append(sums[k] / nb)
        if stop:
            break
    out["n_grad_steps"] = n_grad
    out["lr"] = lr
    out["clip_eps"] = clip_eps
    if cfg.variant == "penalty":
        with torch.no_grad():
            data = buffer.flat()
            lp, _, _ = policy.evaluate_actions(data["obs"], data["actions"])
            kl = float(kl_estimators(lp, data["log_probs"])["k3"])
        out["kl_after"] = kl
        out["beta"] = kl_ctl.beta
        kl_ctl.update(kl)
    return out


def train_ppo(cfg: PPOConfig | None = None, seed: int = 0, progress: bool = False, stop_at: float | None = None):
    """Train PPO (Clip or Penalty per ``cfg.variant``); returns ``(policy, OnPolicyLog)``."""
    cfg = cfg or PPOConfig()
    check_config(cfg)
    if cfg.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {cfg.variant!r}")
    if cfg.batch_size > cfg.n_steps * cfg.n_envs:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the rollout size {cfg.n_steps * cfg.n_envs}")
    if cfg.n_epochs < 1:
        raise ValueError(f"n_epochs must be >= 1, got {cfg.n_epochs}")
    policy = make_policy(cfg, seed)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
    rng = np.random.default_rng(seed)
    kl_ctl = AdaptiveKLController(cfg.beta_init, cfg.kl_target) if cfg.variant == "penalty" else None

    def update(buf, frac):
        prev = (frac - 1.0 / max(1, cfg.total_steps // (cfg.n_steps * cfg.n_envs)))
        d = ppo_update(policy, opt, buf, cfg, rng, max(prev, 0.0), kl_ctl)
        d["explained_variance"] = explained_variance(buf.values, buf.returns)
        return d

    log = run_on_policy(cfg, policy, update, seed, progress, stop_at)
    return policy, log


__all__ = ["clip_objective", "kl_estimators", "clipped_surrogate", "kl_penalty_surrogate", "value_loss",
           "AdaptiveKLController", "explained_variance", "PPOConfig", "ppo_update", "train_ppo", "VARIANTS"]
