"""What every training loop in the book shares: the checks on its config, the log it keeps, and
the run it returns.

The convention (RL and language-model training alike):

* an ``XConfig`` dataclass holds every hyperparameter *and the seed*; it validates itself in
  ``__post_init__`` with the helpers below, so a bad value fails where it is written, with a
  message that names the field and what was expected;
* ``train_x(cfg, progress=False) -> XRun``; ``XRun`` is a dataclass subclassing :class:`Run`
  (``config`` and ``log``) plus the trained model(s);
* :class:`TrainLog` records evaluations (steps, mean and spread of the returns), training
  episodes, one dict of diagnostics per update, and the wall time (with the part spent
  evaluating, which benchmarks subtract).

Book: infrastructure (every training loop of the book follows this convention).
"""
from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Any, Callable

import numpy as np

# Evaluation episodes use seeds disjoint from the training seeds: run ``seed`` is evaluated on
# environments seeded ``EVAL_SEED_BASE + EVAL_SEED_STRIDE * seed + i`` (i = episode index).
# The stride keeps the blocks of consecutive seeds apart for up to 97 evaluation episodes.
EVAL_SEED_BASE = 10_000
EVAL_SEED_STRIDE = 97


def eval_seed(seed: int) -> int:
    """First evaluation seed of training run ``seed`` (see :data:`EVAL_SEED_BASE`)."""
    return EVAL_SEED_BASE + EVAL_SEED_STRIDE * int(seed)


# ------------------------------------------------------------------ config checks
def _value(cfg, name):
    if not hasattr(cfg, name):
        raise AttributeError(f"{type(cfg).__name__} has no field {name!r}")
    return getattr(cfg, name)


def _where(cfg, name) -> str:
    return f"{type(cfg).__name__}.{name}"


def check_int(cfg, *names: str, minimum: int = 1) -> None:
    """Each field is an integer (not a bool) ``>= minimum``."""
    for name in names:
        v = _value(cfg, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{_where(cfg, name)} must be an integer >= {minimum}, got {v!r}")


def check_positive(cfg, *names: str) -> None:
    """Each field is a real number ``> 0``."""
    for name in names:
        v = _value(cfg, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0:
            raise ValueError(f"{_where(cfg, name)} must be a number > 0, got {v!r}")


def check_range(cfg, name: str, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """The field is a real number in the interval ``[low, high]`` (ends open when asked)."""
    v = _value(cfg, name)
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
    if ok:
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lb, hb = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{_where(cfg, name)} must be in {lb}{low}, {high}{hb}, got {v!r}")


def check_choice(cfg, name: str, choices) -> None:
    """The field is one of ``choices``."""
    v = _value(cfg, name)
    if v not in tuple(choices):
        raise ValueError(f"{_where(cfg, name)} must be one of {tuple(choices)}, got {v!r}")


# ------------------------------------------------------------------ the log and the run
@dataclasses.dataclass
class TrainLog:
    """What a training run records.

    ``eval_steps/eval_returns/eval_stds``: environment (or optimisation) steps of each
    evaluation, the mean and the standard deviation of its episode returns (or scores);
    ``episode_returns/episode_end_steps``: training episodes as they finished;
    ``updates``: one dict of diagnostics per update, each with its ``"step"``;
    ``wall_time``: seconds for the whole run, ``eval_time`` the part spent evaluating.
    """

    eval_steps: list = dataclasses.field(default_factory=list)
    eval_returns: list = dataclasses.field(default_factory=list)
    eval_stds: list = dataclasses.field(default_factory=list)
    episode_returns: list = dataclasses.field(default_factory=list)
    episode_end_steps: list = dataclasses.field(default_factory=list)
    updates: list = dataclasses.field(default_factory=list)
    wall_time: float = 0.0
    eval_time: float = 0.0

    def record_eval(self, step: int, run_eval: Callable[[], Any]) -> float:
        """Call ``run_eval()`` (an array of episode returns), time it, record it at ``step``;
        returns the mean."""
        t0 = time.perf_counter()
        rets = np.asarray(run_eval(), dtype=float)
        if rets.size == 0:
            raise ValueError("run_eval() returned no episode returns")
        self.eval_steps.append(int(step))
        self.eval_returns.append(float(rets.mean()))
        self.eval_stds.append(float(rets.std()))
        self.eval_time += time.perf_counter() - t0
        return self.eval_returns[-1]

    def record_episode(self, step: int, ret: float) -> None:
        """A training episode that ended at environment step ``step`` with return ``ret``."""
        self.episode_end_steps.append(int(step))
        self.episode_returns.append(float(ret))

    def record_update(self, step: int, **diagnostics) -> dict:
        """One update's diagnostics (numbers), stored with its step; returns the stored dict."""
        row = {"step": int(step), **diagnostics}
        self.updates.append(row)
        return row

    def series(self, name: str) -> np.ndarray:
        """One diagnostic over the updates, as an array (``"step"`` gives their steps)."""
        if self.updates and name not in self.updates[0]:
            raise KeyError(f"no diagnostic {name!r}; logged: {sorted(self.updates[0])}")
        return np.array([u[name] for u in self.updates], dtype=float)

    def steps_to(self, threshold: float) -> int | None:
        """Steps at the first evaluation whose mean return reached ``threshold`` (None if none)."""
        for s, r in zip(self.eval_steps, self.eval_returns):
            if r >= threshold:
                return s
        return None

    @property
    def train_time(self) -> float:
        """Wall time minus evaluation time."""
        return self.wall_time - self.eval_time

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Run:
    """Base of every ``XRun``: the config it ran with and its log; subclasses add the model(s)."""

    config: Any
    log: TrainLog


class Stopwatch:
    """``with Stopwatch(log): ...`` sets ``log.wall_time`` to the seconds the block took."""

    def __init__(self, log: TrainLog):
        self.log = log

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.log.wall_time = time.perf_counter() - self._t0
        return False


__all__ = ["EVAL_SEED_BASE", "EVAL_SEED_STRIDE", "eval_seed", "check_int", "check_positive",
           "check_range", "check_choice", "TrainLog", "Run", "Stopwatch"]
