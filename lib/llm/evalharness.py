"""A small benchmark harness: multiple-choice items scored by option log-likelihood, accuracy
with confidence intervals, and the unbiased pass@k estimator.

Everything a benchmark report such as MMLU or HumanEval rests on, at the tiny LM's scale:

* **Items** (:func:`arithmetic_mc_items`): each of the book's arithmetic questions becomes a
  four-option item. The three distractors are *near misses* generated deterministically from
  the item's seed (off by one or two, off by ten, or another operation on the same operands),
  and the correct option's position is drawn uniformly, so guessing scores 25 % on average.
* **Prompt formats** (:func:`format_item`): ``"mmlu"`` lists the lettered options under a
  subject header and asks for the letter (continuations ``" A"`` ... ``" D"``), the layout of
  MMLU; ``"cloze"`` shows only the question in the corpus's own format, up to the item's
  *stem* (``"Q: What is 14 + 19?\nA: 14 + 19 ="``), and scores each option's *text* as the
  continuation (``" 33."``).
* **Scoring** (:func:`score_items`): the log-likelihood of every continuation given its
  context, summed over the continuation's tokens; the prediction is the option with the
  highest sum (``acc``) or the highest mean per token (``acc_norm``). Pure forward passes in
  eval mode: a rerun gives identical scores.
* **Intervals**: :func:`wilson_interval` for an accuracy (a share of independent items) and
  :func:`bootstrap_interval` (resampling items) as a cross-check.
* **pass@k** (:func:`pass_at_k`): from ``n`` samples per problem of which ``c`` are correct,
  the probability that ``k`` samples drawn without replacement contain a correct one,
  ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021), computed as a stable product. It equals the
  average over all ``k``-subsets of the samples (:func:`pass_at_k_enumerate`, brute force);
  the plug-in ``1 - (1 - c/n)^k`` is biased (:func:`pass_at_k_plugin`).

Book: seed-110.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np
import torch

#: Letters of the options, in order.
LETTERS = ("A", "B", "C", "D")
STYLES = ("mmlu", "cloze")


# ----------------------------------------------------------------------------- items
@dataclasses.dataclass(frozen=True)
class MCItem:
    """One multiple-choice item: ``options[answer]`` is right."""

    question: str            # e.g. "What is 14 + 19?"
    options: tuple           # four option texts, e.g. ("33", "32", "43", "23")
    answer: int              # index of the right option
    subject: str             # e.g. "arithmetic"
    stem: str = ""           # cloze format: text after "A:" that the option completes

    def __post_init__(self):
        if len(self.options) != len(LETTERS) or len(set(self.options)) != len(LETTERS):
            raise ValueError(f"an item needs {len(LETTERS)} distinct options, got "
                             f"{self.options!r}")
        if isinstance(self.answer, bool) or not isinstance(self.answer, int) \
                or not 0 <= self.answer < len(LETTERS):
            raise ValueError(f"answer must be an option index in [0, {len(LETTERS) - 1}], "
                             f"got {self.answer!r}")


def near_miss_distractors(problem, rng: np.random.Generator, n: int = 3) -> list[int]:
    """``n`` distinct wrong answers near ``problem.answer`` (an :class:`~lib.data.ArithProblem`).

    Candidates: the answer off by 1, 2 or 10 either way, and the other operations (``+``,
    ``-``, ``*``) applied to the operands of the problem's last step; negatives and the right
    answer are excluded. ``n`` of them are drawn without replacement by ``rng``.
    """
    a = int(problem.answer)
    last = problem.steps[-1]
    cands = {a + d for d in (-10, -2, -1, 1, 2, 10)}
    cands |= {last.a + last.b, last.a - last.b, last.a * last.b}
    cands = sorted(c for c in cands if c >= 0 and c != a)
    if len(cands) < n:
        raise ValueError(f"only {len(cands)} distractors for {problem.expression!r}, need {n}")
    return [int(c) for c in rng.choice(cands, size=n, replace=False)]


def arithmetic_mc_items(problems, seed: int = 0, subject: str = "arithmetic") -> list[MCItem]:
    """Four-option items from arithmetic problems, deterministic in ``seed``.

    Item ``i`` uses the generator ``np.random.default_rng([seed, i])`` for its distractors and
    for the position of the right answer (uniform over the four places). The cloze stem is the
    corpus's own lead-in to the number: ``"14 + 19 ="`` for a one-step problem (a fact), ``"The
    answer is"`` for a longer one (the direct answer, without the worked steps).
    """
    problems = list(problems)
    if not problems:
        raise ValueError("need at least one problem")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    items = []
    for i, p in enumerate(problems):
        rng = np.random.default_rng([int(seed), i])
        wrong = near_miss_distractors(p, rng)
        pos = int(rng.integers(len(LETTERS)))
        opts = wrong[:pos] + [int(p.answer)] + wrong[pos:]
        stem = f"{p.expression} =" if p.n_steps == 1 else "The answer is"
        items.append(MCItem(p.question, tuple(str(o) for o in opts), pos, subject, stem))
    return items


# ----------------------------------------------------------------------------- prompts
def format_item(item: MCItem, style: str = "cloze") -> tuple[str, list[str]]:
    """The context and the four continuations whose log-likelihoods are compared.

    ``"mmlu"``::

        The following are multiple choice questions about arithmetic.

        What is 14 + 19?
        A. 33
        B. 32
        C. 43
        D. 23
        Answer:                     continuations " A", " B", " C", " D"

    ``"cloze"``: ``"Q: What is 14 + 19?\\nA: 14 + 19 ="`` (the question in the corpus's
    format, then the item's ``stem``) with continuations ``" 33."`` etc. (the options are not
    shown).
    """
    if not isinstance(item, MCItem):
        raise TypeError(f"item must be an MCItem, got {type(item).__name__}")
    if style == "mmlu":
        lines = [f"The following are multiple choice questions about {item.subject}.", "",
                 item.question]
        lines += [f"{letter}. {opt}" for letter, opt in zip(LETTERS, item.options)]
        lines.append("Answer:")
        return "\n".join(lines), [f" {letter}" for letter in LETTERS]
    if style == "cloze":
        stem = f" {item.stem}" if item.stem else ""
        return f"Q: {item.question}\nA:{stem}", [f" {opt}." for opt in item.options]
    raise ValueError(f"style must be one of {STYLES}, got {style!r}")


# ----------------------------------------------------------------------------- scoring
@torch.no_grad()
def continuation_logprobs(model, contexts: Sequence[Sequence[int]],
                          continuations: Sequence[Sequence[int]], batch_size: int = 128
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probability of each continuation given its context, and its token count.

    ``contexts[i] + continuations[i]`` is one sequence; the sequences are right-padded (the
    model is causal, so padding after a sequence does not change its logits) and run in
    batches. Returns ``(logprob (N,), n_tokens (N,))``.
    """
    if len(contexts) != len(continuations) or not len(contexts):
        raise ValueError(f"need as many contexts as continuations (and at least one), got "
                         f"{len(contexts)} and {len(continuations)}")
    if any(len(c) == 0 for c in contexts) or any(len(c) == 0 for c in continuations):
        raise ValueError("every context and every continuation needs at least one token")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    seqs = [list(a) + list(b) for a, b in zip(contexts, continuations)]
    out_lp = np.zeros(len(seqs))
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s:s + batch_size]
        T = max(len(q) for q in chunk)
        ids = torch.zeros((len(chunk), T), dtype=torch.long)
        score = torch.zeros((len(chunk), T), dtype=torch.bool)
        for i, q in enumerate(chunk):
            ids[i, :len(q)] = torch.as_tensor(q)
            score[i, len(contexts[s + i]):len(q)] = True
        logp = torch.log_softmax(model(ids.to(dev)).logits[:, :-1].float(), -1)
        tok_lp = logp.gather(-1, ids[:, 1:, None].to(dev))[..., 0].cpu()
        out_lp[s:s + len(chunk)] = (tok_lp * score[:, 1:]).sum(1).double().numpy()
    model.train(was)
    return out_lp, np.array([len(c) for c in continuations])


