"""Autoregressive generation for :class:`lib.llm.model.TinyLM` with pluggable logits processors.

A *logits processor* is any callable ``proc(input_ids, logits) -> logits`` with ``input_ids``
(B, t) the tokens so far and ``logits`` (B, V) the next-token scores (the signature of Hugging
Face's ``LogitsProcessor``). Processors compose left to right; :class:`Temperature`,
:class:`TopK` and :class:`TopP` are provided here (Part 5 adds more). After the processors,
``do_sample=False`` takes the argmax (greedy), ``do_sample=True`` samples from the softmax.

``generate(..., use_cache=True)`` keeps a :class:`~lib.llm.model.KVCache` and feeds one token
per step; ``use_cache=False`` recomputes the whole prefix at every step. Both give identical
tokens (up to float round-off in the logits).

Part 5 adds sampling diagnostics: :func:`processed_probs` (the distribution actually sampled),
:func:`sample_tokens` (many draws of one step), :func:`nucleus_size`, :func:`chi_square_gof` and
:func:`distinct_n`; search lives in :mod:`lib.llm.search`. The batched helpers at the end
(:func:`left_pad`, :func:`token_logprobs`, :func:`sample_groups`, :func:`greedy_accuracy`,
:func:`sampled_hits`) serve every section that samples many prompts at once.

Book: seed-4 (generation), seed-28, seed-29, seed-30 (sampling), seed-72 (GRPO's groups).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np
import torch

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Temperature:
    """Divide logits by ``t`` (t < 1 sharpens, t > 1 flattens)."""

    def __init__(self, t: float):
        if isinstance(t, bool) or not (isinstance(t, (int, float)) and t > 0):
            raise ValueError(f"temperature must be a positive number, got {t!r}")
        self.t = float(t)

    def __call__(self, input_ids, logits):
        return logits / self.t

    def __repr__(self):
        return f"Temperature({self.t})"


class TopK:
    """Keep the ``k`` largest logits per row (ties at the k-th value kept), set the rest to -inf."""

    def __init__(self, k: int):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"top-k needs an integer k >= 1, got {k!r}")
        self.k = k

    def __call__(self, input_ids, logits):
        k = min(self.k, logits.shape[-1])
        kth = logits.topk(k, dim=-1).values[..., -1:]
        return logits.masked_fill(logits < kth, float("-inf"))

    def __repr__(self):
        return f"TopK({self.k})"


class TopP:
    """Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches
    ``p``.

    The most likely token is always kept. Matches Hugging Face's ``TopPLogitsWarper``.
    """

    def __init__(self, p: float):
        if isinstance(p, bool) or not (isinstance(p, (int, float)) and 0 < p <= 1):
            raise ValueError(f"top-p must be in (0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, input_ids, logits):
        sorted_logits, order = logits.sort(dim=-1, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove_sorted = cum <= 1 - self.p
        remove_sorted[..., -1] = False  # keep the top token
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        return logits.masked_fill(remove, float("-inf"))

    def __repr__(self):
        return f"TopP({self.p})"


def apply_processors(processors: Sequence[LogitsProcessor] | None, input_ids, logits):
    """Run ``processors`` left to right on (B, V) logits."""
    for proc in processors or ():
        logits = proc(input_ids, logits)
        if not isinstance(logits, torch.Tensor):
            raise TypeError(
                f"logits processor {proc!r} must return a tensor, got {type(logits).__name__}"
            )
    return logits


@dataclasses.dataclass
class GenerationInfo:
    """Extras of :func:`generate` with ``return_info=True``.

    step_times_s: wall time of each step (the first includes the prompt's forward pass);
    logprobs (B, n_new): log-probability of each chosen token under the *processed*
    distribution; scores: list of processed (B, V) logits per step when ``keep_scores``.
    """

    step_times_s: list
    logprobs: torch.Tensor
    scores: list | None = None


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    processors: Sequence[LogitsProcessor] | None = None,
    do_sample: bool = False,
    use_cache: bool = True,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    return_info: bool = False,
    keep_scores: bool = False,
):
    """Extend ``input_ids`` (B, T) by up to ``max_new_tokens`` tokens; return (B, T + n) ids.

    processors: logits processors applied in order (e.g. ``[Temperature(0.8), TopK(50)]``).
    do_sample: sample from the processed distribution (with ``generator`` for reproducibility)
        instead of taking the argmax.
    use_cache: incremental decoding with a KV cache (one token per step) or full recomputation.
    eos_token_id: a row that produced it is finished; later positions are filled with
        ``pad_token_id`` (default: eos). Generation stops early when every row is finished.
    attention_mask (B, T): 1 for real prompt tokens, 0 for (left) padding.
    return_info: also return a :class:`GenerationInfo` (per-step times, log-probs).
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids must be a (batch, seq_len) tensor, got "
            f"{getattr(input_ids, 'shape', type(input_ids).__name__)}"
        )
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be integer token ids, got dtype {input_ids.dtype}")
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    B, T = input_ids.shape
    limit = model.config.max_seq_len
    if T + max_new_tokens > limit:
        raise ValueError(
            f"prompt ({T}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len {limit}"
        )
    if attention_mask is not None and attention_mask.shape != (B, T):
        raise ValueError(
            f"attention_mask must have shape {(B, T)}, got {tuple(attention_mask.shape)}"
        )
    pad = eos_token_id if pad_token_id is None else pad_token_id
    was_training = model.training
    model.eval()
    dev = model.device
    ids = input_ids.to(dev).long()
    mask = None if attention_mask is None else attention_mask.to(dev).long()
    finished = torch.zeros(B, dtype=torch.bool, device=dev)
    cache = model.new_cache(B, T + max_new_tokens) if use_cache and max_new_tokens > 0 else None
    times, logps, scores = [], [], []
    next_input = ids
    for step in range(max_new_tokens):
        t0 = time.perf_counter()
        if use_cache:
            out = model(next_input, attention_mask=mask, cache=cache)
        else:
            out = model(ids, attention_mask=mask)
        logits = out.logits[:, -1, :].float()
        logits = apply_processors(processors, ids, logits)
        logp = logits.log_softmax(-1)
        if do_sample:
            nxt = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
        else:
            nxt = logits.argmax(-1)
        if eos_token_id is not None:
            nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
        logps.append(logp.gather(1, nxt[:, None]).squeeze(1))
        if keep_scores:
            scores.append(logits)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        if mask is not None:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        next_input = nxt[:, None]
        if dev.type == "cuda":  # pragma: no cover - timing needs a sync on GPU
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if eos_token_id is not None:
            finished |= nxt == eos_token_id
            if bool(finished.all()):
                break
    model.train(was_training)
    if not return_info:
        return ids
    lp = torch.stack(logps, 1) if logps else torch.zeros(B, 0, device=dev)
    return ids, GenerationInfo(
        step_times_s=times, logprobs=lp, scores=scores if keep_scores else None
    )


