"""Supervised fine-tuning (SFT) of a causal LM on (prompt, completion) pairs, with the loss on the completion only.

Each example is a pair of token lists; a batch concatenates them, pads on the right, and sets the target of every
position that predicts a prompt token or padding to ``IGNORE_INDEX`` — so the model is trained to *answer*, not to
reproduce questions. The loss is the mean cross-entropy over completion tokens (every completion token of the
batch weighs the same, as in Hugging Face's ``DataCollatorForCompletionOnlyLM`` / TRL's ``completion_only_loss``).

:func:`sft_batch` builds the tensors, :func:`sft_loss` computes the loss, :func:`sft_train` runs AdamW with
warmup and cosine decay (:func:`lib.llm.train.lr_at`). ``python -m lib.align.sft`` makes the book's shipped
cold-start checkpoint ``tiny-lm-arith-sft`` (see :func:`make_cold_start`).

Book: seed-9, seed-11, seed-12, seed-72 (the cold start before GRPO).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lib.llm.model import IGNORE_INDEX
from lib.llm.train import lr_at

Example = tuple[Sequence[int], Sequence[int]]


def _check_examples(examples) -> None:
    if not isinstance(examples, (list, tuple)) or len(examples) == 0:
        raise ValueError("examples must be a non-empty list of (prompt_ids, completion_ids) pairs")
    for i, ex in enumerate(examples):
        if not isinstance(ex, (list, tuple)) or len(ex) != 2:
            raise ValueError(f"example {i} must be a (prompt_ids, completion_ids) pair, got {type(ex).__name__}")
        prompt, completion = ex
        if len(prompt) == 0 or len(completion) == 0:
            raise ValueError(f"example {i}: prompt and completion must both be non-empty token lists")


def sft_batch(examples: Sequence[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, targets, attention_mask)``, each (B, T), for a list of ``(prompt_ids, completion_ids)`` pairs.

    Sequences are ``prompt + completion`` padded on the right with ``pad_id``; ``targets[b, t]`` is the next token
    when that token belongs to the completion, else ``IGNORE_INDEX``; ``attention_mask`` is 1 on real tokens.
    """
    _check_examples(examples)
    T = max(len(p) + len(c) for p, c in examples)
    ids = torch.full((len(examples), T), int(pad_id), dtype=torch.long)
    targets = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    for b, (p, c) in enumerate(examples):
        seq = torch.as_tensor(list(p) + list(c), dtype=torch.long)
        n, n_p = len(seq), len(p)
        ids[b, :n] = seq
        mask[b, :n] = 1
        targets[b, n_p - 1:n - 1] = seq[n_p:]          # position t predicts token t + 1
    return ids, targets, mask


