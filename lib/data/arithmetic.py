"""The book's arithmetic task: multi-step problems whose every step can be checked.

A problem such as ``What is 3 + 4 * 2 - 5?`` has a direct answer (``The answer is 6.``) and a
step-by-step answer (``4 * 2 = 8. 3 + 8 = 11. 11 - 5 = 6. The answer is 6.``) that follows
precedence left to right. :func:`arithmetic_facts` lists all 674 one-step problems with small
operands; :func:`fact_chain_problems` draws multi-step problems made only of such facts (the
GRPO section's task). The verifiers that check answers and steps are in :mod:`lib.data.verify`.

Book: seed-8 (the pretraining corpus), seed-23 (chain of thought), seed-72 (GRPO's task).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Sequence

import numpy as np

from .common import as_rng, check_count


OPS = ("+", "-", "*")
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_PREC = {"+": 1, "-": 1, "*": 2}


@dataclasses.dataclass(frozen=True)
class Step:
    """One step ``a op b = result`` of a step-by-step solution (``result`` as written)."""

    a: int
    op: str
    b: int
    result: int

    @property
    def correct_arithmetic(self) -> bool:
        return APPLY[self.op](self.a, self.b) == self.result

    def __str__(self) -> str:
        return f"{self.a} {self.op} {self.b} = {self.result}"


def tokenize_expression(expression: str) -> list:
    """``"3 + 4 * 2"`` -> ``[3, '+', 4, '*', 2]``; raises ValueError on anything else."""
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a str, got {type(expression).__name__}")
    parts = re.findall(r"\d+|[+\-*]|\S", expression)
    if not parts or len(parts) % 2 == 0:
        raise ValueError(f"not an expression of non-negative integers and + - *: {expression!r}")
    out: list = []
    for i, p in enumerate(parts):
        if i % 2 == 0:
            if not p.isdigit():
                raise ValueError(f"expected a number at position {i} of {expression!r}, got {p!r}")
            out.append(int(p))
        else:
            if p not in OPS:
                raise ValueError(f"expected one of + - * at position {i} of {expression!r}, got {p!r}")
            out.append(p)
    return out


def evaluate_tokens(tokens: Sequence) -> int:
    # standard precedence: * first, then + and - from left to right
    vals, ops = [tokens[0]], []
    for op, v in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            vals[-1] = vals[-1] * v
        else:
            ops.append(op)
            vals.append(v)
    total = vals[0]
    for op, v in zip(ops, vals[1:]):
        total = total + v if op == "+" else total - v
    return total


def evaluate_expression(expression: str) -> int:
    """Value of an expression of non-negative integers with ``+ - *`` (usual precedence).

    A small safe evaluator (no ``eval``): ``evaluate_expression("3 + 4 * 2 - 5") == 6``.
    """
    return evaluate_tokens(tokenize_expression(expression))


def _canonical_steps(tokens: list) -> list[Step]:
    """The book's order: leftmost ``*`` first, then ``+``/``-`` left to right."""
    toks = list(tokens)
    steps = []
    while len(toks) > 1:
        ops = toks[1::2]
        j = ops.index("*") if "*" in ops else 0
        i = 2 * j
        a, op, b = toks[i], toks[i + 1], toks[i + 2]
        r = APPLY[op](a, b)
        steps.append(Step(a, op, b, r))
        toks[i:i + 3] = [r]
    return steps


@dataclasses.dataclass(frozen=True)
class ArithProblem:
    """A multi-step arithmetic problem with its canonical step-by-step solution."""

    expression: str
    answer: int
    steps: tuple[Step, ...]

    @classmethod
    def from_expression(cls, expression: str) -> "ArithProblem":
        toks = tokenize_expression(expression)
        return cls(" ".join(str(t) for t in toks), evaluate_tokens(toks), tuple(_canonical_steps(toks)))

    @property
    def question(self) -> str:
        return f"What is {self.expression}?"

    @property
    def direct_answer(self) -> str:
        return f"The answer is {self.answer}."

    @property
    def cot_answer(self) -> str:
        """Step-by-step answer: one ``a op b = c.`` sentence per operation, then the answer."""
        return " ".join(f"{s}." for s in self.steps) + f" The answer is {self.answer}."

    @property
    def n_steps(self) -> int:
        return len(self.steps)


