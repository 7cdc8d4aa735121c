"""Group Relative Policy Optimization (GRPO) for a causal language model with a verifiable reward.

For each prompt, sample a *group* of ``G`` completions from the current policy, score each with a reward
function (here a verifier: 1 if the answer is right), and use the reward's standing *within its group* as the
advantage of every token of that completion — no critic. The policy loss is PPO's clipped objective per token
(:func:`lib.objectives.clip_objective`, the same lines PPO trains with), minus ``beta`` times the per-token k3
estimate of the KL to a frozen reference model (:func:`lib.objectives.kl_k3`).

Advantage normalisations (``variant`` of :func:`group_advantages`):

* ``"std"``  — ``(r - mean_g) / (std_g + eps)``, the original GRPO (DeepSeekMath; ``std`` is the sample std
  with ``ddof=1``, as TRL computes it);
* ``"mean"`` — ``r - mean_g``, no division (Dr. GRPO: dividing by a small group std over-weights prompts that
  are almost always right or wrong);
* ``"batch_std"`` — ``(r - mean_g) / (std_batch + eps)``, one scale for the whole batch.

All give zero mean per group, so a group whose completions all score the same contributes no gradient.

Loss aggregation (``aggregation`` of :func:`grpo_loss`): ``"sequence"`` averages over each completion's tokens
and then over completions (the GRPO paper); ``"token"`` averages over all tokens of the batch (DAPO), so long
completions are not down-weighted per token.

:func:`grpo_train` is the whole algorithm in one loop: sample prompts -> sample a group of completions per
prompt -> score them -> group advantages -> log-probs under the sampling and reference policies ->
``inner_steps`` gradient steps on :func:`grpo_loss` -> diagnostics. Works for any model with
``model(ids, attention_mask=mask).logits``; sampling and log-probs come from :mod:`lib.llm.generate`; tests
use a randomly initialised tiny model.

Book: seed-72 (GRPO & PPO).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lib import progress as progress_bar
from lib.llm.generate import sample_groups, token_logprobs
from lib.objectives import clip_fraction, clip_objective, kl_k3, masked_mean
from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range

VARIANTS = ("std", "mean", "batch_std")
AGGREGATIONS = ("sequence", "token")


def group_advantages(rewards, variant: str = "std", eps: float = 1e-4):
    """Group-relative advantages for rewards shaped (n_prompts, group_size) (numpy array or torch tensor).

    Returns the same type and shape; every row has zero mean.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    is_t = isinstance(rewards, torch.Tensor)
    r = rewards.detach().double() if is_t else torch.as_tensor(np.asarray(rewards, dtype=np.float64))
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"rewards must have shape (n_prompts, group_size >= 2), got {tuple(r.shape)}")
    if not torch.isfinite(r).all():
        raise ValueError("rewards must be finite")
    centred = r - r.mean(1, keepdim=True)
    if variant == "std":
        adv = centred / (r.std(1, keepdim=True) + eps)
    elif variant == "batch_std":
        adv = centred / (r.std() + eps)
    else:
        adv = centred
    if is_t:
        return adv.to(rewards.dtype if rewards.is_floating_point() else torch.float32)
    return adv.numpy()


