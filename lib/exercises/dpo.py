"""Checkers for the exercises of Part 4 (DPO): the stratified allocation of prompts, the reward
model's loss, the DPO loss from four log-probs and its gradient weight.

Book: seed-18 (allocation), seed-17 (Bradley–Terry loss), seed-19 (the DPO loss), seed-22 (the
weight of a pair's update).
"""
from __future__ import annotations

from typing import Callable


from lib.exercises import CheckReport, check_function


def _four(rng):
    import torch

    n = int(rng.integers(1, 9))
    lp = [torch.tensor(-rng.gamma(2.0, 6.0, size=n), dtype=torch.float64) for _ in range(4)]
    return {"policy_chosen": lp[0], "policy_rejected": lp[1], "ref_chosen": lp[2], "ref_rejected": lp[3],
            "beta": float(rng.choice([0.01, 0.1, 0.3, 1.0, 3.0]))}


def dpo_loss_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """Mean over pairs of ``-log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l)))``, from (B,)
    sequence log-probs (:func:`lib.align.dpo.dpo_loss`)."""
    from lib.align.dpo import dpo_loss

    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta).mean()


def check_dpo_loss(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`` -> scalar
    tensor: see :func:`dpo_loss_reference`."""
    return check_function(candidate, dpo_loss_reference, _four, name="DPO loss", trials=trials,
                          rtol=1e-6, atol=1e-9)


def dpo_weight_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """The per-pair weight (B,) of the DPO gradient, ``sigmoid(r_l - r_w)`` with implicit rewards
    ``r = beta * (pi - ref)`` (:func:`lib.align.dpo.gradient_weight`)."""
    from lib.align.dpo import gradient_weight, implicit_rewards

    return gradient_weight(*implicit_rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta))


def check_dpo_weight(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)`` -> (B,) tensor:
    see :func:`dpo_weight_reference`."""
    return check_function(candidate, dpo_weight_reference, _four, name="DPO gradient weight", trials=trials,
                          rtol=1e-6, atol=1e-12)


def allocate_reference(sizes, n):
    """How many of ``n`` to draw from strata of ``sizes``: as equal as possible, never more than a
    stratum holds (:func:`lib.align.preference.allocate`)."""
    from lib.align.preference import allocate

    return allocate(sizes, n)


def check_allocate(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(sizes, n)`` -> counts per stratum: see :func:`allocate_reference`."""

    def make(rng):
        sizes = rng.integers(0, 30, size=int(rng.integers(1, 9)))
        sizes[int(rng.integers(len(sizes)))] += 1
        k = int(rng.integers(len(sizes)))
        # every third trial asks for almost everything, so the small strata fill up
        n = int(rng.integers(0, sizes.sum() + 1)) if rng.random() < 0.67 else int(sizes.sum()) - k
        return {"sizes": [int(s) for s in sizes], "n": max(n, 0)}

    def as_list(f):
        return lambda sizes, n: [int(x) for x in f(sizes, n)]

    return check_function(as_list(candidate), as_list(allocate_reference), make, name="stratified allocation",
                          trials=trials)


def bradley_terry_reference(score_chosen, score_rejected):
    """Mean over pairs of ``-log sigmoid(s_w - s_l)`` (:func:`lib.align.dpo.bradley_terry_loss`)."""
    from lib.align.dpo import bradley_terry_loss

    return bradley_terry_loss(score_chosen, score_rejected)


def check_bradley_terry(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(score_chosen, score_rejected)`` -> scalar tensor: see
    :func:`bradley_terry_reference`."""
    import torch

    def make(rng):
        n = int(rng.integers(1, 9))
        scale = float(rng.choice([0.5, 3.0, 40.0]))
        return {"score_chosen": torch.tensor(rng.normal(size=n) * scale, dtype=torch.float64),
                "score_rejected": torch.tensor(rng.normal(size=n) * scale, dtype=torch.float64)}

    return check_function(candidate, bradley_terry_reference, make, name="Bradley-Terry loss", trials=trials,
                          rtol=1e-6, atol=1e-9)


def token_kl_reference(logits_p, logits_q):
    """Exact KL(softmax(logits_p) ‖ softmax(logits_q)) per row of (B, V) logits
    (:func:`lib.align.dpo.token_kl`)."""
    from lib.align.dpo import token_kl

    return token_kl(logits_p, logits_q)


def check_token_kl(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits_p, logits_q)`` -> (B,) tensor: see :func:`token_kl_reference`."""
    import torch

    def make(rng):
        b, v = int(rng.integers(1, 6)), int(rng.integers(2, 12))
        p = rng.normal(size=(b, v)) * float(rng.choice([0.5, 2.0, 8.0]))
        q = p + rng.normal(size=(b, v)) * float(rng.choice([0.0, 0.3, 3.0]))
        return {"logits_p": torch.tensor(p, dtype=torch.float32), "logits_q": torch.tensor(q, dtype=torch.float32)}

    return check_function(candidate, token_kl_reference, make, name="exact token KL", trials=trials,
                          rtol=1e-4, atol=1e-6)


__all__ = ["token_kl_reference", "check_token_kl", "allocate_reference", "check_allocate",
           "bradley_terry_reference", "check_bradley_terry", "dpo_loss_reference", "check_dpo_loss",
           "dpo_weight_reference", "check_dpo_weight"]
