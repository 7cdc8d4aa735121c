"""Pruning the tiny LM: unstructured magnitude pruning (global or per layer) and structured
pruning (whole attention heads, whole feed-forward channels), all expressed as 0/1 masks, and a
short recovery fine-tune that keeps the masks.

Book: seed-116.

* **Unstructured** (Han et al., 2015): zero the weights of smallest magnitude. *Per layer*
  removes the same fraction from every matrix; *global* ranks all matrices' weights together,
  so layers with many small weights lose more. Masks equal
  ``torch.nn.utils.prune.l1_unstructured`` / ``global_unstructured(..., L1Unstructured)``
  (tested): ``round(amount * n)`` weights are removed, the ``k`` smallest ``|w|``.
* **Structured**: remove whole units, which makes the matrices smaller rather than sparse. A
  *channel* of a matrix is a row or column; :func:`structured_mask` keeps the channels of largest
  L_n norm and equals ``torch.nn.utils.prune.ln_structured`` (tested). For the model:
  an attention **head** is a block of ``head_dim`` columns of ``o_proj`` (its contribution to
  the residual stream) and rows of ``q_proj`` (Michel et al., 2019 ask the same question with a
  gradient-based score); a feed-forward **channel** ``j`` is row ``j`` of ``gate_proj`` and
  ``up_proj`` and column ``j`` of ``down_proj``. Heads and channels are scored by the L2 norm of
  their output weights (``o_proj`` block, ``down_proj`` column).
* Masks are dicts ``{parameter name: bool tensor}`` (True = keep); :func:`apply_masks` zeroes
  the pruned weights in place, and :func:`train_recovery` fine-tunes with the masks re-applied
  after every optimizer step, so the sparsity stays exact.

Main entry points: :func:`prunable_weights`, :func:`magnitude_mask`, :func:`magnitude_masks`,
:func:`structured_mask`, :func:`head_masks`, :func:`ffn_channel_masks`, :func:`apply_masks`,
:func:`sparsity`, :class:`RecoveryConfig`, :func:`train_recovery`.
"""
from __future__ import annotations

import copy
import dataclasses
import numbers

import torch
import torch.nn as nn

from ..runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range

SCOPES = ("global", "layer")
_BLOCK_WEIGHTS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _check_amount(amount) -> float:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not 0 <= amount <= 1:
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount!r}")
    return float(amount)


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return scope


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight matrices of the decoder blocks (attention and feed-forward projections), by
    parameter name. The embedding (tied to the LM head) and the norm gains are left alone."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    out = {n: p for n, p in model.named_parameters()
           if n.startswith("layers.") and n.endswith(".weight") and p.dim() == 2
           and n.split(".")[-2] in _BLOCK_WEIGHTS}
    if not out:
        raise ValueError("the model has no decoder-block weights (layers.*.{q,k,v,o,gate,up,"
                         "down}_proj.weight) to prune")
    return out


# ------------------------------------------------------------------------ unstructured


def magnitude_mask(w: torch.Tensor, amount: float) -> torch.Tensor:
    """Keep-mask of ``w`` without its ``round(amount * w.numel())`` smallest ``|w|``."""
    amount = _check_amount(amount)
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError("w must be a floating-point torch.Tensor")
    k = round(amount * w.numel())
    mask = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    if k:
        mask[torch.topk(w.detach().abs().reshape(-1), k, largest=False).indices] = False
    return mask.view(w.shape)