@dataclasses.dataclass
class MCResult:
    """Scores of a model on a list of items in one prompt format."""

    style: str
    logprobs: np.ndarray     # (items, 4) summed log-likelihood of each option's continuation
    n_tokens: np.ndarray     # (items, 4) tokens of each continuation
    answers: np.ndarray      # (items,) index of the right option

    @property
    def predictions(self) -> np.ndarray:
        """The option with the highest summed log-likelihood (ties: the first)."""
        return self.logprobs.argmax(1)

    @property
    def predictions_norm(self) -> np.ndarray:
        """The option with the highest log-likelihood per token."""
        return (self.logprobs / self.n_tokens).argmax(1)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.answers

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def accuracy_norm(self) -> float:
        return float((self.predictions_norm == self.answers).mean())


def score_items(model, tokenizer, items: Sequence[MCItem], style: str = "cloze",
                batch_size: int = 128) -> MCResult:
    """Score every option of every item by its continuation's log-likelihood
    (:func:`format_item`, :func:`continuation_logprobs`)."""
    items = list(items)
    if not items:
        raise ValueError("need at least one item")
    ctx, cont = [], []
    for it in items:
        c, conts = format_item(it, style)
        c_ids = tokenizer.encode(c)
        for k in conts:
            ctx.append(c_ids)
            cont.append(tokenizer.encode(k))
    n = len(LETTERS)
    if all(len(c) == 1 for c in cont):  # e.g. the letters: one forward per item is enough
        lp = _next_token_logprobs(model, ctx[::n], [cont[i:i + n] for i in range(0, len(cont), n)],
                                  batch_size)
        nt = np.ones(len(cont), dtype=int)
    else:
        lp, nt = continuation_logprobs(model, ctx, cont, batch_size)
    return MCResult(style, lp.reshape(-1, n), nt.reshape(-1, n),
                    np.array([it.answer for it in items]))


