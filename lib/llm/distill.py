"""Knowledge distillation: a small student language model learns from the tiny LM's soft
next-token distributions (at temperature T) instead of, or besides, the one-hot next tokens.

Book: seed-104.

The loss (Hinton, Vinyals and Dean, 2015) for one scored position, with student logits ``z_s``,
teacher logits ``z_t``, next token ``y``, temperature ``T`` and weight ``alpha``::

    L = alpha * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) ) + (1 - alpha) * CE(z_s, y)

averaged over scored positions. The gradient of the KL term with respect to ``z_s`` is
``(softmax(z_s/T) - softmax(z_t/T)) / T``; for large T both distributions approach uniform and
their difference shrinks like ``1/T``, so the gradient shrinks like ``1/T^2``. The ``T^2`` factor
undoes that, so that changing T does not silently change the weight of the soft term against the
hard one (:func:`soft_term_gradient` computes both; tested against autograd).

Equal data: both students of a comparison see the same ``n_train_windows`` windows of the corpus
in the same order (the seed fixes both); only the targets differ. The teacher's logits on those
windows are computed once, in evaluation mode, before training.

Main entry points: :func:`soft_targets`, :func:`distillation_loss`, :func:`soft_term_gradient`,
:class:`DistillConfig`, :func:`train_distill` (returns a :class:`DistillRun`),
:func:`evaluate_student`.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range
from .config import LMConfig
from .model import IGNORE_INDEX, TinyLM


def _check_temperature(T) -> float:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not T > 0:
        raise ValueError(f"temperature T must be a number > 0, got {T!r}")
    return float(T)


def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """``softmax(logits / T)`` over the last axis: the teacher's distribution at temperature T
    (T > 1 flattens it and shows how the teacher ranks the wrong tokens)."""
    T = _check_temperature(T)
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point torch.Tensor")
    return torch.softmax(logits.float() / T, dim=-1)


def _check_pair(student_logits, teacher_logits):
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor | None = None, *, T: float = 2.0, alpha: float = 0.9,
                      scale_t2: bool = True) -> tuple[torch.Tensor, dict]:
    """``(loss, parts)``: the distillation loss of the module docstring, averaged over the
    positions whose target is not ``IGNORE_INDEX`` (all positions when ``targets`` is None,
    which needs ``alpha == 1``). ``parts`` holds the detached ``kl`` (at temperature T, without
    the T^2 factor) and ``ce`` (None without targets). Logits (..., V), targets (...)."""
    _check_pair(student_logits, teacher_logits)
    T = _check_temperature(T)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    V = student_logits.shape[-1]
    zs = student_logits.reshape(-1, V).float()
    zt = teacher_logits.reshape(-1, V).float().detach()
    if targets is None:
        if alpha != 1:
            raise ValueError("without targets only the soft term exists: alpha must be 1")
        keep = torch.ones(len(zs), dtype=torch.bool, device=zs.device)
    else:
        if targets.shape != student_logits.shape[:-1]:
            raise ValueError(f"targets must have shape {tuple(student_logits.shape[:-1])}, got "
                             f"{tuple(targets.shape)}")
        keep = targets.reshape(-1) != IGNORE_INDEX
    if not bool(keep.any()):
        raise ValueError("no scored position (every target is IGNORE_INDEX)")
    zs, zt = zs[keep], zt[keep]
    log_ps = F.log_softmax(zs / T, dim=-1)
    log_pt = F.log_softmax(zt / T, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()
    soft = kl * (T * T if scale_t2 else 1.0)
    ce = None
    if targets is not None:
        ce = F.cross_entropy(zs, targets.reshape(-1)[keep].long())
    if alpha == 1:
        loss = soft
    elif alpha == 0:
        loss = ce
    else:
        loss = alpha * soft + (1 - alpha) * ce
    return loss, {"kl": float(kl.detach()), "ce": None if ce is None else float(ce.detach())}


def soft_term_gradient(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float,
                       scale_t2: bool = True) -> torch.Tensor:
    """Gradient of the soft term (mean over positions) with respect to the student logits:
    ``(softmax(z_s/T) - softmax(z_t/T)) / T / N``, times ``T^2`` when ``scale_t2``."""
    _check_pair(student_logits, teacher_logits)
    T = _check_temperature(T)
    V = student_logits.shape[-1]
    n = student_logits.numel() // V
    g = (soft_targets(student_logits, T) - soft_targets(teacher_logits, T)) / (T * n)
    return g * (T * T) if scale_t2 else g


# ------------------------------------------------------------------------- training


@dataclasses.dataclass
class DistillConfig:
    """A student trained on a fixed slice of the corpus, from hard labels or from a teacher.

    seed: seeds the student's initialisation and the order of the windows.
    d_model, n_layers, n_heads, n_kv_heads, d_ff: the student's sizes (the tiny LM is
        128 wide with 4 layers; the default student has about a sixth of its parameters, most
        of them in the embedding).
    n_train_windows, seq_len: the training data, ``n_train_windows`` windows of ``seq_len``
        tokens drawn once from the corpus (small on purpose: distillation pays most when labels
        are scarce).
    steps, batch_size, lr: AdamW steps (constant learning rate after ``warmup_steps``).
    alpha: weight of the soft (teacher) term; 0 trains on hard labels only.
    temperature: T of the soft term (1-4 is usual; Hinton et al. used up to 20).
    eval_windows: validation windows of ``eval_seq_len`` tokens for the held-out metrics.
    """

    seed: int = 0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    n_kv_heads: int = 1
    d_ff: int = 128
    n_train_windows: int = 48
    seq_len: int = 64
    steps: int = 120
    batch_size: int = 8
    lr: float = 3e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    alpha: float = 0.0
    temperature: float = 2.0
    eval_windows: int = 16
    eval_seq_len: int = 128

    def __post_init__(self):
        check_int(self, "seed", "warmup_steps", minimum=0)
        check_int(self, "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff",
                  "n_train_windows", "seq_len", "steps", "batch_size", "eval_windows",
                  "eval_seq_len")
        check_positive(self, "lr", "temperature")
        check_range(self, "alpha", 0.0, 1.0)
        check_range(self, "weight_decay", 0.0, 1.0)

    def student_config(self, vocab_size: int) -> LMConfig:
        return LMConfig(vocab_size=vocab_size, d_model=self.d_model, n_layers=self.n_layers,
                        n_heads=self.n_heads, n_kv_heads=self.n_kv_heads, d_ff=self.d_ff,
                        max_seq_len=max(self.seq_len, self.eval_seq_len))


@dataclasses.dataclass
class DistillRun(Run):
    """The trained student; ``log.updates`` holds each step's ``loss``, ``ce`` and ``kl``,
    ``log.eval_returns`` the held-out loss at each evaluation (``final`` has all metrics)."""

    student: TinyLM = None
    final: dict = dataclasses.field(default_factory=dict)


def training_windows(tokens: torch.Tensor, n: int, seq_len: int, seed: int) -> torch.Tensor:
    """``n`` windows of ``seq_len + 1`` tokens at seeded random, non-overlapping offsets."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        raise ValueError("tokens must be a 1-D tensor of token ids")
    slots = (tokens.numel() - 1) // seq_len
    if slots < n:
        raise ValueError(f"{tokens.numel()} tokens hold only {slots} windows of {seq_len}, "
                         f"asked for {n}")
    g = torch.Generator().manual_seed(int(seed))
    starts = torch.randperm(slots, generator=g)[:n] * seq_len
    return tokens[starts[:, None] + torch.arange(seq_len + 1)].long()