def greedy(model, input_ids, max_new_tokens: int, **kw):
    """Greedy decoding: ``generate`` with no processors and ``do_sample=False``."""
    return generate(model, input_ids, max_new_tokens, do_sample=False, **kw)


def sample(
    model,
    input_ids,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    **kw,
):
    """Sampling with the usual temperature → top-k → top-p chain."""
    procs: list = [Temperature(temperature)]
    if top_k is not None:
        procs.append(TopK(top_k))
    if top_p is not None:
        procs.append(TopP(top_p))
    return generate(
        model,
        input_ids,
        max_new_tokens,
        processors=procs,
        do_sample=True,
        generator=generator,
        **kw,
    )


# ------------------------------------------------------------- sampling diagnostics (Part 5)
# Book: seed-28 (multinomial sampling), seed-29 (top-k), seed-30 (top-p).


def processed_probs(
    logits: torch.Tensor,
    processors: Sequence[LogitsProcessor] | None = None,
    input_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The distribution :func:`generate` samples from: ``softmax(processors(logits))`` for (V,) or
    (B, V) logits."""
    if (
        not isinstance(logits, torch.Tensor)
        or logits.dim() not in (1, 2)
        or not logits.is_floating_point()
    ):
        raise ValueError(
            f"logits must be a float tensor (V,) or (B, V), got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    two = logits if logits.dim() == 2 else logits[None]
    ids = input_ids if input_ids is not None else torch.zeros(two.shape[0], 0, dtype=torch.long)
    probs = apply_processors(processors, ids, two.float()).softmax(-1)
    return probs if logits.dim() == 2 else probs[0]


def sample_tokens(
    logits: torch.Tensor,
    n: int,
    processors: Sequence[LogitsProcessor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` independent draws (n,) of the next token from one context's (V,) logits, as
    :func:`generate` draws them (processors, softmax, ``torch.multinomial``): many samples of one
    step without running the model again.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 1:
        raise ValueError(
            f"logits must be one context's (V,) tensor, got {getattr(logits, 'shape', logits)}"
        )
    return torch.multinomial(
        processed_probs(logits, processors), n, replacement=True, generator=generator
    )


def nucleus_size(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Number of tokens :class:`TopP` keeps in each row of (B, V) (or (V,)) logits."""
    two = logits if logits.dim() == 2 else logits[None]
    n = torch.isfinite(TopP(p)(None, two.float())).sum(-1)
    return n if logits.dim() == 2 else n[0]


def chi_square_gof(counts, probs, min_expected: float = 5.0) -> tuple[float, float, int]:
    """Pearson chi-square goodness-of-fit of observed ``counts`` (V,) against ``probs`` (V,).

    Cells of probability 0 are dropped; cells whose expected count ``n * probs`` is below
    ``min_expected`` are pooled into one cell (the test's chi-square approximation needs expected
    counts of about 5 or more). A draw in a cell of probability 0 is impossible under ``probs``: the
    p-value is then 0. Returns ``(statistic, p_value, degrees_of_freedom)``
    (``scipy.stats.chisquare`` on the pooled cells).
    """
    from scipy.stats import chisquare

    c = np.asarray(counts, dtype=float).ravel()
    q = np.asarray(probs, dtype=float).ravel()
    if c.shape != q.shape or c.size < 2:
        raise ValueError(
            f"counts and probs must be 1-D with the same length >= 2, got {c.shape} and {q.shape}"
        )
    if (c < 0).any() or (q < 0).any() or not np.isclose(q.sum(), 1.0, atol=1e-4):
        raise ValueError("counts must be >= 0 and probs a distribution (>= 0, summing to 1)")
    n = c.sum()
    if n <= 0:
        raise ValueError("need at least one observation")
    if (c[q == 0] > 0).any():
        return float("inf"), 0.0, 0
    c, q = c[q > 0], q[q > 0]  # impossible cells hold no draws: drop them
    exp = n * q / q.sum()
    big = exp >= min_expected
    obs_cells = list(c[big]) + ([c[~big].sum()] if (~big).any() else [])
    exp_cells = list(exp[big]) + ([exp[~big].sum()] if (~big).any() else [])
    if len(obs_cells) < 2:
        return 0.0, 1.0, 0
    stat, pval = chisquare(obs_cells, exp_cells)
    return float(stat), float(pval), len(obs_cells) - 1


def distinct_n(sequences, n: int = 2) -> float:
    """Distinct-n: unique n-grams / all n-grams over ``sequences`` (lists of tokens); 0 when there
    are none.

    1 means no n-gram repeats across the set (diverse); near 0 means the same n-grams again and
    again.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    grams = [tuple(s[i : i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


# ---------------------------------------------------------------------------
# Batched sampling over many prompts: padding, per-token log-probs, groups of samples and
# the verifier-scored accuracies that SFT, GRPO, RAG and reasoning sections report.
# ---------------------------------------------------------------------------


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to one length: ``(ids (B, T), attention_mask (B, T))``."""
    if len(seqs) == 0:
        raise ValueError("need at least one sequence")
    T = max(len(s) for s in seqs)
    if T == 0:
        raise ValueError("sequences must not all be empty")
    ids = torch.full((len(seqs), T), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, T - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, T - len(s):] = 1
    return ids, mask


def completion_mask(completions: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for completion tokens up to and including the first ``eos_id`` of each row, 0 after it."""
    is_eos = (completions == eos_id).long()
    after = torch.cumsum(is_eos, 1) - is_eos            # number of eos strictly before each position
    return (after == 0).long()


def token_logprobs(model, ids: torch.Tensor, attention_mask: torch.Tensor, n_prompt: int) -> torch.Tensor:
    """Log-probs (B, T - n_prompt) of the tokens after position ``n_prompt`` given everything before them."""
    logits = model(ids, attention_mask=attention_mask).logits[:, n_prompt - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(-1, ids[:, n_prompt:, None]).squeeze(-1)


def sample_groups(model, prompts: Sequence[Sequence[int]], group_size: int, max_new_tokens: int, eos_id: int,
                  temperature: float = 1.0, generator: torch.Generator | None = None, pad_id: int | None = None):
    """Sample ``group_size`` completions per prompt in one batch (prompt-major order).

    Returns ``(ids (P*G, T_p + n), attention_mask (same), completion_mask (P*G, n), n_prompt)``.
    """
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (advantages are relative to the group), got {group_size}")
    pad = eos_id if pad_id is None else pad_id
    rep = [p for p in prompts for _ in range(group_size)]
    ids, attn = left_pad(rep, pad)
    dev = next(model.parameters()).device
    procs = [Temperature(temperature)] if temperature != 1.0 else None
    out = generate(model, ids.to(dev), max_new_tokens, processors=procs, do_sample=True, eos_token_id=eos_id,
                   attention_mask=attn.to(dev), generator=generator)
    n_prompt = ids.shape[1]
    comp = out[:, n_prompt:]
    cmask = completion_mask(comp, eos_id)
    full = torch.cat([attn.to(dev), torch.ones_like(comp)], 1)
    return out, full, cmask, n_prompt


@torch.no_grad()
def greedy_accuracy(model, prompts: Sequence[Sequence[int]], check: Callable[[int, list[int]], bool], eos_id: int,
                    max_new_tokens: int = 32, batch_size: int = 64) -> float:
    """Share of prompts whose greedy completion passes ``check(prompt_index, completion_ids)``."""
    ok = 0
    dev = next(model.parameters()).device
    for s in range(0, len(prompts), batch_size):
        chunk = prompts[s:s + batch_size]
        ids, attn = left_pad(chunk, eos_id)
        out = generate(model, ids.to(dev), max_new_tokens, eos_token_id=eos_id, attention_mask=attn.to(dev))
        for i, row in enumerate(out[:, ids.shape[1]:].tolist()):
            ok += bool(check(s + i, row))
    return ok / len(prompts)


@torch.no_grad()
def sampled_hits(model, prompts: Sequence[Sequence[int]], check: Callable[[int, list[int]], bool], eos_id: int,
                 samples: int = 8, max_new_tokens: int = 32, temperature: float = 1.0, batch_size: int = 32,
                 seed: int = 123) -> np.ndarray:
    """Sample ``samples`` completions per prompt; return a bool array (n_prompts, samples) of ``check`` results.

    Its mean is the sampled (pass@1) accuracy; ``hits.any(1).mean()`` is pass@``samples``. Seeded: the same
    model gives the same array.
    """
    if samples < 1 or batch_size < 1:
        raise ValueError(f"samples and batch_size must be >= 1, got {samples}, {batch_size}")
    if len(prompts) == 0:
        raise ValueError("need at least one prompt")
    if samples == 1:  # sample_groups needs groups of >= 2; draw two and keep the first
        return sampled_hits(model, prompts, check, eos_id, 2, max_new_tokens, temperature, batch_size, seed)[:, :1]
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    hits = np.zeros((len(prompts), samples), dtype=bool)
    for s in range(0, len(prompts), batch_size):
        chunk = prompts[s:s + batch_size]
        out, _, _, n = sample_groups(model, chunk, samples, max_new_tokens, eos_id, temperature, gen)
        for k, row in enumerate(out[:, n:].tolist()):
            hits[s + k // samples, k % samples] = bool(check(s + k // samples, row))
    return hits


__all__ = [
    "LogitsProcessor",
    "Temperature",
    "TopK",
    "TopP",
    "apply_processors",
    "GenerationInfo",
    "generate",
    "greedy",
    "sample",
    "processed_probs",
    "sample_tokens",
    "nucleus_size",
    "chi_square_gof",
    "distinct_n",
    "left_pad",
    "completion_mask",
    "token_logprobs",
    "sample_groups",
    "greedy_accuracy",
    "sampled_hits",
]
