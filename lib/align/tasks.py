"""Verifiable-reward tasks for fine-tuning the book's tiny LM.

**Fact chaining** (:func:`chain_arithmetic_task`). The *facts* are the 674 one-step problems of the corpus
(``14 + 19``, ``7 * 8``, … :func:`lib.data.arithmetic_facts`). The *questions* are two-step problems whose both steps
are facts (``17 + 6 * 2``: ``6 * 2 = 12. 17 + 12 = 29. The answer is 29.``), so answering needs no new arithmetic,
only chaining: pick the step precedence demands, carry its result forward, stop with ``The answer is …``.
The reward is the outcome verifier :func:`lib.data.verify_answer` (1 if the final number is right).

The two-step questions are split into disjoint sets from one seed:

* ``cold_start`` — a few worked solutions, used for supervised fine-tuning together with all facts;
* ``rl_train`` — questions only: reinforcement learning sees the reward, never a solution;
* ``held_out`` — never trained on; every reported accuracy is measured here.

Prompts use the corpus's format ``Q: What is 17 + 6 * 2?\\nA:``; completions ``" " + cot_answer`` and EOS.

Book: seed-26, seed-28, seed-30, seed-31, seed-32, seed-72.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from lib.data import (ArithProblem, arithmetic_facts, check_steps, fact_chain_problems, parse_answer, parse_steps,
                      verify_answer)

TASK_SEED = 7


def prompt_text(problem: ArithProblem) -> str:
    """The question in the corpus's format: ``Q: What is <expression>?\\nA:``."""
    if not isinstance(problem, ArithProblem):
        raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
    return f"Q: {problem.question}\nA:"


def completion_text(problem: ArithProblem, steps: bool = True) -> str:
    """The solution that follows the prompt: ``" " + problem.cot_answer`` (worked steps), or with
    ``steps=False`` the bare ``" " + problem.direct_answer`` (``The answer is 29.``) of the direct-answer twin."""
    if not isinstance(problem, ArithProblem):
        raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
    return " " + (problem.cot_answer if steps else problem.direct_answer)


def reward(problem: ArithProblem, text: str) -> float:
    """The verifiable reward: 1.0 when the final answer in ``text`` is right, else 0.0."""
    return float(verify_answer(problem, text))


#: What :func:`error_kind` calls an answer, from right to the ways it goes wrong.
ERROR_KINDS = ("correct", "fact wrong", "wrong operands", "answer not last result", "malformed")


