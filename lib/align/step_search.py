"""Monte Carlo tree search over reasoning steps of the tiny LM.

A *node* is a partial solution of an arithmetic question (the sentences written so far after
``A:``); an *action* is one more sentence, ``" 6 * 2 = 12."`` or ``" The answer is 29."``. The
search is the book's one MCTS (:mod:`lib.mcts`) in its one-player mode: :class:`StepState`
offers the state protocol, and the language model supplies the actions.

* **expansion**: the actions of a node are ``k`` next sentences sampled from the model (up to
  the next ``"."``, :func:`lib.llm.reasoning.sample_continuations`); identical texts are merged
  and their counts kept as a prior (``count / k``, used by PUCT). The ``k`` samples are drawn
  once, when the node is created, and cost ``k`` model calls.
* **value of a leaf**, pluggable (``StepSearchConfig.value``):

  - ``"steps"``: the exact step checker (:func:`lib.data.check_steps` through
    :func:`lib.llm.reasoning.step_value`): 1 while every sentence is a valid next step, else 0.
    It knows the question, so it is a *perfect process verifier*, an oracle no real task has;
  - ``"rollout"``: the classic simulation: one sampled continuation to the end of the answer
    (1 model call), judged by the outcome verifier :func:`lib.data.verify_answer` (no step
    labels needed, but it knows the right final number);
  - ``"learned"``: any ``value_fn(problem, steps_text) -> float`` (a learned process reward
    model, plugged in by the caller).

  A finished solution (an answer sentence, an unfinished sentence, or ``max_steps`` sentences)
  is valued by the verifier (``"steps"``: answer right and every step valid; ``"rollout"``:
  answer right) or by ``value_fn``.
* **answer of a search**: from the root follow the most visited child (ties: higher mean value)
  down to a finished solution; if the walk stops at an unfinished node, one sampled continuation
  completes it (1 more call).

Model calls are counted as :mod:`lib.llm.reasoning` counts them: one sampled continuation of
one prompt (a step or a whole rest of an answer) is one call. :func:`search_problems` runs one
tree per question in lock step, batching every tree's model calls of a round into one
generation (a thread per tree; the batch order is fixed, so runs are deterministic).
:func:`compare` measures accuracy against model calls for MCTS and for sampling baselines
(majority vote, pass@N); ``python -m lib.align.step_search`` ships that sweep.

Book: seed-98
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import threading
import time
from typing import Callable, Sequence

import numpy as np

from lib import mcts as MC
from lib.data import ArithProblem, parse_answer, parse_steps, verify_answer
from lib.runs import check_choice, check_int, check_positive

#: The leaf values :class:`StepSearchConfig` accepts.
VALUES = ("steps", "rollout", "learned")
#: Name of the shipped sweep (``data/checkpoints/step-search``).
SWEEP_NAME = "step-search"
_SENTENCE = re.compile(r"[^.]*\.|[^.]+$")


@dataclasses.dataclass
class StepSearchConfig:
    """Settings of one search over reasoning steps.

    simulations: MCTS iterations per question (each creates at most one node: ``k`` calls, plus
        one call for a rollout value). 4 to 32 here; a few hundred in the papers' math searches.
    k: next sentences sampled when a node is created (2 to 8); duplicates are merged.
    value: ``"steps"`` (exact step checker), ``"rollout"`` (one sampled completion judged by the
        outcome verifier) or ``"learned"`` (a ``value_fn`` given to the search).
    c: exploration constant of UCT/PUCT; values lie in [0, 1], so about 0.5 to 1.5.
    selection: ``"uct"`` (one new node per iteration, the classic; the book's runs) or ``"puct"``
        (all children of a leaf at once, priors = merged sample counts; ``k`` calls per child).
        Note: ``lib.mcts``'s PUCT expansion currently leaves a leaf's ``untried`` list filled,
        so its trees stop growing below depth 1 (tests/test_align_step_search.py marks it).
    max_steps: sentences after which a solution counts as finished (the questions need 3).
    step_tokens, answer_tokens: token limits of one sentence and of a completion to the end.
    temperature: sampling temperature of the model.
    seed: seed of the search's own random stream and of the sampling generator.
    """

    simulations: int = 16
    k: int = 4
    value: str = "steps"
    c: float = 1.0
    selection: str = "uct"
    max_steps: int = 4
    step_tokens: int = 12
    answer_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_int(self, "simulations", "k", "max_steps", "step_tokens", "answer_tokens")
        check_positive(self, "c", "temperature")
        check_choice(self, "value", VALUES)
        check_choice(self, "selection", ("uct", "puct"))
        check_int(self, "seed", minimum=0)

    def mcts(self, index: int = 0) -> MC.MCTSConfig:
        """The :class:`lib.mcts.MCTSConfig` of the tree of question number ``index``."""
        return MC.MCTSConfig(simulations=self.simulations, c=self.c, selection=self.selection,
                             seed=self.seed * 100_003 + int(index))


# ----------------------------------------------------------------------------- the model


class TextSampler:
    """The model as a text continuer: ``continue_texts(prompts, stop, max_new_tokens)``.

    ``stop="step"`` cuts each continuation after its first ``"."`` (or EOS), ``stop="end"``
    after EOS. Texts are decoded without special tokens. Anything with this one method (a stub
    in the tests) can stand in for the model.
    """

    def __init__(self, model, tokenizer, generator=None, temperature: float = 1.0):
        dot = tokenizer.encode(".")
        if len(dot) != 1:
            raise ValueError("the tokenizer must encode '.' as one token")
        self.model, self.tokenizer, self.generator = model, tokenizer, generator
        self.temperature = float(temperature)
        self.stops = {"step": [dot[0], tokenizer.eos_id], "end": [tokenizer.eos_id]}

    def continue_texts(self, prompts: Sequence[str], stop: str, max_new_tokens: int) -> list:
        from lib.llm.reasoning import sample_continuations

        if stop not in self.stops:
            raise ValueError(f"stop must be 'step' or 'end', got {stop!r}")
        ids = [self.tokenizer.encode(p) for p in prompts]
        rows = sample_continuations(self.model, ids, self.stops[stop], max_new_tokens,
                                    self.generator, self.temperature)
        return [self.tokenizer.decode(r, skip_special_tokens=True) for r in rows]


def split_sentences(text: str) -> list:
    """``text`` cut after each ``"."`` (the last piece may be unfinished)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [s for s in _SENTENCE.findall(text) if s]


def exact_step_value(problem: ArithProblem, steps_text: str) -> float:
    """The perfect process verifier on a partial solution: 1.0 when every sentence so far is a
    valid next step (:func:`lib.llm.reasoning.step_value`, i.e. :func:`lib.data.check_steps`)
    and no more steps are written than the question needs; an answer sentence scores 1.0 only
    if the whole solution is right (:func:`lib.data.verify_answer` with its steps checked)."""
    from lib.llm.reasoning import step_value

    if not isinstance(problem, ArithProblem):
        raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
    steps: list = []
    for s in split_sentences(steps_text):
        if parse_answer(s) is not None:
            return float(verify_answer(problem, steps_text, require_steps=True))
        if step_value(problem, steps, s) == 0.0:
            return 0.0
        steps += parse_steps(s)
    return float(len(steps) <= problem.n_steps)


# ----------------------------------------------------------------------------- the state


class StepState:
    """A partial solution: the one-player state of :mod:`lib.mcts` (``to_play() == 0``).

    Its legal actions are the merged sentences the model proposed for it (sampled on first
    request, ``k`` calls, then kept); ``apply`` appends one. Finished when the last sentence
    gives an answer or is unfinished (no ``"."``), or after ``max_steps`` sentences.
    """

    __slots__ = ("search", "sentences", "candidates", "counts")

    def __init__(self, search: "StepSearch", sentences: tuple = ()):
        self.search, self.sentences = search, tuple(sentences)
        self.candidates: list | None = None
        self.counts: dict = {}

    @property
    def text(self) -> str:
        return "".join(self.sentences)

    def to_play(self) -> int:
        return 0

    def is_terminal(self) -> bool:
        if not self.sentences:
            return False
        last = self.sentences[-1]
        return (parse_answer(last) is not None or not last.endswith(".")
                or len(self.sentences) >= self.search.cfg.max_steps)

    def legal_actions(self) -> list:
        if self.is_terminal():
            return []
        if self.candidates is None:
            k = self.search.cfg.k
            texts = self.search.sample([self.text] * k, "step", self.search.cfg.step_tokens)
            self.counts = {}
            for t in texts:  # merge duplicates, first-seen order
                self.counts[t] = self.counts.get(t, 0) + 1
            self.candidates = list(self.counts)
        return list(self.candidates)

    def priors(self) -> list:
        """Merged sample counts over ``k``, in the order of :meth:`legal_actions`."""
        acts = self.legal_actions()
        return [self.counts[a] / self.search.cfg.k for a in acts]

    def apply(self, action) -> "StepState":
        if action not in self.legal_actions():
            raise ValueError(f"{action!r} is not one of this node's sampled next steps")
        return StepState(self.search, self.sentences + (action,))

    def terminal_value(self) -> float:
        return self.search.final_value(self)

    def __repr__(self) -> str:
        return f"StepState({self.text!r})"


@dataclasses.dataclass
class StepSearchResult:
    """One question's search: the solution found (``text``, its ``answer``, whether the outcome
    verifier accepts it), the model ``calls`` spent, the chosen path (nodes, root first),
    whether a sampled completion finished it, and the tree (``root``)."""

    problem: ArithProblem
    text: str
    answer: int | None
    correct: bool
    calls: int
    path: list
    completed: bool
    root: MC.Node
    iterations: list


class StepSearch:
    """One tree over the reasoning steps of one question; see the module docstring.

    ``sampler``: a :class:`TextSampler` (or anything with its ``continue_texts``);
    ``value_fn(problem, steps_text) -> float`` is needed for ``cfg.value == "learned"``.
    """

    def __init__(self, problem: ArithProblem, sampler, cfg: StepSearchConfig,
                 value_fn: Callable | None = None, index: int = 0):
        if not isinstance(problem, ArithProblem):
            raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
        if not isinstance(cfg, StepSearchConfig):
            raise TypeError(f"cfg must be a StepSearchConfig, got {type(cfg).__name__}")
        if not callable(getattr(sampler, "continue_texts", None)):
            raise TypeError("sampler must offer continue_texts(prompts, stop, max_new_tokens)")
        if cfg.value == "learned" and not callable(value_fn):
            raise ValueError("value='learned' needs a value_fn(problem, steps_text) -> float")
        self.problem, self.sampler, self.cfg = problem, sampler, cfg
        self.value_fn, self.index = value_fn, int(index)
        self.calls = 0
        self.prompt = "Q: " + problem.question + "\nA:"

    def sample(self, texts: Sequence[str], stop: str, max_new_tokens: int) -> list:
        """Continuations of ``prompt + text`` for each text; one call each."""
        out = self.sampler.continue_texts([self.prompt + t for t in texts], stop, max_new_tokens)
        if len(out) != len(texts):
            raise ValueError(f"the sampler returned {len(out)} texts for {len(texts)} prompts")
        self.calls += len(texts)
        return list(out)

    # the value of a leaf ------------------------------------------------------------------
    def leaf_value(self, state: StepState) -> float:
        """The value of an unfinished partial solution (``cfg.value``)."""
        v = self.cfg.value
        if v == "steps":
            return exact_step_value(self.problem, state.text)
        if v == "learned":
            return self._learned(state.text)
        rest = self.sample([state.text], "end", self.cfg.answer_tokens)[0]  # one rollout
        return float(verify_answer(self.problem, state.text + rest))

    def final_value(self, state: StepState) -> float:
        """The value of a finished solution: the verifier's, or ``value_fn``'s."""
        if self.cfg.value == "learned":
            return self._learned(state.text)
        return float(verify_answer(self.problem, state.text,
                                   require_steps=self.cfg.value == "steps"))

    def _learned(self, text: str) -> float:
        v = float(self.value_fn(self.problem, text))
        if not math.isfinite(v):
            raise ValueError(f"value_fn returned {v} for {text!r}; expected a finite float")
        return v

    def evaluate(self, state: StepState) -> tuple:
        """The evaluator of :mod:`lib.mcts`: ``(priors, value)`` of a node."""
        priors = state.priors() if self.cfg.selection == "puct" else None
        return priors, self.leaf_value(state)

    # the search ---------------------------------------------------------------------------
    def run(self, record: bool = False) -> StepSearchResult:
        """``cfg.simulations`` iterations of MCTS, then the chosen path (completed if needed)."""
        res = MC.search(StepState(self), self.cfg.mcts(self.index), self.evaluate, record=record)
        path = chosen_path(res.root)
        text, completed = path[-1].state.text, False
        if not path[-1].state.is_terminal():
            text += self.sample([text], "end", self.cfg.answer_tokens)[0]
            completed = True
        return StepSearchResult(self.problem, text, parse_answer(text),
                                bool(verify_answer(self.problem, text)), self.calls, path,
                                completed, res.root, res.iterations)


def chosen_path(root: MC.Node) -> list:
    """From ``root``, the most visited child (ties: higher Q, then the first created) down to a
    node without children: the solution the search returns."""
    if not isinstance(root, MC.Node):
        raise TypeError(f"root must be a lib.mcts.Node, got {type(root).__name__}")
    path = [root]
    while path[-1].children:
        kids = list(path[-1].children.values())
        path.append(max(kids, key=lambda ch: (ch.N, ch.Q, -ch.id)))
    return path


def search_problem(model, tokenizer, problem: ArithProblem, cfg: StepSearchConfig,
                   value_fn: Callable | None = None, record: bool = False) -> StepSearchResult:
    """One search on one question with the model sampled directly (seeded by ``cfg.seed``)."""
    import torch

    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    sampler = TextSampler(model, tokenizer, gen, cfg.temperature)
    return StepSearch(problem, sampler, cfg, value_fn).run(record=record)


def draw_step_tree(ax, result: StepSearchResult, max_chars: int = 22, fontsize: float = 7):
    """Draw the tree of ``result`` sideways (depth left to right): one marker per node with
    its sentence, visits ``N`` and mean value ``Q``; the chosen path in pink, finished
    solutions as squares. Positions from :func:`lib.mcts.tree_layout`."""
    from lib.viz import DARK, PALETTE

    if not isinstance(result, StepSearchResult):
        raise TypeError(f"result must be a StepSearchResult, got {type(result).__name__}")
    if not hasattr(ax, "plot"):
        raise TypeError(f"expected a matplotlib Axes, got {type(ax).__name__}")
    pos = MC.tree_layout(result.root, min_visits=1)
    chosen = {n.id for n in result.path}
    nodes = {n.id: n for n in result.root.nodes() if n.id in pos}
    for nid, n in nodes.items():
        if n.parent is not None:
            (y0, x0), (y1, x1) = pos[n.parent.id], pos[nid]
            on = nid in chosen and n.parent.id in chosen
            ax.plot([x0, x1], [-y0, -y1], color=DARK["pink"] if on else "#999999",
                    lw=2.0 if on else 0.8, zorder=1)
    for nid, n in nodes.items():
        y, x = pos[nid]
        fill = PALETTE["pink"] if nid in chosen else PALETTE["blue"]
        ax.scatter([x], [-y], s=70, marker="s" if n.state.is_terminal() else "o", color=fill,
                   edgecolor="k", lw=0.5, zorder=3)
        text = "question" if n.action is None else n.action.strip()
        if len(text) > max_chars:
            text = text[:max_chars - 1] + "…"
        ax.annotate(f"{text}\nN={n.N} Q={n.Q:.2f}", (x, -y), xytext=(7, 0),
                    textcoords="offset points", va="center", fontsize=fontsize,
                    color=DARK["pink"] if nid in chosen else "black", zorder=4,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 0.6})
    depth = max(d for _, d in pos.values())
    ax.set_xlim(-0.2, depth + 0.9)
    ax.set_xticks(range(depth + 1), ["root"] + [f"step {d}" for d in range(1, depth + 1)])
    ax.set_yticks([])
    ax.grid(False)
    return pos


