"""Reasoning procedures on top of a language model: chain of thought, self-consistency, tree and
graph of thoughts, for the book's arithmetic task.

Book: seed-23 (CoT vs direct answers), seed-24 (CoT, self-consistency, ToT, GoT).

Every procedure works with the model as a black box that continues text, and counts its
**model calls**: one call is one sampled continuation of one prompt (a whole answer, or one
thought), so procedures can be compared at an equal budget.

* chain of thought: one sampled worked answer (``" 6 * 2 = 12. 17 + 12 = 29. The answer is
  29."``), 1 call; :func:`sample_answers`.
* self-consistency: ``N`` chains, the final answers' majority vote, ``N`` calls;
  :func:`majority_vote`, :func:`vote_accuracy` (accuracy of a vote over ``n`` of ``M`` drawn
  answers, averaged over many draws).
* tree of thoughts: a breadth-first search over *steps*. At each depth, ``branching`` candidate
  next steps (one sentence each) are sampled from the current partial solution and scored by
  a value heuristic, the step verifier :func:`lib.data.check_steps` (a process verifier that
  knows the question: 1 for a valid step, 0 otherwise; an answer sentence scores 1 when it
  repeats the last result); the best one is kept. ``branching`` calls per depth;
  :func:`tree_of_thoughts`.
* graph of thoughts: the question's expression is split into its operations (a fixed graph,
  as GoT's "graph of operations" is designed by the user); each operation is asked as its own
  one-step question ``votes`` times, the votes are merged into one result, and the result is
  substituted into the expression for the next operation. ``votes`` calls per operation;
  :func:`graph_of_thoughts`.

:func:`mcnemar_exact` is the paired test used to compare two procedures on the same questions.
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np
import torch

from lib.data import ArithProblem, check_steps, parse_answer, parse_steps


def _check_problems(problems) -> list:
    probs = list(problems)
    if not probs or not all(isinstance(p, ArithProblem) for p in probs):
        raise TypeError("problems must be a non-empty sequence of ArithProblem")
    return probs


def _check_count(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- sampling


@torch.no_grad()
def sample_continuations(
    model,
    prompts: Sequence[Sequence[int]],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    batch_size: int = 256,
) -> list[list[int]]:
    """One sampled continuation per prompt (token lists), cut after the first of ``stop_ids``.

    The prompts are left-padded and sampled in batches with :func:`lib.llm.generate.generate`
    (temperature ``temperature``); a continuation that meets no stop token keeps
    ``max_new_tokens`` tokens.
    """
    from lib.llm.generate import left_pad
    from lib.llm.generate import Temperature, generate

    _check_count(max_new_tokens, "max_new_tokens")
    stops = {int(s) for s in stop_ids}
    if not stops:
        raise ValueError("need at least one stop token id")
    out: list[list[int]] = []
    first = int(stop_ids[0])  # generation of a batch ends once every row has emitted it
    dev = next(model.parameters()).device
    procs = [Temperature(temperature)] if temperature != 1.0 else None
    for s in range(0, len(prompts), batch_size):
        chunk = [list(p) for p in prompts[s : s + batch_size]]
        ids, attn = left_pad(chunk, first)
        gen = generate(
            model,
            ids.to(dev),
            max_new_tokens,
            processors=procs,
            do_sample=True,
            eos_token_id=first,
            attention_mask=attn.to(dev),
            generator=generator,
        )
        for row in gen[:, ids.shape[1] :].tolist():
            cut = next((i for i, t in enumerate(row) if t in stops), None)
            out.append(row if cut is None else row[: cut + 1])
    return out


def sample_answers(
    model,
    tokenizer,
    problems,
    n: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
) -> list[list[str]]:
    """``n`` sampled answers (texts) to each problem's prompt: a list (problems) of lists (n)."""
    from lib.align.tasks import prompt_text

    probs = _check_problems(problems)
    _check_count(n, "n")
    prompts = [tokenizer.encode(prompt_text(p)) for p in probs for _ in range(n)]
    rows = sample_continuations(
        model, prompts, [tokenizer.eos_id], max_new_tokens, generator, temperature
    )
    texts = [tokenizer.decode(r, skip_special_tokens=True) for r in rows]
    return [texts[i * n : (i + 1) * n] for i in range(len(probs))]


# ----------------------------------------------------------------------------- self-consistency


def majority_vote(answers: Sequence[int | None]) -> int | None:
    """The most frequent answer that is not ``None`` (ties: the one seen first), else ``None``."""
    valid = [a for a in answers if a is not None]
    if not valid:
        return None
    counts = collections.Counter(valid)
    top = max(counts.values())
    return next(a for a in valid if counts[a] == top)


def vote_accuracy(
    answers, truth: Sequence[int], n: int, draws: int = 50, rng=None
) -> np.ndarray:
    """Per-question accuracy (Q,) of a majority vote over ``n`` answers drawn without replacement
    from each question's ``M`` sampled answers (``answers``: Q lists of M ints or ``None``),
    averaged over ``draws`` random draws. ``n = 1`` is the accuracy of a single chain.
    """
    rows = [list(a) for a in answers]
    if len(rows) != len(truth) or not rows:
        raise ValueError(f"need one answer list per question, got {len(rows)} and {len(truth)}")
    M = min(len(r) for r in rows)
    _check_count(n, "n")
    if n > M:
        raise ValueError(f"n ({n}) exceeds the answers per question ({M})")
    _check_count(draws, "draws")
    rng = np.random.default_rng(rng)
    acc = np.zeros(len(rows))
    for q, (row, t) in enumerate(zip(rows, truth)):
        hits = 0
        for _ in range(draws):
            pick = rng.choice(M, size=n, replace=False)
            hits += majority_vote([row[i] for i in pick]) == t
        acc[q] = hits / draws
    return acc


