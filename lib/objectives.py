"""The leaf math of policy optimization, written once: masked means, sample estimators of the
KL divergence, the importance-weighted and clipped surrogates, the value loss, explained variance.

Every function takes per-sample (or per-token) log-probabilities and advantages of any shape, so
the same lines serve CartPole (``(batch,)``) and a language model (``(batch, tokens)`` with a mask
of the real completion tokens). PPO and TRPO (``lib.rl``) and GRPO (``lib.align``) all import
from here; nothing here knows about a model, an environment or an optimizer.

* :func:`masked_mean` — the mean over the entries a mask selects (all entries without a mask);
* :func:`kl_k1`, :func:`kl_k2`, :func:`kl_k3` — Schulman's per-sample estimators of
  ``KL(p || q)`` from samples of ``p``; :func:`kl_estimators` — their (masked) means;
* :func:`clip_objective` — PPO-Clip's per-sample ``min(r A, clip(r, 1-eps, 1+eps) A)``, the one
  place the min/clamp is written; :func:`clipped_surrogate` — the loss built on it;
* :func:`importance_surrogate` — ``mean(r A)``, TRPO's surrogate and PPO-Penalty's first term;
  :func:`kl_penalty_surrogate` — PPO-Penalty's loss ``-mean(r A) + beta KL``;
* :func:`value_loss` — squared error of the critic, optionally clipped around the old values;
* :func:`clip_fraction` — the share of samples whose ratio left the clip range (a diagnostic);
* :func:`explained_variance` — how much of the returns' variance the critic explains;
* :func:`bradley_terry_loss` — the reward model's pairwise loss ``-log sigma(s_w - s_l)``.

Book: seed-67, seed-68, seed-70, seed-71, seed-72 (the losses of TRPO, PPO and GRPO), seed-80
(the Bradley–Terry loss of the reward model).
"""
from __future__ import annotations

import numpy as np
import torch


def _check_tensors(**tensors) -> None:
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{k} must be a torch tensor, got {type(v).__name__}")
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"inputs must share one shape, got {shapes}")