# ----------------------------------------------------------------------------- lock step


class _LockstepSampler:
    """Batches the model calls of many trees, one per thread: each round waits until every
    live tree has asked for its next continuations, then serves them in tree order."""

    def __init__(self, sampler: TextSampler, n: int):
        self.sampler, self.cv = sampler, threading.Condition()
        self.pending: dict = {}
        self.results: dict = {}
        self.live, self.error = n, None
        self.rounds = 0

    def for_tree(self, i: int):
        outer = self

        class _One:
            def continue_texts(self, prompts, stop, max_new_tokens):
                return outer.request(i, list(prompts), stop, max_new_tokens)

        return _One()

    def request(self, i, prompts, stop, max_new):
        with self.cv:
            self.pending[i] = (prompts, stop, max_new)
            self.cv.notify_all()
            while i not in self.results and self.error is None:
                self.cv.wait()
            if self.error is not None:
                raise RuntimeError("the batched sampler failed") from self.error
            return self.results.pop(i)

    def done(self):
        with self.cv:
            self.live -= 1
            self.cv.notify_all()

    def serve(self):
        while True:
            with self.cv:
                while self.live > 0 and len(self.pending) < self.live:
                    self.cv.wait()
                if self.live == 0:
                    return
                batch, self.pending = sorted(self.pending.items()), {}
            try:
                out = {}
                groups: dict = {}
                for i, (prompts, stop, mx) in batch:
                    groups.setdefault((stop, mx), []).append((i, prompts))
                for (stop, mx), items in sorted(groups.items()):
                    flat = [p for _, ps in items for p in ps]
                    texts = self.sampler.continue_texts(flat, stop, mx)
                    at = 0
                    for i, ps in items:
                        out[i] = texts[at:at + len(ps)]
                        at += len(ps)
                self.rounds += 1
            except BaseException as e:  # wake every tree so that it raises, then re-raise
                with self.cv:
                    self.error = e
                    self.cv.notify_all()
                raise
            with self.cv:
                self.results.update(out)
                self.cv.notify_all()


