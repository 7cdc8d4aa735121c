"""Verifiers for the arithmetic task: parse a model's text, check each step, judge the answer.

:func:`parse_steps` and :func:`parse_answer` read text; :func:`check_steps` labels each step
(a process-level verifier), :func:`first_error` finds the first wrong one, and
:func:`verify_answer` judges the final answer (an outcome verifier). Later chapters build their
rewards, reward models and process reward models on these.

Book: seed-24 (self-consistency), seed-28, seed-32, seed-72 (GRPO's reward).
"""
from __future__ import annotations

import re

from .arithmetic import APPLY, Step, as_problem, evaluate_tokens, tokenize_expression

_STEP_RE = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)")
_ANSWER_RE = re.compile(r"answer is\s*(-?\d+)", re.IGNORECASE)


def parse_steps(text: str) -> list[Step]:
    """All ``a op b = c`` steps written in ``text`` (a model's output), in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [Step(int(a), op, int(b), int(c)) for a, op, b, c in _STEP_RE.findall(text)]


def parse_answer(text: str) -> int | None:
    """The number after the last ``answer is`` in ``text``, or ``None`` when there is none."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    found = _ANSWER_RE.findall(text)
    return int(found[-1]) if found else None


def check_steps(problem, solution) -> list[bool]:
    """Label each step of ``solution`` as valid (``True``) or not — a process-level verifier.

    ``problem``: an :class:`ArithProblem` or its expression; ``solution``: a model's output text
    or a list of :class:`Step`. Walking through the expression, a step ``a op b = c`` is valid
    when (1) ``a op b`` really equals ``c`` and (2) ``a op b`` occurs as adjacent operands in the
    current expression and replacing it by its value keeps the expression's value (so the step
    respects precedence: in ``3 + 4 * 2`` the step ``3 + 4 = 7`` is invalid). After a step that
    names adjacent operands, the expression is rewritten with the *written* result, so later
    steps are judged on their own given what came before (use :func:`first_error` for the
    strict "everything after the first mistake is wrong" labels).
    """
    prob = as_problem(problem)
    steps = parse_steps(solution) if isinstance(solution, str) else list(solution)
    if not all(isinstance(s, Step) for s in steps):
        raise TypeError("solution must be a str or a list of Step")
    toks = tokenize_expression(prob.expression)
    labels = []
    for s in steps:
        target = evaluate_tokens(toks)
        where = None
        for i in range(0, len(toks) - 2, 2):
            if toks[i] == s.a and toks[i + 1] == s.op and toks[i + 2] == s.b:
                true = APPLY[s.op](s.a, s.b)
                if evaluate_tokens(toks[:i] + [true] + toks[i + 3:]) == target:
                    where = i
                    break
        labels.append(where is not None and s.correct_arithmetic)
        if where is not None:
            toks = toks[:where] + [s.result] + toks[where + 3:]
    return labels


def first_error(problem, solution) -> int | None:
    """Index of the first invalid step of ``solution`` (see :func:`check_steps`), else ``None``."""
    labels = check_steps(problem, solution)
    return next((i for i, ok in enumerate(labels) if not ok), None)


def verify_answer(problem, solution, require_steps: bool = False) -> bool:
    """Outcome verifier: does the final answer in ``solution`` equal the problem's value?

    With ``require_steps=True`` the solution must also contain exactly the problem's number of
    steps, all valid (:func:`check_steps`), so that a lucky final number does not pass.
    """
    prob = as_problem(problem)
    if not isinstance(solution, str):
        raise TypeError(f"solution must be a str, got {type(solution).__name__}")
    ok = parse_answer(solution) == prob.answer
    if ok and require_steps:
        labels = check_steps(prob, solution)
        ok = len(labels) == prob.n_steps and all(labels)
    return ok


__all__ = ["parse_steps", "parse_answer", "check_steps", "first_error", "verify_answer"]