def _check_clip_eps(clip_eps) -> float:
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, (int, float, np.floating)) \
            or not 0.0 < clip_eps < 1.0:
        raise ValueError(f"clip_eps must be a number in (0, 1), got {clip_eps!r}")
    return float(clip_eps)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None, dim: int | None = None):
    """Mean of ``x`` over the entries where ``mask`` is 1 (over all entries when ``mask`` is None).

    With ``dim`` the mean is taken along that dimension only (one value per row, e.g. per
    completion); a row with no selected entry gives 0 (its denominator is clamped to 1).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if mask is None:
        return x.mean() if dim is None else x.mean(dim)
    if not isinstance(mask, torch.Tensor) or mask.shape != x.shape:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask has shape {got}, expected {tuple(x.shape)}")
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp_min(1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


# ------------------------------------------------------------------ KL estimators
# For samples x ~ p and the log ratio log r = log q(x) - log p(x), each estimator's mean over the
# samples estimates KL(p || q) (Schulman, "Approximating KL divergence", 2020).
def _log_ratio(logp_sampler: torch.Tensor, logp_other: torch.Tensor) -> torch.Tensor:
    _check_tensors(logp_sampler=logp_sampler, logp_other=logp_other)
    return logp_other - logp_sampler


def kl_k1(logp_sampler: torch.Tensor, logp_other: torch.Tensor) -> torch.Tensor:
    """Per-sample ``-log r``: unbiased for ``KL(sampler || other)``, high variance, can be < 0."""
    return -_log_ratio(logp_sampler, logp_other)


def kl_k2(logp_sampler: torch.Tensor, logp_other: torch.Tensor) -> torch.Tensor:
    """Per-sample ``(log r)^2 / 2``: biased, low variance, >= 0."""
    return 0.5 * _log_ratio(logp_sampler, logp_other).pow(2)


def kl_k3(logp_sampler: torch.Tensor, logp_other: torch.Tensor) -> torch.Tensor:
    """Per-sample ``(r - 1) - log r``: unbiased for ``KL(sampler || other)`` and >= 0.

    ``logp_sampler`` are the log-probabilities of the samples under the distribution that drew
    them. PPO's "approx_kl" is ``kl_k3(logp_old, logp_new)`` (actions drawn by the old policy);
    GRPO's penalty is ``kl_k3(logp, logp_ref)`` (tokens drawn by the current policy).
    """
    log_r = _log_ratio(logp_sampler, logp_other)
    return torch.expm1(log_r) - log_r


def kl_estimators(logp_new: torch.Tensor, logp_old: torch.Tensor,
                  mask: torch.Tensor | None = None) -> dict:
    """The three estimates of ``KL(pi_old || pi_new)`` from actions drawn by ``pi_old``.

    Returns ``{"k1", "k2", "k3"}``, each the (masked) mean of :func:`kl_k1` / :func:`kl_k2` /
    :func:`kl_k3` (0-d tensors).
    """
    return {name: masked_mean(fn(logp_old, logp_new), mask)
            for name, fn in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3))}


# ------------------------------------------------------------------ surrogates
def clip_objective(ratio, advantage, clip_eps: float = 0.2):
    """PPO-Clip's per-sample objective ``min(r A, clip(r, 1-eps, 1+eps) A)`` (to be maximised).

    Works on torch tensors (differentiable) or numpy arrays, with broadcasting; ``clip_eps`` in
    (0, 1) (0.2 in the PPO paper).
    """
    clip_eps = _check_clip_eps(clip_eps)
    if isinstance(ratio, torch.Tensor):
        return torch.minimum(ratio * advantage,
                             ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantage)
    ratio = np.asarray(ratio, dtype=np.float64)
    if np.any(ratio < 0):
        raise ValueError("ratio = pi/pi_old must be non-negative")
    return np.minimum(ratio * advantage, np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage)


def clip_fraction(ratio: torch.Tensor, clip_eps: float, mask: torch.Tensor | None = None) -> float:
    """Share of the (masked) samples whose ratio lies outside ``[1 - clip_eps, 1 + clip_eps]``."""
    with torch.no_grad():
        return float(masked_mean(((ratio - 1).abs() > clip_eps).to(ratio.dtype), mask))


def _ratio_info(logp_new, logp_old, ratio, clip_eps, mask) -> dict:
    """Diagnostics of an update: clip fraction, k3 approx KL(pi_old || pi), mean and max ratio."""
    with torch.no_grad():
        return {"clip_fraction": clip_fraction(ratio, clip_eps, mask),
                "approx_kl": float(masked_mean(kl_k3(logp_old.detach(), logp_new), mask)),
                "ratio_mean": float(masked_mean(ratio, mask)),
                "ratio_max": float(ratio.max())}


def clipped_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                      clip_eps: float = 0.2, mask: torch.Tensor | None = None):
    """PPO-Clip policy loss ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))``, ``r = pi/pi_old``.

    Inputs share one shape ((batch,) for CartPole, (batch, tokens) with a ``mask`` of valid
    tokens for a language model). Returns ``(loss, info)`` with ``info`` = ``clip_fraction``
    (share of samples with ``|r - 1| > eps``), ``approx_kl`` (k3), ``ratio_mean``, ``ratio_max``.
    """
    _check_tensors(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    clip_eps = _check_clip_eps(clip_eps)
    ratio = torch.exp(logp_new - logp_old.detach())
    loss = -masked_mean(clip_objective(ratio, advantages.detach(), clip_eps), mask)
    return loss, _ratio_info(logp_new, logp_old, ratio, clip_eps, mask)


def importance_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor,
                         advantages: torch.Tensor, mask: torch.Tensor | None = None):
    """``mean(r A)`` with ``r = exp(logp_new - logp_old)``: the importance-weighted surrogate
    whose gradient at ``r = 1`` is the policy gradient (TRPO maximises it inside a KL ball)."""
    _check_tensors(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    return masked_mean(torch.exp(logp_new - logp_old.detach()) * advantages.detach(), mask)


def kl_penalty_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                         beta: float, clip_eps: float, mask: torch.Tensor | None = None):
    """PPO-Penalty policy loss ``-mean(r A) + beta * KL`` (k3 estimate of ``KL(pi_old || pi)``).

    ``clip_eps`` only sets the diagnostic ``clip_fraction`` (share of samples with
    ``|r - 1| > clip_eps``), so the penalty and the clip variants report comparable numbers.
    Returns ``(loss, info)`` with the keys of :func:`clipped_surrogate`.
    """
    _check_tensors(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating)) or not beta >= 0:
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    clip_eps = _check_clip_eps(clip_eps)
    ratio = torch.exp(logp_new - logp_old.detach())
    kl = masked_mean(kl_k3(logp_old.detach(), logp_new), mask)
    loss = -masked_mean(ratio * advantages.detach(), mask) + beta * kl
    return loss, _ratio_info(logp_new, logp_old, ratio, clip_eps, mask)


# ------------------------------------------------------------------ the critic
def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip_eps: float | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``mean((V - G)^2)``; with ``clip_eps`` the PPO2 clipped variant ``max((V-G)^2, (V_clip-G)^2)``
    where ``V_clip = V_old + clip(V - V_old, -eps, eps)``."""
    _check_tensors(values=values, returns=returns)
    err = (values - returns.detach()).pow(2)
    if clip_eps is not None:
        if old_values is None:
            raise ValueError("clipped value loss needs old_values")
        v_clip = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        err = torch.maximum(err, (v_clip - returns.detach()).pow(2))
    return masked_mean(err, mask)


def explained_variance(pred, target) -> float:
    """``1 - Var[target - pred] / Var[target]`` (1: perfect critic, 0: predicts the mean, NaN when
    the target is constant)."""
    pred, target = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {pred.shape} vs {target.shape}")
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - pred).var() / var)


# ------------------------------------------------------------------ preferences
def bradley_terry_loss(score_chosen: torch.Tensor, score_rejected: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of ``-log sigma(s_w - s_l)``: the reward model's loss on (B,) scores of the
    chosen and rejected completions (Bradley & Terry 1952; RLHF's second stage). Its derivative in
    the margin ``s_w - s_l`` is ``sigma(s_w - s_l) - 1`` per pair (over B for the mean)."""
    _check_tensors(score_chosen=score_chosen, score_rejected=score_rejected)
    if score_chosen.dim() != 1:
        raise ValueError(f"scores must be 1-D (one per pair), got shape {tuple(score_chosen.shape)}")
    return -torch.nn.functional.logsigmoid(score_chosen - score_rejected).mean()


__all__ = ["masked_mean", "kl_k1", "kl_k2", "kl_k3", "kl_estimators", "clip_objective", "clip_fraction",
           "clipped_surrogate", "importance_surrogate", "kl_penalty_surrogate", "value_loss",
           "explained_variance", "bradley_terry_loss"]