def search_problems(model, tokenizer, problems, cfg: StepSearchConfig,
                    value_fn: Callable | None = None) -> list:
    """One search per question, all trees in lock step (their model calls batched per round);
    deterministic for a given model, question list, ``cfg`` and thread count."""
    import torch

    probs = list(problems)
    if not probs or not all(isinstance(p, ArithProblem) for p in probs):
        raise TypeError("problems must be a non-empty sequence of ArithProblem")
    if not isinstance(cfg, StepSearchConfig):
        raise TypeError(f"cfg must be a StepSearchConfig, got {type(cfg).__name__}")
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    hub = _LockstepSampler(TextSampler(model, tokenizer, gen, cfg.temperature), len(probs))
    results: list = [None] * len(probs)
    errors: list = []

    def work(i):
        try:
            results[i] = StepSearch(probs[i], hub.for_tree(i), cfg, value_fn, index=i).run()
        except BaseException as e:  # reported after the join
            errors.append((i, e))
        finally:
            hub.done()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(probs))]
    for t in threads:
        t.start()
    hub.serve()
    for t in threads:
        t.join()
    if errors:
        i, e = errors[0]
        raise RuntimeError(f"the search of question {i} failed: {e!r}") from e
    return results


# ----------------------------------------------------------------------------- comparison