def sft_loss(model, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the positions whose target is not ``IGNORE_INDEX``."""
    if ids.shape != targets.shape or ids.dim() != 2:
        raise ValueError(f"ids and targets must share one (B, T) shape, got {tuple(ids.shape)} and "
                         f"{tuple(targets.shape)}")
    if not (targets != IGNORE_INDEX).any():
        raise ValueError("no completion tokens in the batch (every target is IGNORE_INDEX)")
    from lib.sft.loss import completion_loss  # the book's one SFT loss (seed-14)

    logits = model(ids).logits  # right padding: real tokens never attend to the pads after them
    return completion_loss(logits, targets)


@dataclasses.dataclass
class SFTConfig:
    steps: int = 1800
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps], got {self.warmup_steps}")
        if not self.lr > 0 or self.weight_decay < 0 or not self.max_grad_norm > 0:
            raise ValueError("need lr > 0, weight_decay >= 0 and max_grad_norm > 0")


def sft_train(model, examples: Sequence[Example], pad_id: int, cfg: SFTConfig | None = None,
              callback: Callable[[int, dict], None] | None = None, progress: bool = False) -> dict:
    """Fine-tune ``model`` in place on ``examples`` (batches drawn uniformly with replacement from ``cfg.seed``).

    Returns a history dict of per-step lists ``step, loss, lr`` and the total ``time_s``; ``callback(step, hist)``
    runs after every step (e.g. to evaluate now and then).
    """
    cfg = cfg or SFTConfig()
    _check_examples(examples)
    rng = np.random.default_rng(cfg.seed)
    dev = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    hist: dict = {"step": [], "loss": [], "lr": []}
    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="SFT", mininterval=1.0)
    t0 = time.perf_counter()
    for step in it:
        lr = lr_at(step, max_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                   min_lr_ratio=cfg.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(examples), cfg.batch_size)
        ids, targets, _ = sft_batch([examples[i] for i in idx], pad_id)
        model.train()
        loss = sft_loss(model, ids.to(dev), targets.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        hist["step"].append(step + 1)
        hist["loss"].append(float(loss.detach()))
        hist["lr"].append(lr)
        if callback is not None:
            model.eval()
            callback(step, hist)
    model.eval()
    hist["time_s"] = time.perf_counter() - t0
    return hist


# ----------------------------------------------------------------------------- the shipped cold-start model

COLD_START = "tiny-lm-arith-sft"
DIRECT_TWIN = "tiny-lm-arith-direct"  # same recipe, answers without steps (Part 5's CoT comparison, seed-23)


def make_cold_start(out=None, cfg: SFTConfig | None = None, command: str | None = None,
                    progress: bool = True, direct: bool = False) -> dict:
    """Fine-tune ``tiny-lm`` on the fact-chain task's SFT data (:func:`lib.align.tasks.chain_arithmetic_task`):
    all 674 one-step facts plus the few worked two-step solutions of the ``cold_start`` split. Saves the model to
    ``out`` (default ``data/checkpoints/tiny-lm-arith-sft``) with its accuracies and recipe; returns the meta dict.
    ``direct=True`` trains the direct-answer twin ``tiny-lm-arith-direct`` instead: the same recipe and data, but
    every completion is the bare ``The answer is N.`` (no worked steps).
    """
    from lib import seed_everything
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model, save_checkpoint
    from lib.provenance import git_commit, machine
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer
    from .tasks import chain_arithmetic_task, evaluate_task, sft_examples

    cfg = cfg or SFTConfig()
    seed_everything(cfg.seed)
    tok = load_tokenizer()
    task = chain_arithmetic_task()
    model = load_model("tiny-lm")
    examples = sft_examples(tok, task.facts + task.cold_start, steps=not direct)
    before = evaluate_task(model, tok, task)
    hist = sft_train(model, examples, tok.eos_id, cfg, progress=progress)
    after = evaluate_task(model, tok, task)
    every = max(1, cfg.steps // 200)
    meta = {
        "name": DIRECT_TWIN if direct else COLD_START,
        "description": "tiny-lm fine-tuned (completion-only SFT) on every one-step arithmetic fact and "
                       f"{len(task.cold_start)} worked two-step solutions: the cold start of the GRPO section."
                       if not direct else
                       "tiny-lm fine-tuned (completion-only SFT) on every one-step arithmetic fact and "
                       f"{len(task.cold_start)} two-step questions, answered without steps ('The answer is N.'): "
                       "the direct-answer twin of tiny-lm-arith-sft (Part 5, CoT vs direct).",
        "answers": "direct" if direct else "steps",
        "base": "tiny-lm",
        "seed": cfg.seed,
        "train_config": dataclasses.asdict(cfg),
        "task": task.describe(),
        "tokenizer": "data/tokenizer/tokenizer.book.json",
        "tokenizer_sha256": tokenizer_sha256(),
        "metrics": {"before": before, "after": after, "train_time_s": hist["time_s"],
                    "examples": len(examples), "final_loss": hist["loss"][-1],
                    "note": "lib.align.tasks.evaluate_task: greedy and sampled (temperature 1) accuracy"},
        "history": {"step": hist["step"][::every], "loss": [round(x, 5) for x in hist["loss"][::every]]},
        "machine": machine(),
        "commit": git_commit(),
        "command": command or "python -m lib.align.sft",
    }
    folder = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / (DIRECT_TWIN if direct else COLD_START)
    save_checkpoint(model, folder, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.sft",
                                 description="Make the cold-start checkpoint tiny-lm-arith-sft (--direct: its direct-answer twin).")
    ap.add_argument("--out", default=None, help="checkpoint folder (default data/checkpoints/tiny-lm-arith-sft)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--direct", action="store_true",
                    help="make the direct-answer twin tiny-lm-arith-direct (answers without steps)")
    args = ap.parse_args(argv)
    cfg = SFTConfig() if args.steps is None else SFTConfig(steps=args.steps)
    cmd = "python -m lib.align.sft " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)
    meta = make_cold_start(args.out, cfg, command=cmd.strip(), progress=not args.no_progress, direct=args.direct)
    m = meta["metrics"]
    for k in ("before", "after"):
        print(k, {s: {a: round(v, 3) for a, v in d.items()} for s, d in m[k].items()})
    print(f"{m['train_time_s']:.0f} s")
    return 0


__all__ = ["Example", "sft_batch", "sft_loss", "SFTConfig", "sft_train", "COLD_START", "DIRECT_TWIN",
           "make_cold_start"]


if __name__ == "__main__":
    sys.exit(main())
