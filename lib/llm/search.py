"""Search-based decoding: exhaustive search over a bounded answer space, greedy, and beam search.

Book: seed-25 (exhaustive search), seed-26 (greedy search), seed-27 (beam search).

All three look for a high-probability continuation ``y`` of a prompt ``x`` under
``log p(y | x) = sum_t log p(y_t | x, y_<t)``:

* :func:`exhaustive_search` scores *every* sequence of a bounded answer space (e.g. the
  strings ``" 0."`` … ``" 999."``) in batches and returns them ranked: the exact optimum, at a
  cost that grows with the size of the space (``V**n`` for all length-``n`` sequences).
* :func:`greedy_trace` takes the most likely next token at each step (one model call per
  token) and records, per step, the chosen token and its best alternatives, so the path can
  be drawn.
* :func:`beam_search` keeps the ``num_beams`` best partial sequences per step. It follows
  Hugging Face ``transformers``' beam search step for step (same candidates, same length
  penalty ``score = sum log p / length ** length_penalty`` for finished hypotheses, same
  ``early_stopping`` rules), so its tokens equal ``generate(num_beams=k, do_sample=False)``
  on the exported weights (``tests/test_llm_search.py``); it also returns the search tree.

:class:`AllowedSequences` is a logits processor that confines greedy and beam search to the
same bounded answer space as the exhaustive search (a prefix trie, like Hugging Face's
``PrefixConstrainedLogitsProcessor``), so the three can be compared on equal terms.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from .generate import apply_processors

NEG = (
    -1.0e9
)  # the "impossible" score transformers' beam search uses (kept for identical tie behaviour)


def _prompt_tensor(prompt_ids, model) -> torch.Tensor:
    if isinstance(prompt_ids, torch.Tensor):
        if prompt_ids.dim() == 2 and prompt_ids.shape[0] == 1:
            prompt_ids = prompt_ids[0]
        if (
            prompt_ids.dim() != 1
            or prompt_ids.is_floating_point()
            or prompt_ids.dtype == torch.bool
        ):
            raise ValueError(
                f"prompt_ids must be one sequence of integer ids (T,) or (1, T), got "
                f"{tuple(prompt_ids.shape)} {prompt_ids.dtype}"
            )
        ids = prompt_ids.long()
    else:
        ids = list(prompt_ids)
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
            raise TypeError("prompt_ids must be a list of ints or an integer tensor")
        ids = torch.tensor(ids, dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("prompt_ids must not be empty")
    return ids.to(model.device)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


# ----------------------------------------------------------------------------- exhaustive search


def sequence_logprobs(
    model, prompt_ids, continuations: Sequence[Sequence[int]], batch_size: int = 256
) -> torch.Tensor:
    """``log p(y | x)`` (summed over tokens, float64 on CPU) of each continuation ``y`` of one
    prompt ``x``.

    The prompt is encoded once (its keys and values are cached and shared by every continuation);
    each batch of continuations is right-padded and only real tokens are summed.
    """
    with torch.no_grad():
        x = _prompt_tensor(prompt_ids, model)
        conts = [list(c) for c in continuations]
        if not conts or any(len(c) == 0 for c in conts):
            raise ValueError("need at least one continuation, each with at least one token")
        _check_positive_int(batch_size, "batch_size")
        T = x.numel()
        L_max = max(len(c) for c in conts)
        if T + L_max > model.config.max_seq_len:
            raise ValueError(
                f"prompt ({T}) + continuation ({L_max}) exceeds max_seq_len "
                f"{model.config.max_seq_len}"
            )
        was_training = model.training
        model.eval()
        pre = model.new_cache(1, T + L_max)
        first = model(x[None], cache=pre).logits[0, -1].float().log_softmax(-1)  # p(y_1 | x)
        out = []
        for s in range(0, len(conts), batch_size):
            chunk = conts[s : s + batch_size]
            B, L = len(chunk), max(len(c) for c in chunk)
            ids = torch.zeros(B, L, dtype=torch.long, device=x.device)
            real = torch.zeros(B, L, dtype=torch.bool, device=x.device)
            for i, c in enumerate(chunk):
                ids[i, : len(c)] = torch.as_tensor(c, device=x.device)
                real[i, : len(c)] = True
            lp = first[ids[:, 0]]
            if L > 1:
                cache = model.new_cache(B, T + L_max)
                cache.k[:, :, :, :T] = pre.k[:, :, :, :T]
                cache.v[:, :, :, :T] = pre.v[:, :, :, :T]
                cache.length = T
                logp = (
                    model(ids[:, :-1], cache=cache).logits.float().log_softmax(-1)
                )  # causal: pads come last
                tok = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
                lp = lp + (tok * real[:, 1:]).sum(-1)
            out.append(lp.double().cpu())
        model.train(was_training)
        return torch.cat(out)


@dataclasses.dataclass
class ExhaustiveResult:
    """Every candidate of the space ranked by log-probability (best first).

    ``order[i]`` is the index (into the candidates given) of the i-th best; ``logprobs[order]``
    is sorted descending; ``n_scored`` candidates were scored with ``n_positions`` model positions
    (the prompt once, then each candidate's tokens but its last).
    """

    logprobs: torch.Tensor
    order: torch.Tensor
    n_scored: int
    n_positions: int

    @property
    def best(self) -> int:
        return int(self.order[0])

    def rank_of(self, index: int) -> int:
        """0-based rank of candidate ``index`` (0 = the most likely)."""
        return int((self.order == index).nonzero()[0, 0])


def exhaustive_search(
    model, prompt_ids, candidates: Sequence[Sequence[int]], batch_size: int = 256
) -> ExhaustiveResult:
    """Score every token sequence of the bounded space ``candidates`` and rank them: the exact
    argmax of ``log p(y | x)`` over the space (ties: the earlier candidate first)."""
    lp = sequence_logprobs(model, prompt_ids, candidates, batch_size)
    order = torch.sort(-lp, stable=True).indices
    T = _prompt_tensor(prompt_ids, model).numel()
    n_pos = T + sum(
        len(c) - 1 for c in candidates
    )  # the prompt once, then each candidate's own tokens
    return ExhaustiveResult(lp, order, len(candidates), n_pos)


class AllowedSequences:
    """Logits processor that only allows continuations of a fixed set of token sequences (a prefix
    trie).

    ``sequences``: the bounded space (each a list of ids); ``prompt_len``: where the continuation
    starts in ``input_ids``. At each step, tokens that do not extend the generated prefix towards
    some sequence of the space get ``-inf``; when the prefix is a complete sequence, only
    ``end_token_id`` is allowed (if given; otherwise the sequences must be prefix-free and decoding
    must stop there).
    """

    def __init__(
        self, sequences: Sequence[Sequence[int]], prompt_len: int, end_token_id: int | None = None
    ):
        seqs = [tuple(int(t) for t in s) for s in sequences]
        if not seqs or any(len(s) == 0 for s in seqs):
            raise ValueError("need at least one non-empty sequence")
        _check_positive_int(prompt_len, "prompt_len")
        self.prompt_len = prompt_len
        self.end_token_id = end_token_id
        self.next: dict[tuple, set] = {}
        for s in seqs:
            for i in range(len(s)):
                self.next.setdefault(s[:i], set()).add(s[i])
            if end_token_id is not None:
                self.next.setdefault(s, set()).add(int(end_token_id))

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Token ids allowed after the generated ``prefix`` (empty when the prefix left the
        space)."""
        return sorted(self.next.get(tuple(int(t) for t in prefix), ()))

    def __call__(self, input_ids, logits):
        mask = torch.ones_like(logits, dtype=torch.bool)
        for b in range(input_ids.shape[0]):
            ok = self.allowed(input_ids[b, self.prompt_len :].tolist())
            if ok:
                mask[b, ok] = False
        return logits.masked_fill(mask, float("-inf"))

    def __repr__(self):
        return f"AllowedSequences({len(self.next)} prefixes)"


# ----------------------------------------------------------------------------- greedy


@dataclasses.dataclass
class GreedyStep:
    """One greedy step: the chosen token, its log-prob, and the ``top`` best tokens with their
    log-probs."""

    token: int
    logprob: float
    top_tokens: list
    top_logprobs: list


def greedy_trace(
    model,
    prompt_ids,
    max_new_tokens: int,
    eos_token_id: int | None = None,
    processors=None,
    top: int = 5,
) -> tuple[list[int], list[GreedyStep]]:
    """Greedy decoding, one model call per token, with each step's alternatives recorded.

    Returns ``(new_token_ids, steps)``. The log-probs are those of the model (``log_softmax`` of the
    logits) after ``processors`` (e.g. :class:`AllowedSequences`), the scores beam search uses, so
    ``sum(step.logprob)`` is the sequence score with ``length_penalty=0``. Equals
    :func:`lib.llm.generate.greedy` when no processor is given.
    """
    with torch.no_grad():
        x = _prompt_tensor(prompt_ids, model)
        _check_positive_int(max_new_tokens, "max_new_tokens")
        _check_positive_int(top, "top")
        if x.numel() + max_new_tokens > model.config.max_seq_len:
            raise ValueError(
                f"prompt ({x.numel()}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len"
            )
        ids = x[None]
        steps: list[GreedyStep] = []
        for _ in range(max_new_tokens):
            logp = model(ids).logits[:, -1].float().log_softmax(-1)
            logp = apply_processors(processors, ids, logp)
            vals, toks = logp[0].topk(min(top, logp.shape[-1]))
            tok = int(toks[0])
            steps.append(GreedyStep(tok, float(vals[0]), toks.tolist(), vals.tolist()))
            ids = torch.cat([ids, toks[:1][None]], 1)
            if eos_token_id is not None and tok == eos_token_id:
                break
        return [s.token for s in steps], steps


# ----------------------------------------------------------------------------- beam search


def expand_beams(beam_scores: torch.Tensor, logprobs: torch.Tensor, n: int):
    """One beam-search step: the ``n`` best one-token extensions of the live beams.

    ``beam_scores`` (k,): each beam's summed log-prob; ``logprobs`` (k, V): its next-token
    log-probs. Every extension ``(b, v)`` scores ``beam_scores[b] + logprobs[b, v]``; returns
    ``(scores, parents, tokens)``, each (n,), best first (ties: lower ``b * V + v`` first, as
    ``torch.topk``).
    """
    if beam_scores.dim() != 1 or logprobs.dim() != 2 or logprobs.shape[0] != beam_scores.shape[0]:
        raise ValueError(
            f"need beam_scores (k,) and logprobs (k, V), got {tuple(beam_scores.shape)} and "
            f"{tuple(logprobs.shape)}"
        )
    V = logprobs.shape[-1]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= logprobs.numel():
        raise ValueError(f"n must be an int in [1, k * V = {logprobs.numel()}], got {n!r}")
    scores, flat = (logprobs + beam_scores[:, None]).reshape(-1).topk(n)
    return scores, flat // V, flat % V


@dataclasses.dataclass
class BeamResult:
    """What :func:`beam_search` returns.

    sequences: the ``num_beams`` finished hypotheses (new tokens only, lists of ids, eos included),
        best first; scores: their scores ``sum_logprob / length ** length_penalty``; sum_logprobs:
        the unnormalised sums. tree: one dict per step with the ``2 * num_beams`` candidates
        considered, each ``{"parent", "token", "logprob", "status"}`` (``status`` is ``"kept"``,
        ``"finished"`` or ``"pruned"``; ``parent`` indexes the previous step's kept beams). n_calls:
        model calls (one batched forward pass over the live beams per step).
    """

    sequences: list
    scores: list
    sum_logprobs: list
    tree: list
    n_calls: int


def beam_search(
    model,
    prompt_ids,
    num_beams: int,
    max_new_tokens: int,
    *,
    eos_token_id: int | None = None,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    processors=None,
) -> BeamResult:
    """Beam search over continuations of one prompt, as ``transformers`` does it
    (``do_sample=False``).

    At each step every live beam ``b`` (running score ``s_b = sum log p``) proposes every token
    ``v`` with score ``s_b + log p(v | beam)``; the best ``2 * num_beams`` candidates are kept.
    Among them, the ones ending with ``eos_token_id`` (or reaching ``max_new_tokens``) that rank in
    the first ``num_beams`` become finished hypotheses with score ``s / n ** length_penalty`` (``n``
    new tokens, eos included); the best ``num_beams`` unfinished ones continue. ``processors`` act
    on the log-probs (as in transformers' beam search).

    early_stopping: ``True`` stops once ``num_beams`` hypotheses are finished; ``False`` (default)
    also stops when the best live beam, scored at its current length, cannot beat the worst finished
    hypothesis; ``"never"`` scores it at the longest possible length when ``length_penalty > 0``.
    """
    with torch.no_grad():
        x = _prompt_tensor(prompt_ids, model)
        k = _check_positive_int(num_beams, "num_beams")
        n_max = _check_positive_int(max_new_tokens, "max_new_tokens")
        if early_stopping not in (True, False, "never"):
            raise ValueError(
                f"early_stopping must be True, False or 'never', got {early_stopping!r}"
            )
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)):
            raise TypeError(f"length_penalty must be a number, got {length_penalty!r}")
        T = x.numel()
        max_len = T + n_max
        if max_len > model.config.max_seq_len:
            raise ValueError(
                f"prompt ({T}) + max_new_tokens ({n_max}) exceeds max_seq_len "
                f"{model.config.max_seq_len}"
            )
        was_training = model.training
        model.eval()
        dev = x.device
        keep = 2 * k  # candidates kept per step
        top_k_mask = torch.arange(keep, device=dev) < k  # only these may finish
        fill = eos_token_id if eos_token_id is not None else -1
        running = torch.full((k, max_len), fill, dtype=torch.long, device=dev)
        running[:, :T] = x
        run_scores = torch.full((k,), NEG, device=dev)
        run_scores[0] = 0.0  # one real beam at the start
        done = running.clone()
        done_scores = torch.full((k,), NEG, device=dev)
        done_sums = torch.full((k,), NEG, device=dev)
        done_flag = torch.zeros(k, dtype=torch.bool, device=dev)
        may_improve = True
        tree, cur, calls = [], T, 0
        while True:
            logp = model(running[:, :cur]).logits[:, -1].float().log_softmax(-1)
            calls += 1
            logp = apply_processors(processors, running[:, :cur], logp)
            cand_lp, parent, token = expand_beams(run_scores, logp, keep)
            cand = running[parent].clone()
            cand[:, cur] = token
            hits = torch.full((keep,), cur + 1 >= max_len, device=dev)
            if eos_token_id is not None:
                hits |= token == eos_token_id
            # the best num_beams unfinished candidates continue
            live_lp = cand_lp + hits.float() * NEG
            nxt = live_lp.topk(k).indices
            # finished candidates among the first num_beams enter the pool of hypotheses
            just = hits & top_k_mask
            fin = cand_lp / ((cur + 1 - T) ** length_penalty)
            fin = fin + float(bool(done_flag.all()) and early_stopping is True) * NEG
            fin = fin + float(not may_improve) * NEG
            fin = fin + (~just).float() * NEG
            merged = torch.cat([done_scores, fin]).topk(k).indices
            done = torch.cat([done, cand])[merged]
            done_sums = torch.cat([done_sums, cand_lp])[merged]
            done_flag = torch.cat([done_flag, just])[merged]
            done_scores = torch.cat([done_scores, fin])[merged]
            status = ["pruned"] * keep
            for i in nxt.tolist():
                if not bool(hits[i]):
                    status[i] = "kept"
            for j, m in enumerate(merged.tolist()):
                if m >= k and bool(done_flag[j]):
                    status[m - k] = "finished"
            tree.append(
                [
                    {
                        "parent": int(parent[i]),
                        "token": int(token[i]),
                        "logprob": float(cand_lp[i]),
                        "status": status[i],
                    }
                    for i in range(keep)
                ]
            )
            running, run_scores = cand[nxt], live_lp[nxt]
            cur += 1
            # could a live beam still beat the worst finished hypothesis?
            best_len = (
                (max_len - T) if (early_stopping == "never" and length_penalty > 0) else (cur - T)
            )
            best_possible = run_scores[0] / (best_len**length_penalty)
            worst = torch.where(done_flag, done_scores.min(), torch.tensor(NEG, device=dev))
            may_improve = may_improve and bool((best_possible > worst).any())
            if (
                not may_improve
                or (bool(done_flag.all()) and early_stopping is True)
                or bool(hits.all())
            ):
                break
        model.train(was_training)
        seqs = []
        for row in done[:, T:].tolist():
            if eos_token_id is not None and eos_token_id in row:
                row = row[: row.index(eos_token_id) + 1]
            seqs.append(row)
        return BeamResult(seqs, done_scores.tolist(), done_sums.tolist(), tree, calls)


__all__ = [
    "sequence_logprobs",
    "ExhaustiveResult",
    "exhaustive_search",
    "AllowedSequences",
    "GreedyStep",
    "greedy_trace",
    "expand_beams",
    "BeamResult",
    "beam_search",
]