@torch.no_grad()
def evaluate_student(model: TinyLM, val_tokens: torch.Tensor, seq_len: int, n_windows: int,
                     teacher: TinyLM | None = None) -> dict:
    """Held-out metrics on the first ``n_windows`` non-overlapping windows: mean next-token
    ``loss`` (nats), ``accuracy`` (argmax = next token) and, with a teacher, ``agreement``
    (same argmax as the teacher) and ``kl`` (teacher || model at T = 1)."""
    from .train import eval_windows

    was = model.training
    model.eval()
    w = eval_windows(val_tokens, seq_len, n_windows)
    x, y = w[:, :-1], w[:, 1:]
    logits = model(x).logits.float()
    out = {"loss": float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))),
           "accuracy": float((logits.argmax(-1) == y).float().mean())}
    if teacher is not None:
        tl = teacher(x).logits.float()
        out["agreement"] = float((logits.argmax(-1) == tl.argmax(-1)).float().mean())
        lt, ls = F.log_softmax(tl, -1), F.log_softmax(logits, -1)
        out["kl"] = float((lt.exp() * (lt - ls)).sum(-1).mean())
    model.train(was)
    return out


def train_distill(cfg: DistillConfig, teacher: TinyLM, train_tokens: torch.Tensor,
                  val_tokens: torch.Tensor, *, eval_every: int | None = None,
                  progress: bool = False) -> DistillRun:
    """Train a fresh student (:meth:`DistillConfig.student_config`) on ``cfg.n_train_windows``
    fixed windows: hard labels when ``cfg.alpha == 0``, otherwise the distillation loss with the
    teacher's logits on the same windows. Held-out metrics every ``eval_every`` steps (and at
    the end) go to ``log.eval_returns`` (the loss) and ``final`` (all of them, at the end)."""
    from .. import progress as bar

    if not isinstance(cfg, DistillConfig):
        raise TypeError(f"expected a DistillConfig, got {type(cfg).__name__}")
    if not isinstance(teacher, TinyLM):
        raise TypeError(f"teacher must be a TinyLM, got {type(teacher).__name__}")
    data = training_windows(train_tokens, cfg.n_train_windows, cfg.seq_len, cfg.seed)
    x_all, y_all = data[:, :-1], data[:, 1:]
    teacher_logits = None
    if cfg.alpha > 0:
        teacher.eval()
        with torch.no_grad():
            teacher_logits = teacher(x_all).logits.float()
    torch.manual_seed(cfg.seed)
    student = TinyLM(cfg.student_config(teacher.config.vocab_size))
    student.train()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                            weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    log = TrainLog()
    every = eval_every or cfg.steps

    def held_out():
        return [evaluate_student(student, val_tokens, cfg.eval_seq_len, cfg.eval_windows)["loss"]]

    order = torch.empty(0, dtype=torch.long)
    with Stopwatch(log):
        for step in bar(range(cfg.steps), enabled=progress, desc="distill"):
            if len(order) < cfg.batch_size:  # epochs over the fixed windows
                order = torch.cat([order, torch.randperm(len(data), generator=gen)])
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            for grp in opt.param_groups:
                grp["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
            logits = student(x_all[idx]).logits
            if cfg.alpha == 0:
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                       y_all[idx].reshape(-1))
                parts = {"kl": None, "ce": float(loss.detach())}
            else:
                loss, parts = distillation_loss(logits, teacher_logits[idx], y_all[idx],
                                                T=cfg.temperature, alpha=cfg.alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            log.record_update(step + 1, loss=float(loss.detach()), **parts)
            if (step + 1) % every == 0 or step + 1 == cfg.steps:
                log.record_eval(step + 1, held_out)
    student.eval()
    final = evaluate_student(student, val_tokens, cfg.eval_seq_len, cfg.eval_windows, teacher)
    return DistillRun(config=cfg, log=log, student=student, final=final)


__all__ = ["soft_targets", "distillation_loss", "soft_term_gradient", "DistillConfig",
           "DistillRun", "training_windows", "evaluate_student", "train_distill"]