def sample_baselines(model, tokenizer, problems, n: int, seed: int = 0,
                     temperature: float = 1.0) -> dict:
    """``n`` whole sampled answers per question (one call each): ``hits`` (Q, n) of the
    outcome verifier and the parsed ``answers`` (Q lists; ``None`` for no answer)."""
    import torch

    from lib.llm.reasoning import sample_answers

    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    texts = sample_answers(model, tokenizer, problems, n, gen, temperature)
    hits = np.array([[verify_answer(p, t) for t in row] for p, row in zip(problems, texts)])
    return {"hits": hits, "answers": [[parse_answer(t) for t in row] for row in texts]}


def baseline_curves(base: dict, truth: Sequence[int], ns: Sequence[int], seed: int = 0,
                    draws: int = 50) -> dict:
    """Per-question accuracy (Q, len(ns)) at ``n`` calls: ``single`` (one sample), ``vote``
    (majority vote of n, :func:`lib.llm.reasoning.vote_accuracy`) and ``pass`` (pass@n, the
    unbiased estimate: best-of-n with an oracle verifier, the ceiling)."""
    from lib.llm.evalharness import pass_at_k
    from lib.llm.reasoning import vote_accuracy

    hits = np.asarray(base["hits"], dtype=bool)
    M = hits.shape[1]
    ns = [int(n) for n in ns]
    if any(n < 1 or n > M for n in ns):
        raise ValueError(f"ns must lie in [1, {M}] (the samples per question), got {ns}")
    rng = np.random.default_rng(seed)
    single = np.repeat(hits.mean(1, keepdims=True), len(ns), axis=1)
    vote = np.stack([vote_accuracy(base["answers"], truth, n, draws, rng) for n in ns], 1)
    c = hits.sum(1)
    pas = np.array([[pass_at_k(M, int(ci), n) for n in ns] for ci in c])
    return {"ns": ns, "single": single, "vote": vote, "pass": pas}