# ----------------------------------------------------------------------------- tree of thoughts


def step_value(problem: ArithProblem, steps_so_far: Sequence, thought: str) -> float:
    """The value heuristic of :func:`tree_of_thoughts`: 1.0 for a thought that is a valid next step
    (:func:`lib.data.check_steps`) or an answer equal to the last step's result, else 0.0."""
    new = parse_steps(thought)
    if len(new) == 1 and parse_answer(thought) is None:
        return float(check_steps(problem, list(steps_so_far) + new)[-1])
    ans = parse_answer(thought)
    if ans is not None and not new:
        last = steps_so_far[-1].result if steps_so_far else None
        return float(ans == last)
    return 0.0


def tree_of_thoughts(
    model,
    tokenizer,
    problems,
    branching: int,
    generator: torch.Generator | None = None,
    max_depth: int = 4,
    temperature: float = 1.0,
) -> tuple[list[int | None], np.ndarray, list[str]]:
    """Breadth-first tree-of-thoughts search with beam width 1 over solution steps.

    For every problem, at each depth ``branching`` next thoughts (one sentence, up to the next
    ``"."``) are sampled from the partial solution; the one with the highest
    :func:`step_value` (first on ties) is appended. An answer thought ends the search. Returns
    ``(answers, calls, solutions)``: the final answers (``None`` if none within ``max_depth``),
    the model calls per problem, and the solution texts.
    """
    from lib.align.tasks import prompt_text

    probs = _check_problems(problems)
    b = _check_count(branching, "branching")
    _check_count(max_depth, "max_depth")
    dot = tokenizer.encode(".")
    if len(dot) != 1:
        raise ValueError("the tokenizer must encode '.' as one token")
    stops = [dot[0], tokenizer.eos_id]
    texts = [""] * len(probs)
    steps: list[list] = [[] for _ in probs]
    answers: list[int | None] = [None] * len(probs)
    calls = np.zeros(len(probs), dtype=int)
    for _ in range(max_depth):
        live = [i for i, a in enumerate(answers) if a is None]
        if not live:
            break
        prompts = [
            tokenizer.encode(prompt_text(probs[i]) + texts[i]) for i in live for _ in range(b)
        ]
        rows = sample_continuations(model, prompts, stops, 12, generator, temperature)
        for j, i in enumerate(live):
            cands = [
                tokenizer.decode(r, skip_special_tokens=True) for r in rows[j * b : (j + 1) * b]
            ]
            calls[i] += b
            values = [step_value(probs[i], steps[i], c) for c in cands]
            best = cands[int(np.argmax(values))]
            texts[i] += best
            new = parse_steps(best)
            if parse_answer(best) is not None:
                answers[i] = parse_answer(best)
            elif len(new) == 1:
                steps[i].append(new[0])
    return answers, calls, texts


# ----------------------------------------------------------------------------- graph of thoughts


def first_operation(expression: str) -> tuple[str, int]:
    """The operation done first in ``expression`` (``"a op b op c"``, spaces between tokens):
    the leftmost ``*``, else the leftmost operation. Returns ``(sub_expression, token_index)``."""
    toks = expression.split()
    if len(toks) < 3 or len(toks) % 2 == 0:
        raise ValueError(f"expected 'a op b [op c ...]', got {expression!r}")
    ops = toks[1::2]
    j = ops.index("*") if "*" in ops else 0
    return " ".join(toks[2 * j : 2 * j + 3]), 2 * j


def graph_of_thoughts(
    model,
    tokenizer,
    problems,
    votes: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> tuple[list[int | None], np.ndarray]:
    """Solve each problem by a fixed graph: one node per operation, in precedence order.

    A node asks the model the one-step question of its operation (``What is a op b?``)
    ``votes`` times and merges the sampled answers by majority vote; the merged result replaces
    the operation in the expression, which feeds the next node. Returns ``(answers, calls)``
    (``None`` when a node gets no parseable answer).
    """
    probs = _check_problems(problems)
    v = _check_count(votes, "votes")
    exprs = [p.expression for p in probs]
    answers: list[int | None] = [None] * len(probs)
    calls = np.zeros(len(probs), dtype=int)
    live = list(range(len(probs)))
    while live:
        subs = [first_operation(exprs[i]) for i in live]
        node_probs = [ArithProblem.from_expression(s) for s, _ in subs]
        texts = sample_answers(model, tokenizer, node_probs, v, generator, temperature)
        nxt = []
        for i, (sub, at), t in zip(live, subs, texts):
            calls[i] += v
            merged = majority_vote([parse_answer(x) for x in t])
            toks = exprs[i].split()
            if merged is None or merged < 0:
                continue  # the node failed: no answer for this problem
            if len(toks) == 3:
                answers[i] = merged
                continue
            exprs[i] = " ".join(toks[:at] + [str(merged)] + toks[at + 3 :])
            nxt.append(i)
        live = nxt
    return answers, calls


# ----------------------------------------------------------------------------- paired comparison


def mcnemar_exact(correct_a, correct_b) -> tuple[int, int, float]:
    """Exact McNemar test of two procedures on the same questions.

    ``correct_a``, ``correct_b``: bool arrays (Q,). Returns ``(a_only, b_only, p_value)``: the
    questions only A got right, only B got right, and the two-sided binomial p-value of the
    discordant pairs under "equally good" (1.0 when there are none).
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two bool arrays of one shape (Q,), got {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    if a_only + b_only == 0:
        return 0, 0, 1.0
    return a_only, b_only, float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


__all__ = [
    "sample_continuations",
    "sample_answers",
    "majority_vote",
    "vote_accuracy",
    "step_value",
    "tree_of_thoughts",
    "first_operation",
    "graph_of_thoughts",
    "mcnemar_exact",
]
