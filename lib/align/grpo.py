"""Group Relative Policy Optimization (GRPO) for a causal language model with a verifiable reward.

For each prompt, sample a *group* of ``G`` completions from the current policy, score each with a reward
function (here a verifier: 1 if the answer is right), and use the reward's standing *within its group* as the
advantage of every token of that completion — no critic. The policy loss is PPO's clipped surrogate per token
(imported from :mod:`lib.rl.ppo`), plus ``beta`` times a per-token KL estimate to a frozen reference model.

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

Works for any model with ``model(ids, attention_mask=mask).logits`` and the book's
:func:`lib.llm.generate.generate`; tests use a randomly initialised tiny model.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lib.llm.generate import sample_groups, token_logprobs
from lib.rl.ppo import clip_objective

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


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` from tokens sampled by ``pi``: ``e^(l_ref - l) - (l_ref - l) - 1`` (>= 0)."""
    if logp.shape != logp_ref.shape:
        raise ValueError(f"logp and logp_ref differ in shape: {tuple(logp.shape)} vs {tuple(logp_ref.shape)}")
    d = logp_ref - logp
    return torch.expm1(d) - d


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
    m = mask.to(logp.dtype)
    ratio = torch.exp(logp - logp_old.detach())
    per_tok = clip_objective(ratio, advantages.detach()[:, None], clip_eps)
    kl = torch.zeros_like(logp) if logp_ref is None or beta == 0 else kl_k3(logp, logp_ref.detach())
    per_tok = per_tok - beta * kl
    if aggregation == "sequence":
        obj = ((per_tok * m).sum(1) / m.sum(1).clamp_min(1)).mean()
    else:
        obj = (per_tok * m).sum() / m.sum().clamp_min(1)
    with torch.no_grad():
        n = m.sum().clamp_min(1)
        info = {"kl": float((kl * m).sum() / n),
                "clip_fraction": float((((ratio - 1).abs() > clip_eps).to(m.dtype) * m).sum() / n)}
    return -obj, info


@dataclasses.dataclass
class GRPOConfig:
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
    inner_steps: int = 1           # gradient steps per sampled batch (ratio != 1 after the first)
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        for name in ("steps", "prompts_per_step", "max_new_tokens", "inner_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2")
        if not self.lr > 0 or self.beta < 0 or not 0 < self.clip_eps < 1:
            raise ValueError("need lr > 0, beta >= 0 and clip_eps in (0, 1)")


def grpo_train(model, prompts: Sequence[Sequence[int]], reward_fn: Callable[[int, list[int]], float], eos_id: int,
               cfg: GRPOConfig | None = None, callback: Callable[[int, dict], None] | None = None,
               progress: bool = False) -> dict:
    """Train ``model`` in place with GRPO on ``prompts`` (token lists); ``reward_fn(prompt_index, completion_ids)``.

    A frozen copy of the initial model is the KL reference. Returns a history dict of per-step lists:
    ``reward`` (mean over the batch), ``kl``, ``clip_fraction``, ``loss``, ``frac_zero_groups`` (groups with
    identical rewards: no signal), ``completion_len``, ``time``.
    """
    cfg = cfg or GRPOConfig()
    if len(prompts) < cfg.prompts_per_step:
        raise ValueError(f"need at least prompts_per_step={cfg.prompts_per_step} prompts, got {len(prompts)}")
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(cfg.seed)
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hist = {k: [] for k in ("reward", "kl", "clip_fraction", "loss", "frac_zero_groups", "completion_len", "time")}
    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="GRPO")
    for step in it:
        t0 = time.perf_counter()
        idx = rng.choice(len(prompts), cfg.prompts_per_step, replace=False)
        batch = [prompts[i] for i in idx]
        model.eval()
        with torch.no_grad():
            ids, attn, cmask, n_prompt = sample_groups(model, batch, cfg.group_size, cfg.max_new_tokens, eos_id,
                                                       cfg.temperature, gen)
            comp = ids[:, n_prompt:].tolist()
            rewards = torch.tensor([[float(reward_fn(int(idx[p]), comp[p * cfg.group_size + g]))
                                     for g in range(cfg.group_size)] for p in range(len(batch))])
            adv = group_advantages(rewards, cfg.variant).reshape(-1).to(ids.device)
            logp_old = token_logprobs(model, ids, attn, n_prompt)
            logp_ref = token_logprobs(ref, ids, attn, n_prompt) if cfg.beta > 0 else None
        model.train()
        for _ in range(cfg.inner_steps):
            logp = token_logprobs(model, ids, attn, n_prompt)
            loss, info = grpo_loss(logp, logp_old, logp_ref, adv, cmask, cfg.clip_eps, cfg.beta, cfg.aggregation)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
        model.eval()
        hist["reward"].append(float(rewards.mean()))
        hist["kl"].append(info["kl"])
        hist["clip_fraction"].append(info["clip_fraction"])
        hist["loss"].append(loss.item())
        hist["frac_zero_groups"].append(float((rewards.std(1) == 0).float().mean()))
        hist["completion_len"].append(float(cmask.sum(1).float().mean()))
        hist["time"].append(time.perf_counter() - t0)
        if callback is not None:
            callback(step, hist)
    return hist


__all__ = ["VARIANTS", "AGGREGATIONS", "group_advantages", "kl_k3", "grpo_loss", "GRPOConfig", "grpo_train"]