def error_kind(problem: ArithProblem, text: str) -> str:
    """Classify an answer to ``problem`` (one of :data:`ERROR_KINDS`) by its first faulty step.

    ``"correct"``: the verifier accepts it. ``"malformed"``: no final answer or a different number of steps than the
    problem needs. At the first step that :func:`lib.data.check_steps` rejects: ``"fact wrong"`` when the written
    equation ``a op b = c`` is false, ``"wrong operands"`` when it is true but not the step the problem needs (wrong
    precedence, a miscopied number, an intermediate result not carried forward). ``"answer not last result"``:
    every step is right but the final answer differs.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if verify_answer(problem, text):
        return "correct"
    steps = parse_steps(text)
    if parse_answer(text) is None or len(steps) != problem.n_steps:
        return "malformed"
    for step, ok in zip(steps, check_steps(problem, steps)):
        if not ok:
            return "wrong operands" if step.correct_arithmetic else "fact wrong"
    return "answer not last result"


@dataclasses.dataclass(frozen=True)
class ChainArithmetic:
    """The fact-chaining task: ``facts`` plus disjoint two-step splits ``cold_start``, ``rl_train``, ``held_out``."""

    facts: tuple[ArithProblem, ...]
    cold_start: tuple[ArithProblem, ...]
    rl_train: tuple[ArithProblem, ...]
    held_out: tuple[ArithProblem, ...]
    seed: int

    def split(self, name: str) -> tuple[ArithProblem, ...]:
        if name not in ("facts", "cold_start", "rl_train", "held_out"):
            raise ValueError(f"unknown split {name!r}; choose facts, cold_start, rl_train or held_out")
        return getattr(self, name)

    def describe(self) -> dict:
        """Sizes and a fingerprint of each split (recorded in checkpoints trained on the task)."""
        out = {"builder": "lib.align.tasks.chain_arithmetic_task", "seed": self.seed}
        for name in ("facts", "cold_start", "rl_train", "held_out"):
            probs = self.split(name)
            h = hashlib.sha256("\n".join(p.expression for p in probs).encode()).hexdigest()[:16]
            out[name] = {"n": len(probs), "sha256_16": h}
        return out


def chain_arithmetic_task(seed: int = TASK_SEED, n_cold_start: int = 100, n_rl_train: int = 1000,
                          n_held_out: int = 200) -> ChainArithmetic:
    """The fact-chaining task (module docstring); the defaults are the book's splits."""
    for name, n in (("n_cold_start", n_cold_start), ("n_rl_train", n_rl_train), ("n_held_out", n_held_out)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    probs = fact_chain_problems(n_held_out + n_cold_start + n_rl_train, seed=seed, n_ops=2)
    held = tuple(probs[:n_held_out])
    cold = tuple(probs[n_held_out:n_held_out + n_cold_start])
    rl = tuple(probs[n_held_out + n_cold_start:])
    return ChainArithmetic(tuple(arithmetic_facts()), cold, rl, held, int(seed))


def encode_prompts(tokenizer, problems) -> list[list[int]]:
    """Token ids of each problem's prompt."""
    return [tokenizer.encode(prompt_text(p)) for p in problems]


def sft_examples(tokenizer, problems, steps: bool = True) -> list[tuple[list[int], list[int]]]:
    """``(prompt_ids, completion_ids + [eos])`` pairs for :func:`lib.align.sft.sft_train` (``steps``: see
    :func:`completion_text`)."""
    return [(tokenizer.encode(prompt_text(p)), tokenizer.encode(completion_text(p, steps)) + [tokenizer.eos_id])
            for p in problems]


def evaluate_task(model, tokenizer, task: ChainArithmetic, samples: int = 8, max_new_tokens: int = 32,
                  seed: int = 123, return_hits: bool = False) -> dict:
    """Accuracy on the held-out questions and on the facts: greedy, and sampled at temperature 1.

    Held-out: one greedy answer and ``samples`` sampled answers per question. Facts: greedy and 2 samples each.
    Returns ``{"held_out": {"greedy", "sampled"}, "facts": {"greedy", "sampled"}}`` (shares in [0, 1]); with
    ``return_hits=True`` also ``"hits"``: the held-out bool array (questions, samples) for intervals and pass@k.
    """
    from lib.llm.generate import greedy_accuracy, sampled_hits

    if not isinstance(task, ChainArithmetic):
        raise TypeError(f"task must be a ChainArithmetic, got {type(task).__name__}")
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    out: dict = {}
    for name, k in (("held_out", samples), ("facts", 2)):
        probs = task.split(name)
        ids = encode_prompts(tokenizer, probs)
        check = lambda i, c, probs=probs: verify_answer(probs[i], decode(c))  # noqa: E731
        g = greedy_accuracy(model, ids, check, tokenizer.eos_id, max_new_tokens)
        hits = sampled_hits(model, ids, check, tokenizer.eos_id, k, max_new_tokens, seed=seed)
        out[name] = {"greedy": float(g), "sampled": float(hits.mean())}
        if name == "held_out" and return_hits:
            out["hits"] = hits
    return out



def error_breakdown(model, tokenizer, problems, samples: int = 4, max_new_tokens: int = 32, seed: int = 321,
                    batch_size: int = 32) -> dict[str, float]:
    """Share of sampled answers (temperature 1, ``samples`` per problem) in each of :data:`ERROR_KINDS`."""
    from lib.llm.generate import sample_groups
    import torch

    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    counts = dict.fromkeys(ERROR_KINDS, 0)
    ids = encode_prompts(tokenizer, probs)
    with torch.no_grad():
        for s in range(0, len(probs), batch_size):
            out, _, _, n = sample_groups(model, ids[s:s + batch_size], samples, max_new_tokens, tokenizer.eos_id,
                                         generator=gen)
            for k, row in enumerate(out[:, n:].tolist()):
                counts[error_kind(probs[s + k // samples], tokenizer.decode(row, skip_special_tokens=True))] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def paired_gain(hits_before, hits_after) -> tuple[float, float]:
    """Mean per-question gain in sampled accuracy and its paired z statistic.

    ``hits_before``, ``hits_after``: bool arrays (questions, samples) on the *same* questions (e.g. the
    ``"hits"`` of :func:`evaluate_task`). Questions are the independent units: ``z = mean(d) / (std(d) / sqrt(n))``
    with ``d`` the per-question difference of accuracies (sample std, ``ddof=1``).
    """
    b, a = np.asarray(hits_before, dtype=float), np.asarray(hits_after, dtype=float)
    if b.ndim != 2 or a.shape[0] != b.shape[0] or a.ndim != 2 or b.shape[0] < 2:
        raise ValueError(f"need two (questions >= 2, samples) arrays over the same questions, got {b.shape} "
                         f"and {a.shape}")
    d = a.mean(1) - b.mean(1)
    se = d.std(ddof=1) / np.sqrt(len(d))
    if se == 0:  # every question changed by the same amount: no spread to compare against
        return float(d.mean()), 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    return float(d.mean()), float(d.mean() / se)


__all__ = ["TASK_SEED", "prompt_text", "completion_text", "reward", "ERROR_KINDS", "error_kind", "ChainArithmetic",
           "chain_arithmetic_task", "encode_prompts", "sft_examples", "evaluate_task", "error_breakdown", "paired_gain"]