def _random_problem(rng: np.random.Generator, n_ops: int, max_value: int = 999) -> ArithProblem:
    while True:
        ops = [OPS[int(k)] for k in rng.choice(3, size=n_ops, p=[0.4, 0.3, 0.3])]
        nums = []
        for i in range(n_ops + 1):
            near_mul = (i > 0 and ops[i - 1] == "*") or (i < n_ops and ops[i] == "*")
            nums.append(int(rng.integers(2, 10)) if near_mul else int(rng.integers(1, 21)))
        toks: list = [nums[0]]
        for op, v in zip(ops, nums[1:]):
            toks += [op, v]
        prob = ArithProblem.from_expression(" ".join(map(str, toks)))
        if all(0 <= s.result <= max_value for s in prob.steps):
            return prob


def arithmetic_problems(n: int, seed=0, min_ops: int = 1, max_ops: int = 3,
                        exclude: Iterable[str] = ()) -> list[ArithProblem]:
    """``n`` distinct random problems with ``min_ops..max_ops`` operations (operands 1–20,
    2–9 next to ``*``; every intermediate value in ``[0, 999]``).

    ``exclude``: expressions that must not be generated (e.g. the training set's).
    """
    n = check_count(n)
    rng = as_rng(seed)
    if not (1 <= min_ops <= max_ops <= 6):
        raise ValueError(f"need 1 <= min_ops <= max_ops <= 6, got {min_ops}, {max_ops}")
    seen = set(exclude)
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not generate {n} distinct problems; ask for fewer")
        k = int(rng.integers(min_ops, max_ops + 1))
        p = _random_problem(rng, k)
        if p.expression in seen:
            continue
        seen.add(p.expression)
        out.append(p)
    return out


def arithmetic_facts() -> list[ArithProblem]:
    """Every one-operation problem :func:`arithmetic_problems` can produce, in a fixed order: the *facts*.

    ``a + b`` and ``a - b`` with operands 1–20 (``a >= b`` for ``-``, so results are never negative) and
    ``a * b`` with operands 2–9: 400 + 210 + 64 = 674 problems.
    """
    out = [ArithProblem.from_expression(f"{a} + {b}") for a in range(1, 21) for b in range(1, 21)]
    out += [ArithProblem.from_expression(f"{a} - {b}") for a in range(1, 21) for b in range(1, a + 1)]
    out += [ArithProblem.from_expression(f"{a} * {b}") for a in range(2, 10) for b in range(2, 10)]
    return out


def as_problem(problem) -> ArithProblem:
    """An :class:`ArithProblem` from itself or from its expression string."""
    if isinstance(problem, ArithProblem):
        return problem
    if isinstance(problem, str):
        return ArithProblem.from_expression(problem)
    raise TypeError(f"problem must be an ArithProblem or an expression string, got {type(problem).__name__}")


def is_fact_chain(problem) -> bool:
    """True when every step of ``problem``'s canonical solution is one of :func:`arithmetic_facts`.

    Such a problem needs no arithmetic beyond the facts: solving it is a matter of *chaining* them in the
    right order (precedence) and carrying each intermediate result forward.
    """
    prob = as_problem(problem)
    return all(_is_fact(s) for s in prob.steps)


def _is_fact(s: Step) -> bool:
    if s.op == "*":
        return 2 <= s.a <= 9 and 2 <= s.b <= 9
    return 1 <= s.a <= 20 and 1 <= s.b <= 20 and (s.op == "+" or s.a >= s.b)


def fact_chain_problems(n: int, seed=0, n_ops: int = 2, exclude: Iterable[str] = ()) -> list[ArithProblem]:
    """``n`` distinct problems with exactly ``n_ops`` operations whose every step is a fact (:func:`is_fact_chain`).

    Drawn from the same generator as :func:`arithmetic_problems`; ``exclude``: expressions not to generate.
    """
    n = check_count(n)
    if isinstance(n_ops, bool) or not isinstance(n_ops, (int, np.integer)) or not 2 <= n_ops <= 6:
        raise ValueError(f"n_ops must be an int in [2, 6], got {n_ops!r}")
    rng = as_rng(seed)
    seen = set(exclude)
    out: list[ArithProblem] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 1000:
            raise ValueError(f"could not generate {n} distinct fact-chain problems with {n_ops} operations; "
                             "ask for fewer")
        p = _random_problem(rng, int(n_ops))
        if p.expression in seen or not is_fact_chain(p):
            continue
        seen.add(p.expression)
        out.append(p)
    return out


__all__ = ["OPS", "APPLY", "Step", "tokenize_expression", "evaluate_tokens", "evaluate_expression",
           "ArithProblem", "as_problem", "arithmetic_problems", "arithmetic_facts", "is_fact_chain",
           "fact_chain_problems"]
