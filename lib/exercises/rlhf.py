"""Checkers for the exercises of Part 8 (RLHF and RLAIF): where a reward model reads its score,
and the reward model's pairwise accuracy.

Book: seed-79 (the last real token under any padding), seed-81 (pairwise accuracy with ties),
seed-77 (KL-penalised per-token rewards), seed-87 (the k3 estimate of the per-token KL).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


def _mask(rng):
    """A (B, T) 0/1 attention mask of left-, right- or un-padded rows (a row may have holes)."""
    import torch

    b, t = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    rows = []
    for _ in range(b):
        n = int(rng.integers(1, t + 1))
        kind = rng.choice(["left", "right", "none"])
        row = [0] * (t - n) + [1] * n if kind == "left" else [1] * n + [0] * (t - n)
        if kind == "none":
            row = [1] * t
        rows.append(row)
    return {"attention_mask": torch.tensor(rows, dtype=torch.long)}


def last_token_reference(attention_mask):
    """(B,) index of each row's last real token (:func:`lib.align.reward.last_token_index`)."""
    from lib.align.reward import last_token_index

    return last_token_index(attention_mask)


def check_last_token(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(attention_mask)`` -> (B,) long tensor: see :func:`last_token_reference`; masks
    mix left-padded, right-padded and unpadded rows."""
    def as_list(f):
        return lambda attention_mask: [int(x) for x in f(attention_mask)]

    return check_function(as_list(candidate), as_list(last_token_reference), _mask,
                          name="last-token index", trials=trials)


def pairwise_accuracy_reference(score_chosen, score_rejected):
    """Share of pairs whose chosen score is the higher, a tie counting ½
    (:func:`lib.align.reward.pair_metrics`'s ``accuracy``)."""
    import torch

    from lib.align.reward import pair_metrics

    return pair_metrics(torch.stack([score_chosen, score_rejected], 1))["accuracy"]


def check_pairwise_accuracy(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(score_chosen, score_rejected)`` -> float: see
    :func:`pairwise_accuracy_reference` (scores are rounded so that ties occur)."""
    import torch

    def make(rng):
        n = int(rng.integers(1, 12))
        return {"score_chosen": torch.tensor(rng.integers(-3, 4, size=n), dtype=torch.float64),
                "score_rejected": torch.tensor(rng.integers(-3, 4, size=n), dtype=torch.float64)}

    return check_function(lambda **kw: float(candidate(**kw)), pairwise_accuracy_reference, make,
                          name="pairwise accuracy", trials=trials)


def sequence_logprob_reference(logits, tokens, mask):
    """(B,) log-probability of each row's completion: the sum over positions with ``mask`` 1 of
    ``log_softmax(logits)[token]``; ``logits`` (B, n, V) are the scores that predicted the n
    ``tokens`` (B, n)."""
    import torch

    lp = torch.log_softmax(logits.double(), -1).gather(-1, tokens[..., None])[..., 0]
    return (lp * mask.double()).sum(1)


def check_sequence_logprob(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits, tokens, mask)`` -> (B,) tensor: see :func:`sequence_logprob_reference`."""
    import torch

    def make(rng):
        b, n, v = int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(2, 9))
        mask = (np.arange(n)[None] < rng.integers(1, n + 1, size=(b, 1))).astype(int)
        return {"logits": torch.tensor(rng.normal(size=(b, n, v)) * float(rng.choice([0.5, 3.0, 30.0]))),
                "tokens": torch.tensor(rng.integers(0, v, size=(b, n))), "mask": torch.tensor(mask)}

    return check_function(lambda **kw: candidate(**kw).double(), sequence_logprob_reference, make,
                          name="sequence log-prob", trials=trials, rtol=1e-6, atol=1e-8)


__all__ = ["sequence_logprob_reference", "check_sequence_logprob", "last_token_reference", "check_last_token", "pairwise_accuracy_reference",
           "check_pairwise_accuracy"]


# ----------------------------------------------------------------------------- PPO-RLHF (P8b)
def _logps(rng):
    import torch

    b, t = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    logp = torch.tensor(-rng.gamma(1.5, 1.0, size=(b, t)), dtype=torch.float64)
    scale = float(rng.choice([1e-6, 1e-3, 0.1, 1.0]))            # near-equal to far apart
    logp_ref = logp + torch.tensor(rng.normal(0, scale, size=(b, t)), dtype=torch.float64)
    return {"logp": logp, "logp_ref": logp_ref}


def k3_reference(logp, logp_ref):
    """Per-token ``(r - 1) - log r`` with ``log r = logp_ref - logp`` (:func:`lib.objectives.kl_k3`)."""
    from lib.objectives import kl_k3

    return kl_k3(logp, logp_ref)


def check_k3(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logp, logp_ref)`` -> tensor of the same shape: see :func:`k3_reference`."""
    return check_function(candidate, k3_reference, _logps, name="k3 estimate of the KL", trials=trials,
                          rtol=1e-6, atol=1e-15)


def _reward_inputs(rng):
    import torch

    d = _logps(rng)
    b, t = d["logp"].shape
    lengths = rng.integers(1, t + 1, size=b)
    mask = torch.tensor(np.arange(t)[None, :] < lengths[:, None], dtype=torch.long)
    return {"score": torch.tensor(rng.normal(size=b), dtype=torch.float64), **d, "mask": mask,
            "kl_coef": float(rng.choice([0.0, 0.02, 0.1, 0.5]))}


def penalised_rewards_reference(score, logp, logp_ref, mask, kl_coef):
    """RLHF's per-token rewards: ``-kl_coef * (logp - logp_ref)`` on the answer tokens plus ``score``
    at each row's last one, 0 where ``mask`` is 0 (:func:`lib.align.reward.kl_penalized_rewards`)."""
    from lib.align.reward import kl_penalized_rewards

    return kl_penalized_rewards(score, logp, logp_ref, mask, kl_coef)


def check_penalised_rewards(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(score, logp, logp_ref, mask, kl_coef)`` -> (B, T) tensor: see
    :func:`penalised_rewards_reference`."""
    return check_function(candidate, penalised_rewards_reference, _reward_inputs,
                          name="KL-penalised per-token rewards", trials=trials, rtol=1e-6, atol=1e-12)


__all__ += ["k3_reference", "check_k3", "penalised_rewards_reference", "check_penalised_rewards"]
