"""Auto-checkers for the book's exercises.

The pattern: a reader writes a function in a notebook cell and calls a checker, e.g.
``check_discounted_returns(my_returns)``. The checker calls the reader's function and the
vetted ``lib`` implementation on the same random inputs and returns a :class:`CheckReport`
that says what differs (expected vs got, on which input) instead of raising a traceback.
The report is truthy when the reader's function passed, so solutions end with
``assert check_x(solution)``.

Checkers for each part of the book live in sub-modules (``lib.exercises.rl_basics`` …);
this module holds the shared machinery and the checkers of Part 1.
"""
from __future__ import annotations

import dataclasses
import traceback
from typing import Any, Callable

import numpy as np


@dataclasses.dataclass
class CheckReport:
    """Outcome of an exercise check; truthy when the reader's function passed.

    ``attempted`` is False while the reader's function is still the stub (it raises
    ``NotImplementedError``): the report then says "not attempted yet" instead of listing a
    failure. The report shows itself once (as Markdown in Jupyter and the book, as text
    elsewhere); the checkers never print it.
    """

    name: str
    passed: bool
    trials: int
    message: str
    failing_input: dict | None = None
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed

    @property
    def mark(self) -> str:
        if not self.attempted:
            return "NOT ATTEMPTED YET"
        return "PASSED" if self.passed else "NOT YET"

    def __str__(self) -> str:
        return f"[{self.mark}] {self.name}: {self.message}"

    def _repr_markdown_(self) -> str:  # pragma: no cover - display only
        icon = "✏️" if not self.attempted else ("✅" if self.passed else "❌")
        return f"{icon} **{self.name}** — {self.message}"

    def __repr__(self) -> str:
        return str(self)


def _to_array(x) -> np.ndarray | Any:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return np.asarray(x)
    return x


def _numeric_array(x) -> np.ndarray | None:
    """``x`` as a numeric array when it is an array-like of numbers (nested lists and tuples,
    empty ones included), else ``None``."""
    x = _to_array(x)
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):      # ragged or mixed: not one array
            return None
        if arr.size == 0 or np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            return arr.astype(float) if arr.size == 0 else arr
    return None