def compare(model, tokenizer, problems, widths: Sequence[int] = (2, 4, 8),
            values=("steps", "rollout"), sims_per_width: int = 4, n_samples: int = 32,
            cfg: StepSearchConfig | None = None, progress: bool = False) -> dict:
    """Accuracy against model calls on ``problems``. MCTS with each leaf value in ``values`` at
    each width ``k`` in ``widths`` (``sims_per_width * k`` simulations, so the budget grows with
    the width; per question ``correct`` and ``calls``), and ``n_samples`` whole answers per
    question for the sampling baselines (``hits``, ``answers``). JSON-ready."""
    cfg = cfg or StepSearchConfig()
    for name, n in (("sims_per_width", sims_per_width), ("n_samples", n_samples)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    if not widths or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1
                         for k in widths):
        raise ValueError(f"widths must be ints >= 1, got {widths!r}")
    probs = list(problems)
    out: dict = {"questions": [p.expression for p in probs], "cfg": dataclasses.asdict(cfg),
                 "widths": [int(k) for k in widths], "sims_per_width": int(sims_per_width),
                 "mcts": {}}
    for v in values:
        for k in out["widths"]:
            t0 = time.process_time()
            c = dataclasses.replace(cfg, value=v, k=k, simulations=sims_per_width * k)
            res = search_problems(model, tokenizer, probs, c)
            out["mcts"][f"{v}/{k}"] = {"correct": [bool(r.correct) for r in res],
                                       "calls": [int(r.calls) for r in res]}
            if progress:
                print(f"{v:8s} k={k}: accuracy {np.mean([r.correct for r in res]):.3f}, "
                      f"calls {np.mean([r.calls for r in res]):.1f} "
                      f"({time.process_time() - t0:.1f} s CPU)", flush=True)
    base = sample_baselines(model, tokenizer, probs, n_samples, seed=cfg.seed + 1,
                            temperature=cfg.temperature)
    out["hits"] = base["hits"].astype(int).tolist()
    out["answers"] = base["answers"]
    return out