@torch.no_grad()
def _next_token_logprobs(model, contexts, options, batch_size: int) -> np.ndarray:
    """log p(option token | context) for single-token options: one forward per context
    (the same numbers as :func:`continuation_logprobs`, in a quarter of the work)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for s in range(0, len(contexts), batch_size):
        chunk = contexts[s:s + batch_size]
        T = max(len(c) for c in chunk)
        ids = torch.zeros((len(chunk), T), dtype=torch.long)
        for i, c in enumerate(chunk):
            ids[i, :len(c)] = torch.as_tensor(list(c))
        logits = model(ids.to(dev)).logits.float()
        last = torch.tensor([len(c) - 1 for c in chunk], device=dev)
        logp = torch.log_softmax(logits[torch.arange(len(chunk), device=dev), last], -1)
        want = torch.tensor([[o[0] for o in opts] for opts in options[s:s + batch_size]],
                            device=dev)
        out.append(logp.gather(1, want).double().cpu().numpy())
    model.train(was)
    return np.concatenate(out).reshape(-1)


# ----------------------------------------------------------------------------- intervals
def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n``.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``z`` the two-sided
    normal quantile of ``level``; it stays inside [0, 1] and is sensible at 0 or n successes.
    """
    from scipy.stats import norm

    for name, v in (("successes", successes), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need n >= 1 and 0 <= successes <= n, got {successes} of {n}")
    if isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    z = float(norm.ppf((1 + level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(correct, level: float = 0.95, n_boot: int = 2000, seed: int = 0
                       ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (items resampled with
    replacement ``n_boot`` times, generator seeded by ``seed``)."""
    x = np.asarray(correct, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"correct must be 1-D with at least 2 entries, got shape {x.shape}")
    if not 0 < level < 1 or n_boot < 100:
        raise ValueError(f"need level in (0, 1) and n_boot >= 100, got {level}, {n_boot}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(1)
    return (float(np.quantile(means, (1 - level) / 2)),
            float(np.quantile(means, (1 + level) / 2)))


# ----------------------------------------------------------------------------- pass@k
def _check_nck(n, c, k):
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {v!r}")
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need n >= 1, 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: ``1 - C(n-c, k) / C(n, k)``.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k / i)`` (no large binomials); 1 when fewer
    than ``k`` samples are wrong.
    """
    _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_enumerate(hits, k: int) -> float:
    """pass@k by brute force: the share of all ``k``-subsets of the samples ``hits`` (a 1-D
    bool sequence) that contain at least one correct sample."""
    h = np.asarray(hits)
    if h.ndim != 1 or h.size < 1 or h.dtype != bool:
        raise ValueError(f"hits must be a non-empty 1-D bool array, got {h.dtype} {h.shape}")
    _check_nck(h.size, int(h.sum()), k)
    subsets = list(itertools.combinations(range(h.size), k))
    return float(np.mean([h[list(s)].any() for s in subsets]))


def pass_at_k_plugin(n: int, c: int, k: int) -> float:
    """The plug-in estimate ``1 - (1 - c/n)^k`` (sampling *with* replacement from the ``n``
    samples): biased low for ``k > 1``."""
    _check_nck(n, c, k)
    return float(1.0 - (1.0 - c / n) ** k)


def mean_pass_at_k(hits, k: int) -> float:
    """pass@k of a benchmark: :func:`pass_at_k` averaged over problems; ``hits`` is a bool
    array (problems, n samples)."""
    h = np.asarray(hits)
    if h.ndim != 2 or h.dtype != bool or h.size == 0:
        raise ValueError(f"hits must be a non-empty 2-D bool array (problems, samples), got "
                         f"{h.dtype} {h.shape}")
    n = h.shape[1]
    return float(np.mean([pass_at_k(n, int(c), k) for c in h.sum(1)]))


__all__ = ["LETTERS", "STYLES", "MCItem", "near_miss_distractors", "arithmetic_mc_items",
           "format_item", "continuation_logprobs", "MCResult", "score_items", "wilson_interval",
           "bootstrap_interval", "pass_at_k", "pass_at_k_enumerate", "pass_at_k_plugin",
           "mean_pass_at_k"]
