"""A compact language-model training loop: AdamW, warmup + cosine LR, gradient clipping, eval.

Data is a 1-D tensor of token ids (the concatenated corpus). Training draws random windows
of ``seq_len + 1`` tokens (input = first ``seq_len``, target = last ``seq_len``); evaluation
walks the validation tokens in fixed, non-overlapping windows so that it is deterministic and
reproducible from a checkpoint (:func:`evaluate_loss`).

Book: seed-8.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch

from .model import TinyLM


def lr_at(step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1) -> float:
    """Linear warmup from ``max_lr/warmup_steps`` to ``max_lr`` over ``warmup_steps``, then cosine
    decay to ``min_lr_ratio * max_lr`` at ``total_steps`` (and constant after). ``step`` counts from 0."""
    if total_steps < 1 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}), total >= 1")
    if not 0 <= min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return max_lr * min_lr_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max_lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _check_tokens(tokens, seq_len, name):
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.is_floating_point():
        raise ValueError(f"{name} must be a 1-D integer tensor of token ids, got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}")
    if tokens.numel() < seq_len + 1:
        raise ValueError(f"{name} has {tokens.numel()} tokens, fewer than seq_len + 1 = {seq_len + 1}")


def random_batch(tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator):
    """``(x, y)`` of shape (batch_size, seq_len): random windows and their next tokens."""
    _check_tokens(tokens, seq_len, "tokens")
    starts = torch.randint(0, tokens.numel() - seq_len, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(seq_len + 1)
    w = tokens[idx].long()
    return w[:, :-1], w[:, 1:]


def eval_windows(tokens: torch.Tensor, seq_len: int, max_windows: int | None = None):
    """Non-overlapping windows (n, seq_len + 1) covering ``tokens`` from the start (remainder dropped)."""
    _check_tokens(tokens, seq_len, "tokens")
    n = (tokens.numel() - 1) // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    idx = torch.arange(n)[:, None] * seq_len + torch.arange(seq_len + 1)
    return tokens[idx].long()


@torch.no_grad()
def evaluate_loss(model: TinyLM, tokens: torch.Tensor, seq_len: int, *, batch_size: int = 32,
                  max_windows: int | None = None) -> float:
    """Mean next-token cross-entropy (nats/token) over the non-overlapping windows of ``tokens``.

    Deterministic: the same model and tokens give the same number (the checkpoint test relies on it).
    """
    was = model.training
    model.eval()
    w = eval_windows(tokens, seq_len, max_windows).to(model.device)
    total, count = 0.0, 0
    for i in range(0, len(w), batch_size):
        chunk = w[i:i + batch_size]
        out = model(chunk[:, :-1], targets=chunk[:, 1:])
        n = chunk[:, 1:].numel()
        total += float(out.lm_loss) * n
        count += n
    model.train(was)
    return total / count


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_lm` (see there)."""

    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_windows: int = 64
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in ("steps", "batch_size", "seq_len", "eval_every", "eval_windows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {v!r}")
        if not self.lr > 0 or self.grad_clip <= 0 or self.weight_decay < 0:
            raise ValueError("lr and grad_clip must be > 0, weight_decay >= 0")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps], got {self.warmup_steps}")


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)):
    """AdamW with weight decay on matrices only (not on norms' gains)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def train_lm(model: TinyLM, train_tokens: torch.Tensor, val_tokens: torch.Tensor | None, tc: TrainConfig,
             *, log=None) -> dict:
    """Pretrain ``model`` on random windows of ``train_tokens``; return the logged history.

    Each step: sample a batch, loss = cross-entropy (+ MoE aux loss), backward, clip the global
    grad norm to ``tc.grad_clip``, AdamW step with the scheduled LR. Every ``tc.eval_every``
    steps (and at the end) the validation loss over ``tc.eval_windows`` windows is recorded.

    Returns a dict of lists: ``step, loss, lr, grad_norm, aux_loss`` (every step),
    ``eval_step, val_loss`` (every eval), and ``tokens_per_s``, ``time_s``.
    """
    if not isinstance(tc, TrainConfig):
        raise TypeError(f"expected a TrainConfig, got {type(tc).__name__}")
    if tc.seq_len > model.config.max_seq_len:
        raise ValueError(f"seq_len {tc.seq_len} > model max_seq_len {model.config.max_seq_len}")
    _check_tokens(train_tokens, tc.seq_len, "train_tokens")
    if val_tokens is not None:
        _check_tokens(val_tokens, tc.seq_len, "val_tokens")
    from .. import progress

    gen = torch.Generator().manual_seed(tc.seed)
    opt = make_optimizer(model, tc.lr, tc.weight_decay, tc.betas)
    hist = {k: [] for k in ("step", "loss", "lr", "grad_norm", "aux_loss", "eval_step", "val_loss")}
    model.train()
    dev = model.device
    t_start = time.perf_counter()
    bar = progress(range(tc.steps), enabled=tc.progress, desc="train", mininterval=1.0)
    for step in bar:
        lr = lr_at(step, max_lr=tc.lr, warmup_steps=tc.warmup_steps, total_steps=tc.steps,
                   min_lr_ratio=tc.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = random_batch(train_tokens, tc.batch_size, tc.seq_len, gen)
        out = model(x.to(dev), targets=y.to(dev))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        hist["step"].append(step)
        hist["loss"].append(float(out.lm_loss.detach()))
        hist["lr"].append(lr)
        hist["grad_norm"].append(float(gn))
        hist["aux_loss"].append(None if out.aux_loss is None else float(out.aux_loss.detach()))
        last = step == tc.steps - 1
        if val_tokens is not None and ((step + 1) % tc.eval_every == 0 or last):
            vl = evaluate_loss(model, val_tokens, tc.seq_len, max_windows=tc.eval_windows)
            hist["eval_step"].append(step + 1)
            hist["val_loss"].append(vl)
            bar.set_postfix(loss=f"{hist['loss'][-1]:.3f}", val=f"{vl:.3f}")
            if log is not None:
                log(f"step {step + 1}: train {hist['loss'][-1]:.4f} val {vl:.4f} lr {lr:.2e}")
    elapsed = time.perf_counter() - t_start
    hist["time_s"] = elapsed
    hist["tokens_per_s"] = tc.steps * tc.batch_size * tc.seq_len / elapsed
    model.eval()
    return hist


__all__ = ["lr_at", "random_batch", "eval_windows", "evaluate_loss", "TrainConfig", "make_optimizer", "train_lm"]