def curves(data: dict, ns: Sequence[int], seed: int = 0) -> dict:
    """From a :func:`compare` record: for each MCTS value, per-question ``correct``
    (Q, widths) and the mean ``calls`` per width; the baselines at ``ns`` calls
    (:func:`baseline_curves`)."""
    probs = [ArithProblem.from_expression(e) for e in data["questions"]]
    out: dict = {"mcts": {}}
    for v in dict.fromkeys(k.split("/")[0] for k in data["mcts"]):
        rows = [data["mcts"][f"{v}/{k}"] for k in data["widths"]]
        out["mcts"][v] = {"correct": np.array([r["correct"] for r in rows], dtype=float).T,
                          "calls": np.array([np.mean(r["calls"]) for r in rows])}
    base = {"hits": np.array(data["hits"], dtype=bool), "answers": data["answers"]}
    out["base"] = baseline_curves(base, [p.answer for p in probs], ns, seed)
    return out


# ----------------------------------------------------------------------------- the artefact


def make_sweep(out=None, n_questions: int = 200, widths=(2, 4, 8), n_samples: int = 64,
               check_questions: int = 8, progress: bool = True, command: str = "") -> dict:
    """Write ``data/checkpoints/step-search/{sweep.json, meta.json}``: :func:`compare` on the
    first ``n_questions`` held-out questions, and a small check run (the first
    ``check_questions`` questions, default config, exact values) that a test reproduces."""
    import pathlib

    import torch

    from lib.align.sft import COLD_START
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    torch.manual_seed(0)
    folder = pathlib.Path(out) if out else CHECKPOINT_DIR / SWEEP_NAME
    folder.mkdir(parents=True, exist_ok=True)
    model, tok = load_model(COLD_START), load_tokenizer()
    task = chain_arithmetic_task()
    probs = list(task.held_out[:n_questions])
    t0 = time.process_time()
    data = compare(model, tok, probs, widths, n_samples=n_samples, progress=progress)
    check_cfg = StepSearchConfig()
    chk = search_problems(model, tok, probs[:check_questions], check_cfg)
    data["check"] = {"n_questions": check_questions, "cfg": dataclasses.asdict(check_cfg),
                     "correct": [bool(r.correct) for r in chk],
                     "calls": [int(r.calls) for r in chk]}
    cpu = time.process_time() - t0
    (folder / "sweep.json").write_text(json.dumps(data))
    acc = {k: float(np.mean(v["correct"])) for k, v in data["mcts"].items()}
    calls = {k: float(np.mean(v["calls"])) for k, v in data["mcts"].items()}
    metrics = {"mcts_accuracy": acc, "mcts_mean_calls": calls,
               "single_sample_accuracy": float(np.mean(data["hits"])),
               "check_accuracy": float(np.mean(data["check"]["correct"])),
               "check_calls": int(sum(data["check"]["calls"])), "cpu_s": cpu}
    meta = {"name": SWEEP_NAME, "command": command or "python -m lib.align.step_search",
            "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(), "seed": 0,
            "model": COLD_START, "task": task.describe(), "n_questions": len(probs),
            "n_samples": n_samples, "widths": [int(k) for k in widths],
            "metrics": metrics}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return metrics


