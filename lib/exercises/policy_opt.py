"""Exercise checkers for Part 7 (policy optimization): GAE, the clipped surrogate, IS, group advantages, DPG.

Book: seed-66 (GAE), seed-69 (importance sampling), seed-70 (PPO-Clip), seed-72 (GRPO), seed-74 (the
DPG gradient).
"""
from __future__ import annotations

from typing import Callable


from . import CheckReport, check_function


def _ref_gae(rewards, values, last_value, dones, gamma, lam):
    from lib.rl.gae import compute_gae

    adv, _ = compute_gae(rewards, values, last_value, gamma, lam, terminated=dones)
    return adv


def check_gae(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, values, last_value, dones, gamma, lam)`` -> GAE advantages of one environment.

    1-D arrays of length T; ``dones[t] = 1`` when the episode terminated at step ``t`` (no bootstrap,
    recursion cut); ``last_value`` is V of the observation after the last step.
    """
    def make(rng):
        T = int(rng.integers(1, 15))
        return {"rewards": rng.normal(size=T).round(2), "values": rng.normal(size=T).round(2),
                "last_value": round(float(rng.normal()), 2), "dones": (rng.random(T) < 0.2).astype(float),
                "gamma": float(rng.choice([0.9, 0.99, 1.0])), "lam": float(rng.choice([0.0, 0.5, 0.95, 1.0]))}

    return check_function(candidate, _ref_gae, make, name="GAE advantages", trials=trials)


def _ref_clip(ratio, advantage, clip_eps):
    from lib.objectives import clip_objective

    return clip_objective(ratio, advantage, clip_eps)


def check_clip_objective(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(ratio, advantage, clip_eps)`` -> per-sample PPO-Clip objective ``min(r A, clip(r) A)`` (numpy)."""
    def make(rng):
        n = int(rng.integers(1, 20))
        return {"ratio": rng.uniform(0, 2.5, size=n), "advantage": rng.normal(size=n),
                "clip_eps": float(rng.choice([0.1, 0.2, 0.3]))}

    return check_function(candidate, _ref_clip, make, name="PPO clipped objective", trials=trials)


def _ref_is(fx, logp, logq, self_normalized):
    from lib.rl.importance import is_estimate

    return is_estimate(fx, logp, logq, self_normalized)


def check_is_estimate(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(fx, logp, logq, self_normalized)`` -> importance-sampling estimate of E_p[f] (a float)."""
    def make(rng):
        n = int(rng.integers(2, 30))
        return {"fx": rng.normal(size=n), "logp": rng.normal(size=n), "logq": rng.normal(size=n),
                "self_normalized": bool(rng.integers(2))}

    return check_function(candidate, _ref_is, make, name="importance-sampling estimate", trials=trials)


def _ref_group(rewards, variant):
    from lib.align.grpo import group_advantages

    return group_advantages(rewards, variant)


def check_group_advantages(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(rewards, variant)`` -> GRPO advantages for rewards of shape (n_prompts, group_size).

    ``variant`` is ``"std"`` ((r - mean) / (std + 1e-4), sample std with ddof=1 over the group, as TRL) or
    ``"mean"`` (r - mean only).
    """
    def make(rng):
        P, G = int(rng.integers(1, 5)), int(rng.integers(2, 8))
        r = rng.integers(0, 2, size=(P, G)).astype(float) if rng.random() < 0.5 else rng.normal(size=(P, G))
        return {"rewards": r, "variant": str(rng.choice(["std", "mean"]))}

    return check_function(candidate, _ref_group, make, name="group-relative advantages", trials=trials, rtol=1e-5,
                          atol=1e-6)


def _ref_dpg(W, K, S):
    import torch

    from lib.rl.ddpg import dpg_gradient

    lin = torch.nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W, dtype=torch.float64))
    Kt = torch.as_tensor(K, dtype=torch.float64)
    q = lambda s, a: -((a - s @ Kt.T) ** 2).sum(-1) + s.pow(2).sum(-1)
    return dpg_gradient(lin, q, torch.as_tensor(S, dtype=torch.float64))[0].numpy()


def check_dpg(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(W, K, S)`` -> ``grad_W mean_i Q(s_i, W s_i)`` for ``Q(s, a) = -||a - K s||^2 + ||s||^2``.

    ``W``, ``K`` of shape (1, 3), states ``S`` of shape (n, 3) (numpy); the reference is
    ``lib.rl.ddpg.dpg_gradient`` on a linear actor.
    """
    def make(rng):
        return {"W": rng.normal(size=(1, 3)), "K": rng.normal(size=(1, 3)),
                "S": rng.normal(size=(int(rng.integers(2, 20)), 3))}

    return check_function(candidate, _ref_dpg, make, name="DPG gradient", trials=trials, rtol=1e-4, atol=1e-4)


__all__ = ["check_gae", "check_clip_objective", "check_is_estimate", "check_group_advantages", "check_dpg"]
