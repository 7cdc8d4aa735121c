"""Checkers for the exercises of Part 10's memory sections (forward/backward, accumulation).

Book: seed-107.
"""
from __future__ import annotations

from typing import Callable

from lib.exercises import CheckReport, check_function


def accumulation_loss_reference(logits, targets, total_tokens, n_micro):
    """One micro-batch's loss such that the ``n_micro`` micro-batches' losses add up to the
    big batch's mean token loss: summed cross-entropy over the scored positions (targets !=
    -100) divided by ``total_tokens``, the scored positions of *all* micro-batches.
    ``n_micro`` is given but not needed."""
    from lib.llm.memory import micro_batch_loss

    return micro_batch_loss(logits, targets, total_tokens)


def check_accumulation_loss(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits, targets, total_tokens, n_micro)`` -> scalar tensor: see
    :func:`accumulation_loss_reference`. The inputs score unequal token counts per
    micro-batch, so "the micro-batch's mean divided by n_micro" fails."""
    import numpy as np
    import torch

    def make(rng):
        B, T, V = int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.integers(2, 10))
        n_micro = int(rng.integers(2, 5))
        targets = rng.integers(0, V, size=(B, T))
        scored = int(rng.integers(1, B * T + 1))
        flat = targets.reshape(-1)
        flat[rng.permutation(B * T)[scored:]] = -100
        others = int(rng.integers(n_micro - 1, (n_micro - 1) * B * T + 1))
        if others == (n_micro - 1) * scored:  # equal counts would let the mistake pass
            others += 1
        return {"logits": torch.tensor(rng.normal(size=(B, T, V)) * 2, dtype=torch.float64),
                "targets": torch.tensor(np.asarray(flat.reshape(B, T)), dtype=torch.long),
                "total_tokens": scored + others, "n_micro": n_micro}

    return check_function(candidate, accumulation_loss_reference, make,
                          name="accumulation-correct loss", trials=trials, rtol=1e-6,
                          atol=1e-9)
