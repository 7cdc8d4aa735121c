"""The loss of supervised fine-tuning: next-token cross-entropy on the completion only.

Book: seed-14 (per-token loss of a chat sample); the one SFT loss of the book —
:func:`lib.align.sft.sft_loss` and the packed loss of seed-16 call :func:`completion_loss`.

Two label conventions, one loss:

* **labels** (Hugging Face's ``labels=``): aligned with the input, ``labels[t] = ids[t]`` on the
  tokens to learn and ``-100`` elsewhere; the model shifts them itself;
* **targets** (this book's models): already shifted, ``targets[t]`` is what position ``t``
  must predict, i.e. ``labels[t + 1]``, and the last position has none (``-100``).

With ``N`` = the number of positions whose target is not ``-100``::

    loss = -(1 / N) * sum_{t: target_t != -100} log softmax(logits_t)[target_t]

so every completion token of the batch weighs the same (``reduction="token"``, as
``torch.nn.functional.cross_entropy(..., ignore_index=-100)`` and Hugging Face); the
alternative ``reduction="sample"`` averages each sample's mean first. Masked positions add
nothing to the loss, so their logits get exactly zero gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.llm.model import IGNORE_INDEX


def _check_logits_targets(logits, targets) -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("logits and targets must be torch tensors")
    if logits.dim() != 3 or targets.dim() != 2 or logits.shape[:2] != targets.shape:
        raise ValueError(f"need logits (B, T, V) and targets (B, T), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got {logits.dtype}")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"targets must be integer ids, got {targets.dtype}")
    bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= logits.shape[-1]))
    if bool(bad.any()):
        raise ValueError(f"targets must be in [0, {logits.shape[-1]}) or {IGNORE_INDEX}")


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Hugging Face ``labels`` (B, T) -> book ``targets`` (B, T): ``targets[:, t] = labels[:, t+1]``
    and ``-100`` at the last position."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
        raise ValueError("labels must be a (B, T) tensor")
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    return targets


def targets_from_mask(ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Shifted targets for ``ids`` (B, T) where ``loss_mask`` (B, T) is 1 on the tokens to learn
    (e.g. :func:`lib.sft.chat.encode_chat`'s assistant mask)."""
    if not isinstance(ids, torch.Tensor) or not isinstance(loss_mask, torch.Tensor):
        raise TypeError("ids and loss_mask must be tensors")
    if ids.dim() != 2 or ids.shape != loss_mask.shape:
        raise ValueError(f"ids and loss_mask must share one (B, T) shape, got {tuple(ids.shape)} "
                         f"and {tuple(loss_mask.shape)}")
    labels = torch.where(loss_mask.bool(), ids.long(), torch.full_like(ids.long(), IGNORE_INDEX))
    return shift_labels(labels)


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position loss (B, T): ``-log p(target)``, 0 where the target is ``-100`` (float32)."""
    _check_logits_targets(logits, targets)
    keep = targets != IGNORE_INDEX
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, targets.clamp_min(0).long().unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, -picked, torch.zeros_like(picked))


def completion_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "token"
                    ) -> torch.Tensor:
    """The SFT loss: mean cross-entropy over the positions whose target is not ``-100``.

    ``reduction="token"`` (default): every such token weighs the same (``F.cross_entropy``);
    ``"sample"``: mean over samples (rows) of each row's mean; ``"sum"``: the plain sum.
    Raises ``ValueError`` when no position carries a target.
    """
    _check_logits_targets(logits, targets)
    keep = targets != IGNORE_INDEX
    if not bool(keep.any()):
        raise ValueError("no completion tokens in the batch (every target is -100)")
    if reduction == "token":
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                               targets.reshape(-1).long(), ignore_index=IGNORE_INDEX)
    nll = token_nll(logits, targets)
    if reduction == "sum":
        return nll.sum()
    if reduction == "sample":
        n = keep.sum(-1)
        rows = n > 0
        return (nll.sum(-1)[rows] / n[rows]).mean()
    raise ValueError(f"reduction must be 'token', 'sample' or 'sum', got {reduction!r}")


__all__ = ["IGNORE_INDEX", "shift_labels", "targets_from_mask", "token_nll", "completion_loss"]