def magnitude_masks(weights: dict, amount: float, scope: str = "global") -> dict:
    """Unstructured magnitude masks for a dict of weights: ``"layer"`` removes ``amount`` of each
    tensor, ``"global"`` the ``round(amount * total)`` smallest ``|w|`` of all tensors together."""
    amount, scope = _check_amount(amount), _check_scope(scope)
    if not isinstance(weights, dict) or not weights:
        raise ValueError("weights must be a non-empty dict {name: tensor}")
    if scope == "layer":
        return {n: magnitude_mask(w, amount) for n, w in weights.items()}
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    k = round(amount * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    if k:
        keep[torch.topk(flat, k, largest=False).indices] = False
    out, i = {}, 0
    for n, w in weights.items():
        out[n] = keep[i:i + w.numel()].view(w.shape)
        i += w.numel()
    return out


# -------------------------------------------------------------------------- structured


def structured_mask(w: torch.Tensor, amount: float, dim: int = 0, n: float = 2) -> torch.Tensor:
    """Keep-mask removing the ``round(amount * w.shape[dim])`` slices along ``dim`` of smallest
    L_n norm (the norm over all other axes), as ``torch.nn.utils.prune.ln_structured``."""
    amount = _check_amount(amount)
    if not isinstance(w, torch.Tensor) or w.dim() < 2:
        raise ValueError("structured pruning needs a tensor with at least two axes")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -w.dim() <= dim < w.dim():
        raise ValueError(f"dim must be an axis of a {w.dim()}-D tensor, got {dim!r}")
    dim = dim % w.dim()
    others = [d for d in range(w.dim()) if d != dim]
    norms = torch.linalg.vector_norm(w.detach(), ord=n, dim=others)
    keep_idx = torch.topk(norms, w.shape[dim] - round(amount * w.shape[dim]), largest=True).indices
    keep = torch.zeros(w.shape[dim], dtype=torch.bool, device=w.device)
    keep[keep_idx] = True
    shape = [1] * w.dim()
    shape[dim] = -1
    return keep.view(shape).expand(w.shape).clone()


def _keep_units(scores: list[torch.Tensor], amount: float, scope: str) -> list[torch.Tensor]:
    """Per layer: which units (heads / channels) survive, from their scores."""
    if scope == "layer":
        out = []
        for s in scores:
            keep = torch.zeros(len(s), dtype=torch.bool)
            keep[torch.topk(s, len(s) - round(amount * len(s))).indices] = True
            out.append(keep)
        return out
    flat = torch.cat(scores)
    keep = torch.zeros(len(flat), dtype=torch.bool)
    keep[torch.topk(flat, len(flat) - round(amount * len(flat))).indices] = True
    return list(keep.split([len(s) for s in scores]))


def head_masks(model: nn.Module, amount: float, scope: str = "global") -> dict:
    """Masks removing ``round(amount * heads)`` attention heads (over all layers for
    ``"global"``, in each layer for ``"layer"``), scored by the L2 norm of their ``o_proj``
    columns. A removed head loses its ``o_proj`` columns and ``q_proj`` rows; keys and values,
    shared between heads by grouped-query attention, stay."""
    amount, scope = _check_amount(amount), _check_scope(scope)
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError("head_masks needs a TinyLM (a model with .layers)")
    scores = []
    for layer in layers:
        att = layer.self_attn
        o = att.o_proj.weight.detach()
        scores.append(torch.linalg.vector_norm(
            o.view(o.shape[0], att.n_heads, att.head_dim), dim=(0, 2)))
    keeps = _keep_units(scores, amount, scope)
    out = {}
    for i, (layer, keep) in enumerate(zip(layers, keeps)):
        att = layer.self_attn
        cols = keep.repeat_interleave(att.head_dim)
        out[f"layers.{i}.self_attn.o_proj.weight"] = cols[None, :].expand_as(
            att.o_proj.weight).clone()
        out[f"layers.{i}.self_attn.q_proj.weight"] = cols[:, None].expand_as(
            att.q_proj.weight).clone()
    return out


def ffn_channel_masks(model: nn.Module, amount: float, scope: str = "global") -> dict:
    """Masks removing ``round(amount * channels)`` feed-forward channels, scored by the L2 norm of
    their ``down_proj`` column; a removed channel loses its ``gate_proj`` and ``up_proj`` rows and
    its ``down_proj`` column."""
    amount, scope = _check_amount(amount), _check_scope(scope)
    layers = getattr(model, "layers", None)
    if layers is None or not all(hasattr(lay.mlp, "down_proj") for lay in layers):
        raise TypeError("ffn_channel_masks needs a dense TinyLM (SwiGLU feed-forward layers)")
    scores = [torch.linalg.vector_norm(lay.mlp.down_proj.weight.detach(), dim=0)
              for lay in layers]
    keeps = _keep_units(scores, amount, scope)
    out = {}
    for i, (layer, keep) in enumerate(zip(layers, keeps)):
        mlp = layer.mlp
        out[f"layers.{i}.mlp.down_proj.weight"] = keep[None, :].expand_as(
            mlp.down_proj.weight).clone()
        for nm in ("gate_proj", "up_proj"):
            out[f"layers.{i}.mlp.{nm}.weight"] = keep[:, None].expand_as(
                getattr(mlp, nm).weight).clone()
    return out


# ------------------------------------------------------------------ applying and counting


def apply_masks(model: nn.Module, masks: dict) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (``w *= mask``); returns the model."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in masks.items():
            if name not in params:
                raise KeyError(f"the model has no parameter {name!r}")
            if m.shape != params[name].shape or m.dtype != torch.bool:
                raise ValueError(f"mask of {name} must be bool {tuple(params[name].shape)}, got "
                                 f"{m.dtype} {tuple(m.shape)}")
            params[name].mul_(m.to(params[name].dtype))
    return model


def pruned(model: nn.Module, masks: dict) -> nn.Module:
    """A deep copy of ``model`` with ``masks`` applied (the original is left as it was)."""
    return apply_masks(copy.deepcopy(model), masks)


def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the :func:`prunable_weights` of ``model``."""
    ws = prunable_weights(model)
    zeros = sum(int((w == 0).sum()) for w in ws.values())
    return zeros / sum(w.numel() for w in ws.values())


# ---------------------------------------------------------------------- recovery fine-tune


@dataclasses.dataclass
class RecoveryConfig:
    """A short fine-tune of a pruned model on the pretraining corpus.

    seed: seeds the batches. steps: optimizer steps (tens: a *short* recovery).
    batch_size, seq_len: windows of the corpus per step (as Part 2's pretraining).
    lr: AdamW learning rate, constant (1e-3 .. 3e-3 for the tiny LM; pretraining peaked at 6e-3).
    weight_decay: AdamW weight decay (0: the point is to recover, not to regularise).
    eval_windows: validation windows of ``seq_len`` tokens for the final loss.
    """

    seed: int = 0
    steps: int = 30
    batch_size: int = 8
    seq_len: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    eval_windows: int = 32

    def __post_init__(self):
        check_int(self, "seed", minimum=0)
        check_int(self, "steps", "batch_size", "seq_len", "eval_windows")
        check_positive(self, "lr")
        check_range(self, "weight_decay", 0.0, 1.0)


@dataclasses.dataclass
class RecoveryRun(Run):
    """The fine-tuned copy of the pruned model; ``log.updates`` holds each step's loss and
    ``log.eval_returns`` the validation loss before (step 0) and after."""

    model: nn.Module = None


def train_recovery(cfg: RecoveryConfig, model: nn.Module, masks: dict,
                   train_tokens: torch.Tensor, val_tokens: torch.Tensor,
                   progress: bool = False) -> RecoveryRun:
    """Fine-tune a pruned copy of ``model`` for ``cfg.steps`` AdamW steps, re-applying ``masks``
    after every step so that pruned weights stay exactly zero."""
    from .. import progress as bar
    from .train import evaluate_loss, random_batch

    if not isinstance(cfg, RecoveryConfig):
        raise TypeError(f"expected a RecoveryConfig, got {type(cfg).__name__}")
    net = pruned(model, masks)
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log = TrainLog()

    def val():
        return [evaluate_loss(net, val_tokens, cfg.seq_len, max_windows=cfg.eval_windows)]

    with Stopwatch(log):
        log.record_eval(0, val)
        for step in bar(range(cfg.steps), enabled=progress, desc="recovery"):
            x, y = random_batch(train_tokens, cfg.batch_size, cfg.seq_len, gen)
            out = net(x, targets=y)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            apply_masks(net, masks)
            log.record_update(step + 1, loss=float(out.loss.detach()))
        log.record_eval(cfg.steps, val)
    net.eval()
    return RecoveryRun(config=cfg, log=log, model=net)


__all__ = ["SCOPES", "prunable_weights", "magnitude_mask", "magnitude_masks", "structured_mask",
           "head_masks", "ffn_channel_masks", "apply_masks", "pruned", "sparsity",
           "RecoveryConfig", "RecoveryRun", "train_recovery"]
