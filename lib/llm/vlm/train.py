"""Training and evaluating the tiny VLM: the answer-token loss, greedy answers, accuracy.

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from lib.data.shapes import ShapesDataset

from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range

from .model import TinyVLM


@dataclasses.dataclass
class VLMTrainConfig:
    """How the VLM is trained (AdamW, linear warmup then cosine decay, answer tokens only).

    Defaults: the shipped checkpoint's optimiser settings; AdamW's betas (0.9, 0.98) and weight
    decay 0.01 are common transformer choices (e.g. the original Transformer's beta2 = 0.98).
    """

    steps: int = 1500                  # optimiser steps (the shipped model: 4000)
    batch_size: int = 64               # examples per step, drawn with replacement
    lr: float = 1e-3                   # peak learning rate (1e-4 .. 3e-3 for a model this size)
    warmup: int = 50                   # steps of linear warmup before the cosine decay
    weight_decay: float = 0.01         # AdamW's decoupled weight decay
    beta2: float = 0.98                # AdamW's second-moment decay (beta1 = 0.9)
    max_grad_norm: float = 1.0         # gradient clipping threshold (global L2 norm)
    seed: int = 0                      # draws of the minibatches

    def __post_init__(self):
        check_int(self, "steps", "batch_size", "warmup")
        check_int(self, "seed", minimum=0)
        check_positive(self, "lr", "max_grad_norm")
        check_range(self, "weight_decay", 0.0, 1.0)
        check_range(self, "beta2", 0.0, 1.0, high_open=True)


@dataclasses.dataclass
class VLMRun(Run):
    """A training run: its config, its log (loss and learning rate per step) and the model."""

    model: TinyVLM


def train_vlm(model: TinyVLM, ds: ShapesDataset, examples: dict, image_id: int,
              cfg: VLMTrainConfig | None = None, progress: bool = False) -> VLMRun:
    """Train ``model`` in place on ``examples`` (from :func:`lib.llm.vlm.make_examples`) about the
    images of ``ds``; ``image_id`` is the tokenizer's ``<|image|>`` id. The log holds one update
    per step with its ``loss`` and ``lr``."""
    cfg = VLMTrainConfig() if cfg is None else cfg
    if not isinstance(cfg, VLMTrainConfig):
        raise TypeError(f"cfg must be a VLMTrainConfig, got {type(cfg).__name__}")
    from lib import progress as progress_bar

    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(cfg.seed)
    images = torch.as_tensor(ds.images)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, cfg.beta2))

    def schedule(s):  # linear warmup, then cosine decay to 0 at the last step
        return min(1.0, (s + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    log = TrainLog()
    M = len(examples["input_ids"])
    with Stopwatch(log):
        model.train()
        for step in progress_bar(range(cfg.steps), enabled=progress, desc="train VLM"):
            idx = torch.randint(M, (cfg.batch_size,), generator=gen)
            ids, tgt = examples["input_ids"][idx], examples["targets"][idx]
            img = images[examples["image_index"][idx]].to(dev)
            out = model(img, ids.to(dev), image_id, targets=tgt.to(dev))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            log.record_update(step, loss=float(out.loss.detach()), lr=sched.get_last_lr()[0])
            sched.step()
        model.eval()
    return VLMRun(config=cfg, log=log, model=model)


@torch.no_grad()
def answer_questions(model: TinyVLM, ds: ShapesDataset, examples: dict, tokenizer, max_new_tokens: int = 24,
                     batch_size: int = 512) -> list[str]:
    """Greedy answers (text after the prompt, up to ``<|eos|>``) for every example.

    The prompt (image tokens + question) is run once into the decoder's KV cache; each new
    token then costs one single-position forward pass.
    """
    dev = next(model.parameters()).device
    model.eval()
    images = torch.as_tensor(ds.images)
    out_text = [""] * len(examples["input_ids"])
    plen = examples["prompt_len"]
    eos = tokenizer.eos_id
    for L in sorted(set(plen.tolist())):
        rows = (plen == L).nonzero().flatten()
        for s in range(0, len(rows), batch_size):
            r = rows[s:s + batch_size]
            ids = examples["input_ids"][r, :L].to(dev)
            img = images[examples["image_index"][r]].to(dev)
            x = model.embed(img, ids, tokenizer.image_id)
            cache = model.lm.new_cache(len(r), min(model.config.lm.max_seq_len, x.shape[1] + max_new_tokens))
            logits = model.lm(inputs_embeds=x, cache=cache).logits[:, -1]
            done = torch.zeros(len(r), dtype=torch.bool, device=dev)
            new = []
            for step in range(max_new_tokens):
                nxt = torch.where(done, torch.full_like(done, eos, dtype=torch.long), logits.argmax(-1))
                new.append(nxt)
                done |= nxt == eos
                if bool(done.all()) or step == max_new_tokens - 1 or cache.length >= cache.k.shape[3]:
                    break
                logits = model.lm(nxt[:, None], cache=cache).logits[:, -1]
            gen = torch.stack(new, 1).tolist()
            for k, row in enumerate(r.tolist()):
                toks = gen[k]
                toks = toks[:toks.index(eos)] if eos in toks else toks
                out_text[row] = tokenizer.decode(toks, skip_special_tokens=True).strip()
    return out_text


def evaluate_vlm(model: TinyVLM, ds: ShapesDataset, examples: dict, tokenizer) -> dict:
    """Exact-match accuracy of greedy answers, overall and per question kind, plus the answers."""
    answers = answer_questions(model, ds, examples, tokenizer)
    kinds = examples["kinds"]
    truth = [ds.answer(int(i), kinds[int(k)]) for i, k in zip(examples["image_index"], examples["kind"])]
    correct = np.array([a == t for a, t in zip(answers, truth)])
    kind_arr = examples["kind"].numpy()
    per = {kinds[k]: float(correct[kind_arr == k].mean()) for k in range(len(kinds)) if (kind_arr == k).any()}
    return {"accuracy": float(correct.mean()), "per_kind": per, "answers": answers, "truth": truth}


__all__ = ["VLMTrainConfig", "VLMRun", "train_vlm", "answer_questions", "evaluate_vlm"]