def load_sweep(name=SWEEP_NAME) -> tuple[dict, dict]:
    """``(sweep, meta)`` of the shipped sweep."""
    import pathlib

    from lib.llm.checkpoint import CHECKPOINT_DIR

    p = pathlib.Path(name)
    if not p.exists() and len(p.parts) == 1:
        p = CHECKPOINT_DIR / p
    if not (p / "sweep.json").is_file():
        raise FileNotFoundError(f"no sweep.json in {p}; make it with python -m lib.align.step_search")
    return json.loads((p / "sweep.json").read_text()), json.loads((p / "meta.json").read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.step_search",
                                 description="Ship Part 9's accuracy-vs-calls sweep of MCTS over "
                                             "reasoning steps (data/checkpoints/step-search).")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/step-search)")
    ap.add_argument("--questions", type=int, default=200, help="held-out questions")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cmd = "python -m lib.align.step_search " + " ".join(argv if argv is not None else sys.argv[1:])
    m = make_sweep(a.out, a.questions, progress=not a.no_progress, command=cmd.strip())
    print(json.dumps(m, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["VALUES", "SWEEP_NAME", "StepSearchConfig", "TextSampler", "split_sentences",
           "exact_step_value", "StepState", "StepSearchResult", "StepSearch", "chosen_path",
           "draw_step_tree",
           "search_problem", "search_problems", "sample_baselines", "baseline_curves", "compare",
           "curves", "make_sweep", "load_sweep", "main"]