def grpo_loss(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, clip_eps: float = 0.2, beta: float = 0.04, aggregation: str = "sequence"):
    """GRPO loss ``-(clipped surrogate) + beta * KL`` over completion tokens.

    ``logp, logp_old, logp_ref, mask``: (B, T) per-token log-probs of the sampled completion tokens under the
    current, sampling-time and reference policies, and 1 for real completion tokens. ``advantages``: (B,), one
    per completion (broadcast over its tokens). Returns ``(loss, info)`` with ``kl``, ``clip_fraction``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if logp.ndim != 2 or logp.shape != logp_old.shape or logp.shape != mask.shape:
        raise ValueError(f"logp, logp_old and mask must share one (B, T) shape, got {tuple(logp.shape)}, "
                         f"{tuple(logp_old.shape)}, {tuple(mask.shape)}")
    if advantages.shape != (logp.shape[0],):
        raise ValueError(f"advantages must have shape ({logp.shape[0]},), got {tuple(advantages.shape)}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    ratio = torch.exp(logp - logp_old.detach())
    per_tok = clip_objective(ratio, advantages.detach()[:, None], clip_eps)
    kl = torch.zeros_like(logp) if logp_ref is None or beta == 0 else kl_k3(logp, logp_ref.detach())
    per_tok = per_tok - beta * kl
    if aggregation == "sequence":
        obj = masked_mean(per_tok, mask, dim=1).mean()
    else:
        obj = masked_mean(per_tok, mask)
    with torch.no_grad():
        info = {"kl": float(masked_mean(kl, mask)), "clip_fraction": clip_fraction(ratio, clip_eps, mask)}
    return -obj, info


@dataclasses.dataclass
class GRPOConfig:
    """GRPO hyperparameters. Defaults: a short run of the book's tiny model; the values of the GRPO
    paper (DeepSeekMath, Shao et al. 2024) and TRL's ``GRPOConfig`` are given for scale.

    steps: optimisation steps, each on a fresh batch of sampled groups (paper: thousands).
    prompts_per_step: prompts drawn (without replacement) per step (paper: 1024 / group size).
    group_size: completions sampled per prompt, >= 2 (paper: 64; TRL default 8).
    max_new_tokens: longest completion (the answers here need about 20 tokens).
    temperature: sampling temperature (1.0: the policy itself, as the ratio assumes).
    lr: Adam learning rate (paper: 1e-6 for 7B; a tiny model tolerates 1e-4).
    clip_eps: clip range of the per-token ratio, in (0, 1) (paper and TRL: 0.2).
    beta: weight of the KL penalty to the reference model, >= 0 (paper: 0.04; TRL now 0.0).
    variant: advantage normalisation, one of :data:`VARIANTS` (paper: ``"std"``).
    aggregation: loss averaging, one of :data:`AGGREGATIONS` (paper: ``"sequence"``; DAPO
        ``"token"``).
    inner_steps: gradient steps per sampled batch; the ratio differs from 1 only after the first
        (paper: 1; mu in the paper's iterative variant, TRL's ``num_iterations``).
    max_grad_norm: the gradient's global norm is clipped to this (TRL: 1.0).
    seed: seeds the choice of prompts and the sampling of completions.
    """

    steps: int = 40
    prompts_per_step: int = 8
    group_size: int = 8
    max_new_tokens: int = 24
    temperature: float = 1.0
    lr: float = 1e-4
    clip_eps: float = 0.2
    beta: float = 0.04
    variant: str = "std"
    aggregation: str = "sequence"
    inner_steps: int = 1
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_choice(self, "variant", VARIANTS)
        check_choice(self, "aggregation", AGGREGATIONS)
        check_int(self, "steps", "prompts_per_step", "max_new_tokens", "inner_steps")
        check_int(self, "group_size", minimum=2)
        check_int(self, "seed", minimum=0)
        check_positive(self, "lr", "temperature", "max_grad_norm")
        check_range(self, "clip_eps", 0.0, 1.0, low_open=True, high_open=True)
        check_range(self, "beta", 0.0, float("inf"), high_open=True)


@dataclasses.dataclass
class GRPORun(Run):
    """A finished GRPO run: ``config``, ``log`` and the trained ``model`` (trained in place).

    Each row of ``log.updates`` (one per step) holds ``reward`` (mean over the batch), ``kl``,
    ``clip_fraction`` and ``loss`` (of the last inner step), ``frac_zero_groups`` (groups whose
    completions all scored the same: no signal), ``completion_len`` (mean tokens) and ``time``
    (seconds of the step).
    """

    model: torch.nn.Module


def grpo_train(model, prompts: Sequence[Sequence[int]], reward_fn: Callable[[int, list[int]], float], eos_id: int,
               cfg: GRPOConfig | None = None, progress: bool = False) -> GRPORun:
    """Train ``model`` in place with GRPO on ``prompts`` (token lists); ``reward_fn(prompt_index, completion_ids)``.

    A frozen copy of the initial model is the KL reference. Returns a :class:`GRPORun`.
    """
    cfg = cfg or GRPOConfig()
    if len(prompts) < cfg.prompts_per_step:
        raise ValueError(f"need at least prompts_per_step={cfg.prompts_per_step} prompts, got {len(prompts)}")
    rng = np.random.default_rng(cfg.seed)  # which prompts
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(cfg.seed)  # the samples
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    log = TrainLog()
    with Stopwatch(log):
        for step in progress_bar(range(cfg.steps), enabled=progress, desc="GRPO"):
            t0 = time.perf_counter()
            # 1. a batch of prompts, a group of sampled completions for each, their rewards
            idx = rng.choice(len(prompts), cfg.prompts_per_step, replace=False)
            batch = [prompts[i] for i in idx]
            model.eval()
            with torch.no_grad():
                ids, attn, cmask, n_prompt = sample_groups(model, batch, cfg.group_size, cfg.max_new_tokens,
                                                           eos_id, cfg.temperature, gen)
                comp = ids[:, n_prompt:].tolist()
                rewards = torch.tensor([[float(reward_fn(int(idx[p]), comp[p * cfg.group_size + g]))
                                         for g in range(cfg.group_size)] for p in range(len(batch))])
                # 2. group-relative advantages (no critic); log-probs of the sampling and reference policies
                adv = group_advantages(rewards, cfg.variant).reshape(-1).to(ids.device)
                logp_old = token_logprobs(model, ids, attn, n_prompt)
                logp_ref = token_logprobs(ref, ids, attn, n_prompt) if cfg.beta > 0 else None
            # 3. inner_steps gradient steps on the clipped, KL-penalised per-token loss
            model.train()
            for _ in range(cfg.inner_steps):
                logp = token_logprobs(model, ids, attn, n_prompt)
                loss, info = grpo_loss(logp, logp_old, logp_ref, adv, cmask, cfg.clip_eps, cfg.beta,
                                       cfg.aggregation)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
            model.eval()
            # 4. diagnostics
            log.record_update(step + 1, reward=float(rewards.mean()), kl=info["kl"],
                              clip_fraction=info["clip_fraction"], loss=loss.item(),
                              frac_zero_groups=float((rewards.std(1) == 0).float().mean()),
                              completion_len=float(cmask.sum(1).float().mean()),
                              time=time.perf_counter() - t0)
    return GRPORun(cfg, log, model)


__all__ = ["VARIANTS", "AGGREGATIONS", "group_advantages", "grpo_loss", "GRPOConfig", "GRPORun", "grpo_train"]