def _short(x, limit: int = 160) -> str:
    arr = _to_array(x)
    if isinstance(arr, np.ndarray):
        with np.printoptions(precision=4, suppress=True, threshold=12, edgeitems=3):
            text = np.array2string(arr, separator=", ")
        text = f"{text} (shape {arr.shape})" if arr.ndim > 0 else text
    else:
        text = repr(arr)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compare(expected, got, rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    """``None`` when ``got`` matches ``expected``; otherwise a sentence saying how it differs."""
    e, g = _to_array(expected), _to_array(got)
    if isinstance(e, np.ndarray) or (
            isinstance(e, (list, tuple)) and _numeric_array(e) is not None
            and _numeric_array(g) is not None):
        e = _numeric_array(e)
        g = _numeric_array(g)
        if g is None:
            return f"expected an array of numbers, got {_short(got)}"
        if e.shape != g.shape:
            return f"expected shape {e.shape}, got shape {g.shape}"
        if not np.issubdtype(g.dtype, np.number) and g.dtype != bool:
            return f"expected numbers, got dtype {g.dtype}"
        e = e.astype(float)
        g = g.astype(float)
        if np.any(np.isnan(g) & ~np.isnan(e)):
            return "got NaN where a number was expected"
        bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f" at index {idx}" if e.ndim else ""
            return (f"values differ{where}: expected {e[idx]:.6g}, got {g[idx]:.6g} "
                    f"({int(bad.sum())} of {bad.size} entries differ, max abs diff "
                    f"{np.max(np.abs(g - e)[bad]):.3g})")
        return None
    if isinstance(e, dict):
        if not isinstance(g, dict) or set(g) != set(e):
            return f"expected a dict with keys {sorted(e)}, got {_short(g)}"
        for k in e:
            msg = compare(e[k], g[k], rtol, atol)
            if msg:
                return f"[{k!r}] {msg}"
        return None
    if isinstance(e, (list, tuple)) and isinstance(g, (list, tuple)):
        if len(e) != len(g):
            return f"expected {len(e)} items, got {len(g)}"
        for i, (a, b) in enumerate(zip(e, g)):
            msg = compare(a, b, rtol, atol)
            if msg:
                return f"item {i}: {msg}"
        return None
    try:
        same = bool(e == g)
    except Exception:  # e.g. an array compared with a list of strings: not equal, no crash
        same = False
    return None if same else f"expected {_short(e)}, got {_short(g)}"


def check_function(candidate: Callable, reference: Callable, make_inputs: Callable[[np.random.Generator], dict],
                   *, name: str, trials: int = 25, seed: int = 0, rtol: float = 1e-6,
                   atol: float = 1e-8, verbose: bool = False) -> CheckReport:
    """Compare ``candidate`` with ``reference`` on ``trials`` random inputs.

    ``make_inputs(rng)`` returns the keyword arguments of one trial. Inputs are copied for
    each call so that a function that modifies its input cannot fool the check. The first
    difference found is reported with the input that caused it; an exception raised by the
    candidate is reported as a message, not a traceback. A candidate that raises
    ``NotImplementedError`` (the exercise's stub) is reported once as "not attempted yet".
    The report is returned (a notebook cell ending in the check displays it once);
    ``verbose=True`` also prints it, for scripts.
    """
    if not callable(candidate):
        report = CheckReport(name, False, 0, f"expected a function, got {type(candidate).__name__}")
        if verbose:
            print(report)
        return report
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    import copy

    rng = np.random.default_rng(seed)
    for t in range(trials):
        kwargs = make_inputs(rng)
        if not isinstance(kwargs, dict):
            raise TypeError("make_inputs must return a dict of keyword arguments")
        expected = reference(**copy.deepcopy(kwargs))
        try:
            got = candidate(**copy.deepcopy(kwargs))
        except NotImplementedError:  # the stub as the exercise ships it
            report = CheckReport(name, False, 0, "not attempted yet: write the function above, "
                                 "then run this cell again", attempted=False)
            break
        except Exception as exc:  # the reader's code: report, don't crash
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            msg = (f"raised {type(exc).__name__}: {exc} (line {frame.lineno}) on input "
                   + ", ".join(f"{k}={_short(v, 80)}" for k, v in kwargs.items()))
            report = CheckReport(name, False, t + 1, msg, kwargs)
            break
        diff = compare(expected, got, rtol, atol)
        if diff is not None:
            msg = (f"{diff} on input " + ", ".join(f"{k}={_short(v, 80)}" for k, v in kwargs.items())
                   + f"; expected {_short(expected)}, got {_short(got)}")
            report = CheckReport(name, False, t + 1, msg, kwargs)
            break
    else:
        report = CheckReport(name, True, trials, f"matches the book's implementation on {trials} random inputs")
    if verbose:
        print(report)
    return report


# ---------------------------------------------------------------- Part 1 checkers


def check_softmax_policy_grad_log(candidate: Callable, trials: int = 25) -> CheckReport:
    """Exercise (Part 1): the score function of a tabular softmax policy.

    ``candidate(theta, state, action)`` must return ∇_θ log π_θ(action | state) as an array
    shaped like ``theta`` (n_states x n_actions).
    """
    from lib.rl.policy_gradient import score_function

    def make(rng):
        s, a = int(rng.integers(1, 5)), int(rng.integers(2, 5))
        return {"theta": rng.normal(size=(s, a)), "state": int(rng.integers(s)), "action": int(rng.integers(a))}

    return check_function(candidate, score_function, make, name="softmax score function", trials=trials)


def check_reward_to_go(candidate: Callable, trials: int = 25) -> CheckReport:
    """Exercise (Part 1): reward-to-go ``G_t = sum_{k>=t} gamma^(k-t) r_k`` of one episode.

    ``candidate(rewards, gamma)`` takes a 1-D array of rewards and returns an array of the
    same length.
    """
    from lib.rl.returns import discounted_returns

    def make(rng):
        n = int(rng.integers(1, 12))
        return {"rewards": rng.normal(size=n).round(2), "gamma": float(rng.choice([0.0, 0.5, 0.9, 0.99, 1.0]))}

    return check_function(candidate, lambda rewards, gamma: discounted_returns(rewards, gamma), make,
                          name="reward-to-go", trials=trials)





def check_coverage_by_stage(candidate: Callable, trials: int = 25) -> CheckReport:
    """Exercise (Part 1): ``candidate(nodes)`` returns {stage: fraction of nodes with a notebook}."""
    from lib.bookmap import Node, coverage_by_stage

    def make(rng):
        stages = ["pretraining", "sft", "preference", "rl-basics"][: int(rng.integers(1, 5))]
        nodes = [Node(f"seed-{i}", f"entry {i}", "ch", str(rng.choice(stages)),
                      "chapters/x/nb" if rng.random() < 0.5 else None, "")
                 for i in range(int(rng.integers(1, 15)))]
        return {"nodes": nodes}

    return check_function(candidate, coverage_by_stage, make, name="coverage by stage", trials=trials)


__all__ = ["CheckReport", "check_function", "compare", "check_softmax_policy_grad_log", "check_reward_to_go",
           "check_coverage_by_stage"]
