"""Rejection-sampling fine-tuning: best-of-N by the reward model, supervised fine-tuning on the
winners, repeat.

Each round draws ``prompts_per_round`` fresh prompts, samples ``samples`` answers to each from the
current model (temperature 1), scores every answer with the reward model, keeps the best answer
of each prompt, and fine-tunes the model on those winners with the book's completion-only SFT
(:func:`lib.align.sft.sft_train`). Llama 2 (Touvron et al. 2023) alternated this with PPO; here it
stands alone, so that the comparison table can set it beside PPO-RLHF, GRPO and DPO. No critic, no
reference and no ratio: the reward model only *ranks*, and the update is plain likelihood on
the ranking's winners.

Book: seed-89.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lib import progress as progress_bar
from lib.align.reward import sampled_attention_mask
from lib.align.rlhf import sequence_scores
from lib.align.sft import SFTConfig, sft_train
from lib.llm.generate import sample_groups
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive


@dataclasses.dataclass
class RejectionConfig:
    """Rejection-sampling fine-tuning.

    rounds: sample -> select -> fine-tune cycles (Llama 2: 4 rounds before PPO).
    prompts_per_round: fresh prompts per round (drawn without replacement across rounds while they
        last).
    samples: answers sampled per prompt, the N of best-of-N (>= 2; Llama 2 used up to 10s).
    max_new_tokens: longest answer.
    sft_steps, batch_size, lr: the fine-tuning of each round (:class:`lib.align.sft.SFTConfig`,
        warm-up of a tenth of the steps, cosine decay).
    seed: seeds the prompts, the samples and the fine-tuning batches.
    """

    rounds: int = 3
    prompts_per_round: int = 96
    samples: int = 8
    max_new_tokens: int = 32
    sft_steps: int = 30
    batch_size: int = 16
    lr: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        check_int(self, "rounds", "prompts_per_round", "max_new_tokens", "sft_steps", "batch_size")
        check_int(self, "samples", minimum=2)
        check_int(self, "seed", minimum=0)
        check_positive(self, "lr")


@dataclasses.dataclass
class RejectionRun(Run):
    """A finished run: ``config``, ``log`` (one row per round: ``score`` mean reward-model score of
    all samples, ``best_score`` of the winners, ``accuracy`` / ``best_accuracy`` the verifier's share
    of right answers among all samples / the winners (NaN without a verifier), ``sft_loss`` (last
    step), ``tokens`` answer tokens generated so far, ``cpu_s``) and the fine-tuned ``model``."""

    model: torch.nn.Module


@torch.no_grad()
def best_of_n(model, reward_model, prompts: Sequence[Sequence[int]], samples: int, max_new_tokens: int,
              eos_id: int, generator: torch.Generator, batch_size: int = 32) -> dict:
    """Sample ``samples`` answers per prompt, score them, keep each prompt's best.

    Returns ``scores`` (prompts, samples), ``completions`` (a list per prompt of token lists, each
    cut after its first EOS), ``best`` (prompts,) index of the winner, ``tokens`` (answer tokens
    generated).
    """
    if not len(prompts):
        raise ValueError("need at least one prompt")
    scores, comps, tokens = [], [], 0
    model.eval()
    for s in range(0, len(prompts), batch_size):
        ids, attn, cmask, n = sample_groups(model, prompts[s:s + batch_size], samples, max_new_tokens, eos_id,
                                            generator=generator)
        sc = sequence_scores(reward_model, ids, sampled_attention_mask(attn, cmask, n)).float()
        scores.append(sc.reshape(-1, samples))
        lens = cmask.sum(1).tolist()
        rows = ids[:, n:].tolist()
        comps += [[rows[k * samples + j][:lens[k * samples + j]] for j in range(samples)]
                  for k in range(len(rows) // samples)]
        tokens += int(cmask.sum())
    scores = torch.cat(scores).numpy()
    return {"scores": scores, "completions": comps, "best": scores.argmax(1), "tokens": tokens}


def train_rejection(cfg: RejectionConfig, policy, reward_model, prompts: Sequence[Sequence[int]], eos_id: int,
                    pad_id: int, verifier: Callable[[int, list[int]], float] | None = None,
                    progress: bool = False) -> RejectionRun:
    """Rejection-sampling fine-tuning of a copy of ``policy`` (module docstring) on ``prompts``
    (token lists); ``verifier(prompt_index, completion_ids)`` (optional) logs the true accuracy."""
    if len(prompts) < cfg.prompts_per_round:
        raise ValueError(f"need at least prompts_per_round={cfg.prompts_per_round} prompts, got {len(prompts)}")
    model = copy.deepcopy(policy)
    reward_model.eval()
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(cfg.seed)
    order = rng.permutation(len(prompts))
    log, tokens, cpu0 = TrainLog(), 0, time.process_time()
    with Stopwatch(log):
        for rnd in progress_bar(range(cfg.rounds), enabled=progress, desc="rejection sampling"):
            # 1. fresh prompts (wrapping around when they run out); N answers each; the best by reward
            start = (rnd * cfg.prompts_per_round) % len(prompts)
            idx = np.take(order, np.arange(start, start + cfg.prompts_per_round), mode="wrap")
            batch = [prompts[i] for i in idx]
            bon = best_of_n(model, reward_model, batch, cfg.samples, cfg.max_new_tokens, eos_id, gen)
            tokens += bon["tokens"]
            winners = [bon["completions"][k][j] for k, j in enumerate(bon["best"])]
            correct = np.full(bon["scores"].shape, np.nan)
            if verifier is not None:
                correct = np.array([[float(verifier(int(idx[k]), c)) for c in cs]
                                    for k, cs in enumerate(bon["completions"])])
            # 2. supervised fine-tuning on the winners
            examples = [(list(p), w) for p, w in zip(batch, winners) if len(w)]
            hist = sft_train(model, examples, pad_id,
                             SFTConfig(steps=cfg.sft_steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                       warmup_steps=max(1, cfg.sft_steps // 10), seed=cfg.seed + rnd))
            best_correct = correct[np.arange(len(idx)), bon["best"]]
            log.record_update(rnd + 1, score=float(bon["scores"].mean()),
                              best_score=float(bon["scores"].max(1).mean()),
                              accuracy=float(correct.mean()), best_accuracy=float(best_correct.mean()),
                              sft_loss=hist["loss"][-1], tokens=tokens, cpu_s=time.process_time() - cpu0)
    model.eval()
    return RejectionRun(cfg, log, model)


__all__ = ["RejectionConfig", "RejectionRun", "best_of_n", "train_rejection"]
