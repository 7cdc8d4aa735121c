"""Outcome and process reward models for step-by-step arithmetic: labels, training, search.

An **outcome reward model** (ORM, Cobbe et al. 2021's *verifier*) reads a whole solution and
says how likely its final answer is right; it is trained on the outcome verifier's 0/1 verdict
with a binary cross-entropy at the solution's last token. A **process reward model** (PRM,
Lightman et al. 2023) scores every *step*: the same network read at the token that ends each
step (the ``"."`` of the book's solutions, ``" 6 * 2 = 12. 17 + 12 = 29. The answer is 29."``
has three steps: two equations and the answer sentence), trained with one binary label per step.
Both are a :class:`lib.align.reward.RewardModel` (the tiny LM's decoder and a linear head whose
score exists at every position, :meth:`~lib.align.reward.RewardModel.token_scores`); here the
head has a bias, because a cross-entropy, unlike Bradley–Terry, sees the base rate. The ORM and
the PRM differ only in *where* the loss reads the scores and *which* labels it compares them with
(:func:`orm_examples`, :func:`prm_examples`, one loss :func:`score_loss`).

Step labels come two ways:

* **exact** (:func:`exact_step_labels`): from the step checker :func:`lib.data.check_steps`; a
  step is good iff it and every step before it are valid (so a right-looking step after a wrong
  one is bad: it continues from a wrong number), and the answer sentence is good iff all steps
  were done and the number is the problem's value;
* **Math-Shepherd** (Wang et al. 2024, :func:`shepherd_estimates`): no step checker, only the
  outcome verifier; from the prefix that ends at a step, the policy samples ``k`` completions, and
  the step's *soft* label is the share of them that reach the right answer, its *hard* label
  whether any does. :func:`label_agreement` compares them with the exact labels.

Search with the models (:func:`prm_step_search`: sample ``k`` candidate next steps with
:func:`lib.llm.reasoning.sample_continuations`, keep the one the PRM scores highest;
:func:`rerank_accuracy`: best-of-N reranking of whole solutions by the ORM score or by the
min / product of the PRM's step scores, :func:`aggregate_steps`).

``python -m lib.align.prm --no-progress`` makes ``data/checkpoints/prm`` (:func:`make_prm`):
the ORM, the PRM from exact labels and the PRM from Math-Shepherd labels, trained on the policy
``tiny-lm-arith-sft``'s sampled solutions to ``rl_train`` questions; :func:`load_prm` reloads one.

Book: seed-95.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import time
from typing import Any, Sequence

import numpy as np
import torch

from lib.align.reward import RewardModel, pad_sequences
from lib.data import ArithProblem, check_steps, parse_answer, parse_steps, verify_answer
from lib.objectives import masked_mean
from lib.runs import Run, Stopwatch, TrainLog, check_int, check_positive, check_range

#: The shipped artefact's folder name and the models it holds.
PRM_NAME = "prm"
KINDS = ("orm", "prm-exact", "prm-shepherd")
AGGREGATES = ("min", "prod", "last", "mean")


# ----------------------------------------------------------------------------- solutions and steps
@dataclasses.dataclass(frozen=True)
class Solution:
    """A sampled solution cut into steps. ``prompt_ids`` and ``completion_ids`` (up to and
    including the first EOS, or the length cut); ``ends``: the completion index of the ``"."``
    that ends each step (steps after the EOS or a trailing piece without ``"."`` are not steps);
    ``steps``: each step's text; ``outcome``: the outcome verifier's verdict on the completion."""

    problem: ArithProblem
    prompt_ids: tuple
    completion_ids: tuple
    ends: tuple
    steps: tuple
    outcome: bool

    @property
    def ids(self) -> tuple:
        """Prompt and completion token ids."""
        return self.prompt_ids + self.completion_ids

    @property
    def positions(self) -> tuple:
        """Index in :attr:`ids` of each step's end token (where a PRM is read)."""
        return tuple(len(self.prompt_ids) + e for e in self.ends)

    @property
    def text(self) -> str:
        return "".join(self.steps)


def make_solution(tokenizer, problem: ArithProblem, prompt_ids, completion_ids) -> Solution:
    """A :class:`Solution` from token ids: the completion is cut after its first EOS, split at
    every ``"."`` token (one step each) and judged by :func:`lib.data.verify_answer`."""
    if not isinstance(problem, ArithProblem):
        raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
    dot = _dot_id(tokenizer)
    comp = [int(t) for t in completion_ids]
    if tokenizer.eos_id in comp:
        comp = comp[:comp.index(tokenizer.eos_id) + 1]
    ends = [i for i, t in enumerate(comp) if t == dot]
    starts = [0] + [e + 1 for e in ends[:-1]]
    steps = tuple(tokenizer.decode(comp[s:e + 1], skip_special_tokens=True) for s, e in zip(starts, ends))
    text = tokenizer.decode(comp, skip_special_tokens=True)
    return Solution(problem, tuple(int(t) for t in prompt_ids), tuple(comp), tuple(ends), steps,
                    bool(verify_answer(problem, text)))


def _dot_id(tokenizer) -> int:
    dot = tokenizer.encode(".")
    if len(dot) != 1:
        raise ValueError("the tokenizer must encode '.' as one token (the step end)")
    return dot[0]


def exact_step_labels(problem: ArithProblem, steps: Sequence[str]) -> list[bool]:
    """Exact per-step labels of a solution given as its step texts (sentences).

    A step sentence (one ``a op b = c``, no answer) is valid when :func:`lib.data.check_steps`
    accepts it after the steps before it; an answer sentence (``The answer is N.``) is valid when
    every step of the problem was done and ``N`` is the problem's value; anything else is invalid.
    The label of step ``i`` is True iff steps ``0..i`` are all valid (prefix-AND): the first
    mistake makes it and everything after it bad, however right the later steps look.
    """
    if not isinstance(problem, ArithProblem):
        raise TypeError(f"problem must be an ArithProblem, got {type(problem).__name__}")
    if isinstance(steps, str) or not all(isinstance(s, str) for s in steps):
        raise TypeError("steps must be a sequence of step texts (str), e.g. Solution.steps")
    done, valid_steps = [], []
    for s in steps:
        eqs, ans = parse_steps(s), parse_answer(s)
        if ans is None and len(eqs) == 1:
            valid = check_steps(problem, done + eqs)[-1]
            done.append(eqs[0])
        elif ans is not None and not eqs:
            valid = ans == problem.answer and len(done) == problem.n_steps
        else:
            valid = False
        valid_steps.append(bool(valid))
    return prefix_labels(valid_steps)


def prefix_labels(valid) -> list[bool]:
    """PRM labels from per-step validity: step ``i`` is good iff steps ``0..i`` are all valid."""
    out, good = [], True
    for v in valid:
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"valid must hold bools, got {v!r}")
        good = good and bool(v)
        out.append(good)
    return out


@torch.no_grad()
def sample_solutions(model, tokenizer, problems, n: int, generator: torch.Generator | None = None,
                     max_new_tokens: int = 32) -> list[list[Solution]]:
    """``n`` solutions per problem sampled from ``model`` at temperature 1 (one list per problem)."""
    from lib.align.tasks import prompt_text
    from lib.llm.reasoning import sample_continuations

    probs = list(problems)
    if not probs or not all(isinstance(p, ArithProblem) for p in probs):
        raise TypeError("problems must be a non-empty sequence of ArithProblem")
    n = _count(n, "n")
    prompts = [tokenizer.encode(prompt_text(p)) for p in probs]
    rows = sample_continuations(model, [p for p in prompts for _ in range(n)], [tokenizer.eos_id],
                                max_new_tokens, generator)
    return [[make_solution(tokenizer, probs[i], prompts[i], rows[i * n + j]) for j in range(n)]
            for i in range(len(probs))]


@torch.no_grad()
def shepherd_estimates(model, tokenizer, solutions: Sequence[Solution], k: int,
                       generator: torch.Generator | None = None, max_new_tokens: int = 32) -> list[np.ndarray]:
    """Math-Shepherd's step estimates: per solution, per step, the share of ``k`` completions
    sampled by ``model`` from the prefix that ends at that step which reach the right answer
    (:func:`lib.data.verify_answer`). A prefix that already states an answer is finished: its
    estimate is its own verdict (0 or 1). Equal prefixes are rolled out once. The hard label is
    ``estimate > 0``."""
    from lib.llm.reasoning import sample_continuations

    sols = _check_solutions(solutions)
    k = _count(k, "k")
    keys: dict[tuple, tuple] = {}  # prefix ids -> (problem, prompt length)
    for s in sols:
        for e, pos in enumerate(s.positions):
            if parse_answer("".join(s.steps[:e + 1])) is None:
                keys.setdefault(s.ids[:pos + 1], (s.problem, len(s.prompt_ids)))
    hits: dict[tuple, float] = {}
    if keys:
        todo = list(keys)
        rows = sample_continuations(model, [list(p) for p in todo for _ in range(k)], [tokenizer.eos_id],
                                    max_new_tokens, generator)
        for j, key in enumerate(todo):
            prob, n_prompt = keys[key]
            ok = sum(verify_answer(prob, tokenizer.decode(list(key[n_prompt:]) + r, skip_special_tokens=True))
                     for r in rows[j * k:(j + 1) * k])
            hits[key] = ok / k
    out = []
    for s in sols:
        est = []
        for e, pos in enumerate(s.positions):
            prefix_text = "".join(s.steps[:e + 1])
            if parse_answer(prefix_text) is not None:
                est.append(float(verify_answer(s.problem, prefix_text)))
            else:
                est.append(hits[s.ids[:pos + 1]])
        out.append(np.asarray(est, dtype=float))
    return out


def label_agreement(exact, estimates) -> dict:
    """How Math-Shepherd's estimates agree with the exact labels, over all steps.

    ``exact``: per solution a list of bools (:func:`exact_step_labels`); ``estimates``: per
    solution an array in [0, 1] (:func:`shepherd_estimates`). Returns ``steps``,
    ``hard_accuracy`` (share of steps where ``estimate > 0`` equals the exact label),
    ``false_good`` (exact bad, some rollout still right: a lucky recovery), ``false_bad`` (exact
    good, no rollout right: the policy fails later), ``soft_auc`` (ROC AUC of the soft estimate
    against the exact label), ``soft_mae``, and ``exact_good_share``."""
    from sklearn.metrics import roc_auc_score

    ex = [np.asarray(e, dtype=bool) for e in exact]
    es = [np.asarray(e, dtype=float) for e in estimates]
    if len(ex) != len(es) or any(a.shape != b.shape for a, b in zip(ex, es)):
        raise ValueError("exact and estimates need one entry per solution with one value per step")
    y = np.concatenate(ex) if ex else np.zeros(0, bool)
    p = np.concatenate(es) if es else np.zeros(0)
    if y.size == 0:
        raise ValueError("no steps to compare")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("estimates must lie in [0, 1]")
    hard = p > 0
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < y.size else float("nan")
    return {"steps": int(y.size), "hard_accuracy": float((hard == y).mean()),
            "false_good": float((hard & ~y).mean()), "false_bad": float((~hard & y).mean()),
            "soft_auc": auc, "soft_mae": float(np.abs(p - y).mean()), "exact_good_share": float(y.mean())}


# ----------------------------------------------------------------------------- training examples
def orm_examples(solutions: Sequence[Solution]) -> list[tuple]:
    """ORM training examples ``(ids, positions, targets)``: one position, the last token of the
    solution (its EOS), with the outcome (1.0 right, 0.0 wrong) as target."""
    return [(s.ids, (len(s.ids) - 1,), (float(s.outcome),)) for s in _check_solutions(solutions)]


def prm_examples(solutions: Sequence[Solution], labels) -> list[tuple]:
    """PRM training examples ``(ids, positions, targets)``: the end token of every step, with its
    label (bools, or soft estimates in [0, 1]); solutions without a step are left out."""
    sols = _check_solutions(solutions)
    if len(labels) != len(sols):
        raise ValueError(f"need one label list per solution, got {len(labels)} for {len(sols)}")
    out = []
    for s, lab in zip(sols, labels):
        t = tuple(float(x) for x in np.asarray(lab, dtype=float).ravel())
        if len(t) != len(s.ends):
            raise ValueError(f"a solution has {len(s.ends)} steps but {len(t)} labels")
        if any(not 0.0 <= x <= 1.0 for x in t):
            raise ValueError("labels must lie in [0, 1]")
        if t:
            out.append((s.ids, s.positions, t))
    return out


def example_batch(examples, pad_id: int) -> tuple[torch.Tensor, ...]:
    """``(ids, attention_mask, targets, mask)`` (B, T) of examples ``(ids, positions, targets)``,
    right-padded: ``mask`` is 1 at the read positions, ``targets`` holds their labels there."""
    ex = list(examples)
    if not ex:
        raise ValueError("need at least one example")
    for ids, pos, tgt in ex:
        if len(pos) != len(tgt) or not pos:
            raise ValueError(f"each example needs >= 1 position and one target per position, got "
                             f"{len(pos)} positions and {len(tgt)} targets")
        if min(pos) < 0 or max(pos) >= len(ids):
            raise ValueError(f"positions {tuple(pos)} fall outside a sequence of length {len(ids)}")
    ids, attn = pad_sequences([list(e[0]) for e in ex], pad_id, "right")
    targets = torch.zeros(ids.shape, dtype=torch.float32)
    mask = torch.zeros(ids.shape, dtype=torch.float32)
    for i, (_, pos, tgt) in enumerate(ex):
        targets[i, list(pos)] = torch.as_tensor(tgt, dtype=torch.float32)
        mask[i, list(pos)] = 1.0
    return ids, attn, targets, mask


# ----------------------------------------------------------------------------- model and loss
def new_score_model(lm, seed: int = 0) -> RewardModel:
    """A :class:`~lib.align.reward.RewardModel` on a copy of ``lm`` with a biased head (weights
    drawn from N(0, init_std²) with ``seed``, bias 0): the ORM's or the PRM's starting point."""
    from lib.llm.model import TinyLM

    if not isinstance(lm, TinyLM):
        raise TypeError(f"lm must be a TinyLM, got {type(lm).__name__}")
    rm = RewardModel(copy.deepcopy(lm), bias=True)
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        rm.head.weight.copy_(torch.randn(rm.head.weight.shape, generator=g) * lm.config.init_std)
        rm.head.bias.zero_()
    return rm.to(lm.device)


def score_loss(rm: RewardModel, ids, attention_mask, targets, mask) -> tuple[torch.Tensor, dict]:
    """The loss of both reward models: binary cross-entropy of the head's logit against the
    target at every read position (``mask`` 1), averaged over the read positions. An ORM reads
    one position per solution (its last token), a PRM one per step (each step's end)."""
    if not (ids.shape == attention_mask.shape == targets.shape == mask.shape) or ids.dim() != 2:
        raise ValueError(f"ids, attention_mask, targets and mask must share one (B, T) shape, got "
                         f"{tuple(ids.shape)}, {tuple(attention_mask.shape)}, {tuple(targets.shape)}, "
                         f"{tuple(mask.shape)}")
    if mask.sum() == 0:
        raise ValueError("mask selects no position")
    dev = rm.device
    logits = rm.token_scores(ids.to(dev), attention_mask.to(dev))
    t, m = targets.to(dev), mask.to(dev)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="none")
    loss = masked_mean(bce, m)
    with torch.no_grad():
        hit = ((logits > 0).float() == (t > 0.5).float()).float()
        stats = {"loss": float(loss), "accuracy": float(masked_mean(hit, m)),
                 "mean_prob": float(masked_mean(torch.sigmoid(logits), m))}
    return loss, stats


@dataclasses.dataclass
class ScoreConfig:
    """Hyperparameters of :func:`train_score_model` (ORM and PRM alike).

    steps: updates; batch_size: solutions per update (epochs over them, reshuffled); lr: AdamW peak
    learning rate of the backbone (1e-5–3e-4 for the tiny LM); head_lr: of the fresh head
    (3–30× ``lr``); warmup_steps: linear warm-up, then cosine decay to ``min_lr_ratio`` of the
    peak; max_grad_norm: gradient clipping; seed: the head's draw and the batch order."""

    steps: int = 250
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_positive(self, "lr", "head_lr", "max_grad_norm")
        check_int(self, "steps", "batch_size")
        check_int(self, "warmup_steps", "seed", minimum=0)
        check_range(self, "min_lr_ratio", 0.0, 1.0)
        if self.warmup_steps > self.steps:
            raise ValueError(f"ScoreConfig.warmup_steps must be <= steps ({self.steps}), got {self.warmup_steps}")


@dataclasses.dataclass
class ScoreRun(Run):
    """A finished :func:`train_score_model`: the trained ``model`` (a RewardModel with a biased
    head); ``log.updates`` holds each update's loss, accuracy, mean probability, grad norm, lr."""

    model: Any = None


def train_score_model(cfg: ScoreConfig, examples, pad_id: int, model=None, progress: bool = False) -> ScoreRun:
    """Train an ORM or a PRM on ``examples`` (:func:`orm_examples` / :func:`prm_examples`) with
    :func:`score_loss`. ``model``: a TinyLM or a checkpoint name (default the policy
    ``tiny-lm-arith-sft``), copied; the head is drawn with ``cfg.seed``."""
    from lib.llm.checkpoint import load_model
    from lib.llm.train import lr_at

    if not isinstance(cfg, ScoreConfig):
        raise TypeError(f"cfg must be a ScoreConfig, got {type(cfg).__name__}")
    ex = list(examples)
    example_batch(ex[:1], pad_id)  # validates the format early
    if model is None or isinstance(model, (str, pathlib.Path)):
        from lib.align.sft import COLD_START

        model = load_model(model or COLD_START)
    rm = new_score_model(model, cfg.seed)
    rm.train()
    log = TrainLog()
    run = ScoreRun(cfg, log, rm)
    head = list(rm.head.parameters())
    body = [p for n, p in rm.named_parameters() if not n.startswith("head")]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr, "peak": cfg.lr},
                             {"params": head, "lr": cfg.head_lr, "peak": cfg.head_lr}], weight_decay=0.0)
    rng = np.random.default_rng(cfg.seed)
    order = np.array([], dtype=int)
    it = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="score model", mininterval=1.0)
    with Stopwatch(log):
        for step in it:
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(ex))])
            idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
            frac = lr_at(step, max_lr=1.0, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                         min_lr_ratio=cfg.min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = g["peak"] * frac
            loss, stats = score_loss(rm, *example_batch([ex[i] for i in idx], pad_id))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(rm.parameters(), cfg.max_grad_norm)
            opt.step()
            log.record_update(step + 1, **stats, grad_norm=float(gn), lr=cfg.lr * frac)
    rm.eval()
    return run


# ----------------------------------------------------------------------------- scoring
@torch.no_grad()
def position_logits(rm: RewardModel, seqs, positions, pad_id: int, batch_size: int = 128) -> list[np.ndarray]:
    """The head's logits at the given positions of each sequence (a list of arrays), eval mode."""
    if len(seqs) != len(positions):
        raise ValueError(f"need one position list per sequence, got {len(positions)} for {len(seqs)}")
    was = rm.training
    rm.eval()
    out = []
    for s in range(0, len(seqs), batch_size):
        chunk = [list(x) for x in seqs[s:s + batch_size]]
        ids, attn = pad_sequences(chunk, pad_id, "right")
        lg = rm.token_scores(ids.to(rm.device), attn.to(rm.device)).cpu().numpy()
        for i, pos in enumerate(positions[s:s + batch_size]):
            out.append(lg[i, list(pos)] if len(pos) else np.zeros(0, dtype=np.float32))
    rm.train(was)
    return out


def outcome_logits(orm: RewardModel, solutions: Sequence[Solution], pad_id: int) -> np.ndarray:
    """(N,) ORM logit of each solution (read at its last token)."""
    sols = _check_solutions(solutions)
    return np.array([x[0] for x in position_logits(orm, [s.ids for s in sols],
                                                   [(len(s.ids) - 1,) for s in sols], pad_id)])


def step_logits(prm: RewardModel, solutions: Sequence[Solution], pad_id: int) -> list[np.ndarray]:
    """PRM logit of every step of each solution (read at each step's end token)."""
    sols = _check_solutions(solutions)
    return position_logits(prm, [s.ids for s in sols], [s.positions for s in sols], pad_id)


def aggregate_steps(step_probs, how: str = "min") -> float:
    """One score for a solution from its steps' probabilities of being good: ``min`` (the weakest
    step, as Wang et al. 2024 rank by), ``prod`` (all steps good, Lightman et al. 2023), ``last``,
    or ``mean``. A solution without steps scores 0."""
    if how not in AGGREGATES:
        raise ValueError(f"how must be one of {AGGREGATES}, got {how!r}")
    p = np.asarray(step_probs, dtype=float).ravel()
    if ((p < 0) | (p > 1)).any() or not np.isfinite(p).all():
        raise ValueError("step_probs must be probabilities in [0, 1]")
    if p.size == 0:
        return 0.0
    return float({"min": p.min, "prod": p.prod, "last": lambda: p[-1], "mean": p.mean}[how]())


def binary_metrics(logits, labels) -> dict:
    """``accuracy`` of ``logit > 0`` against 0/1 ``labels``, ``auc`` (ROC, NaN with one class),
    ``base_rate`` (share of 1s) and ``n``."""
    from sklearn.metrics import roc_auc_score

    z, y = np.asarray(logits, dtype=float).ravel(), np.asarray(labels, dtype=float).ravel()
    if z.shape != y.shape or z.size == 0:
        raise ValueError(f"logits and labels must be non-empty and of one length, got {z.shape}, {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1")
    auc = float(roc_auc_score(y, z)) if 0 < y.sum() < y.size else float("nan")
    return {"accuracy": float(((z > 0) == (y > 0.5)).mean()), "auc": auc, "base_rate": float(y.mean()),
            "n": int(y.size)}


def rerank_accuracy(scores, correct, n: int, draws: int = 20, rng=None) -> np.ndarray:
    """Per-question accuracy (Q,) of best-of-``n``: ``n`` of each question's M solutions drawn
    without replacement, the highest-scored one kept (first on ties), averaged over ``draws``
    draws. ``scores`` and ``correct``: (Q, M) arrays."""
    s, c = np.asarray(scores, dtype=float), np.asarray(correct, dtype=bool)
    if s.ndim != 2 or s.shape != c.shape or s.size == 0:
        raise ValueError(f"scores and correct must be (Q, M) arrays of one shape, got {s.shape}, {c.shape}")
    n, draws = _count(n, "n"), _count(draws, "draws")
    if n > s.shape[1]:
        raise ValueError(f"n ({n}) exceeds the solutions per question ({s.shape[1]})")
    rng = np.random.default_rng(rng)
    acc = np.zeros(s.shape[0])
    for _ in range(draws):
        pick = np.argsort(rng.random(s.shape), axis=1)[:, :n]
        best = pick[np.arange(s.shape[0]), np.argmax(np.take_along_axis(s, pick, 1), axis=1)]
        acc += c[np.arange(s.shape[0]), best]
    return acc / draws


# ----------------------------------------------------------------------------- step search
@torch.no_grad()
def prm_step_search(prm: RewardModel, model, tokenizer, problems, k: int,
                    generator: torch.Generator | None = None, max_steps: int = 4,
                    max_step_tokens: int = 12) -> dict:
    """PRM-guided step search (greedy, beam 1): at each step sample ``k`` candidate next steps
    (up to the next ``"."`` or EOS) from the partial solution, score each by the PRM at its end
    token, keep the best; stop after an answer sentence, an EOS, or ``max_steps`` steps.

    Returns ``answers`` (int or None per problem), ``correct`` (bool array), ``calls`` (sampled
    continuations per problem: ``k`` per step), ``tokens`` (sampled tokens per problem) and
    ``texts`` (the kept solutions)."""
    from lib.align.tasks import prompt_text
    from lib.llm.reasoning import sample_continuations

    probs = list(problems)
    if not probs or not all(isinstance(p, ArithProblem) for p in probs):
        raise TypeError("problems must be a non-empty sequence of ArithProblem")
    k, max_steps = _count(k, "k"), _count(max_steps, "max_steps")
    dot, eos = _dot_id(tokenizer), tokenizer.eos_id
    prompts = [tokenizer.encode(prompt_text(p)) for p in probs]
    comp: list[list[int]] = [[] for _ in probs]
    done = [False] * len(probs)
    calls = np.zeros(len(probs), dtype=int)
    tokens = np.zeros(len(probs), dtype=int)
    for _ in range(max_steps):
        live = [i for i in range(len(probs)) if not done[i]]
        if not live:
            break
        rows = sample_continuations(model, [prompts[i] + comp[i] for i in live for _ in range(k)], [dot, eos],
                                    max_step_tokens, generator)
        # a candidate is read at its last token that is not EOS; a bare EOS cannot be scored
        cands = [[t for t in r if t != eos] for r in rows]
        seqs = [prompts[live[j // k]] + comp[live[j // k]] + (c or [eos]) for j, c in enumerate(cands)]
        lg = position_logits(prm, seqs, [(len(q) - 1,) for q in seqs], tokenizer.pad_id)
        for a, i in enumerate(live):
            sc = [float(lg[a * k + b][0]) if cands[a * k + b] else -np.inf for b in range(k)]
            best = int(np.argmax(sc))
            calls[i] += k
            tokens[i] += sum(len(r) for r in rows[a * k:(a + 1) * k])
            c = cands[a * k + best]
            comp[i] += c
            text = tokenizer.decode(c, skip_special_tokens=True)
            if not c or parse_answer(text) is not None or c[-1] != dot:
                done[i] = True
    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in comp]
    answers = [parse_answer(t) for t in texts]
    correct = np.array([verify_answer(p, t) for p, t in zip(probs, texts)], dtype=bool)
    return {"answers": answers, "correct": correct, "calls": calls, "tokens": tokens, "texts": texts}


# ----------------------------------------------------------------------------- save and load
def save_score_model(rm: RewardModel, path) -> str:
    """Write one ORM/PRM (backbone under ``lm.``, ``head.weight``, ``head.bias``) to a safetensors
    file; returns its SHA-256."""
    from safetensors.torch import save_file

    from lib.llm.checkpoint import file_sha256, state_dict_for_saving

    if not isinstance(rm, RewardModel) or rm.head.bias is None:
        raise TypeError("expected a RewardModel with a biased head (new_score_model)")
    sd = {"lm." + k: v for k, v in state_dict_for_saving(rm.lm).items()}
    sd["head.weight"] = rm.head.weight.detach().cpu().contiguous()
    sd["head.bias"] = rm.head.bias.detach().cpu().contiguous()
    save_file(sd, str(path), metadata={"format": "pt", "kind": "score-model"})
    return file_sha256(path)


def load_prm(kind: str = "prm-exact", name=PRM_NAME, device=None, with_meta: bool = False):
    """A shipped reward model of ``data/checkpoints/prm`` (or the folder ``name``): ``kind`` one of
    ``"orm"``, ``"prm-exact"``, ``"prm-shepherd"`` (:data:`KINDS`), in eval mode; its file must
    match the SHA-256 that ``meta.json`` records. Read a PRM's step score with :func:`step_logits`
    (or ``rm(ids, mask)`` at a prefix ending in a step's ``"."``), an ORM's with
    :func:`outcome_logits`; ``sigmoid`` of a logit is the probability of "good"."""
    from safetensors.torch import load_file

    from lib.llm.checkpoint import CHECKPOINT_DIR, file_sha256
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = pathlib.Path(name)
    if not folder.exists() and len(folder.parts) == 1:
        folder = CHECKPOINT_DIR / folder
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no {meta_path}: make it with `python -m lib.align.prm`")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    weights = folder / f"{kind}.safetensors"
    if file_sha256(weights) != meta["weights_sha256"][kind]:
        raise ValueError(f"{weights}: its SHA-256 is not the one meta.json records")
    cfg = LMConfig.from_dict(meta["config"])
    sd = load_file(str(weights))
    rm = RewardModel(TinyLM(cfg), bias=True)
    lm_sd = {k[3:]: v for k, v in sd.items() if k.startswith("lm.")}
    if cfg.tie_embeddings:
        lm_sd["lm_head.weight"] = lm_sd["embed_tokens.weight"]
    rm.lm.load_state_dict(lm_sd, strict=True)
    if cfg.tie_embeddings:
        rm.lm.lm_head.weight = rm.lm.embed_tokens.weight
    with torch.no_grad():
        rm.head.weight.copy_(sd["head.weight"])
        rm.head.bias.copy_(sd["head.bias"])
    if device is not None:
        rm.to(device)
    rm.eval()
    return (rm, meta) if with_meta else rm


# ----------------------------------------------------------------------------- the shipped models
#: Training data: ``N_TRAIN_Q`` rl_train questions x ``TRAIN_SAMPLES`` sampled solutions (seed
#: ``DATA_SEED``); Math-Shepherd with ``SHEPHERD_K`` rollouts per step prefix; held-out evaluation
#: with ``EVAL_SAMPLES`` solutions per question (seed ``EVAL_SEED``).
N_TRAIN_Q, TRAIN_SAMPLES, SHEPHERD_K, DATA_SEED = 1000, 4, 4, 21
EVAL_SAMPLES, EVAL_SEED, N_RELOAD = 2, 22, 64
PRM_CONFIG = ScoreConfig(steps=400, batch_size=32, lr=3e-4, head_lr=3e-3, warmup_steps=10, seed=0)


def _solution_record(s: Solution) -> dict:
    return {"expression": s.problem.expression, "prompt_len": len(s.prompt_ids), "ids": list(s.ids),
            "positions": list(s.positions), "outcome": bool(s.outcome)}


def evaluate_models(models: dict, solutions: Sequence[Solution], pad_id: int) -> dict:
    """Held-out metrics: for the ORM :func:`binary_metrics` of its logits against outcomes, for
    each PRM against the exact step labels (and its min-aggregate against outcomes)."""
    sols = _check_solutions(solutions)
    exact = [exact_step_labels(s.problem, s.steps) for s in sols]
    y_steps = np.concatenate([np.asarray(e, float) for e in exact])
    out = {}
    for kind, rm in models.items():
        if kind == "orm":
            out[kind] = {"outcome": binary_metrics(outcome_logits(rm, sols, pad_id), [s.outcome for s in sols])}
        else:
            lg = step_logits(rm, sols, pad_id)
            agg = [aggregate_steps(1 / (1 + np.exp(-x)), "min") for x in lg]
            out[kind] = {"steps": binary_metrics(np.concatenate(lg), y_steps),
                         "outcome_min": binary_metrics(np.log(np.clip(agg, 1e-9, 1)) - np.log(0.5),
                                                       [s.outcome for s in sols])}
    return out


def make_prm(out=None, cfg: ScoreConfig = PRM_CONFIG, n_questions: int = N_TRAIN_Q, progress: bool = True,
             command: str | None = None) -> dict:
    """Make ``data/checkpoints/prm`` (module docstring): sample the training solutions, label
    them exactly and by Math-Shepherd rollouts, train the ORM and the two PRMs with ``cfg``,
    evaluate them on held-out solutions, write the three models, ``meta.json`` and a fixed
    subset of held-out solutions with their recorded scores (the reload test's reference)."""
    from lib import seed_everything
    from lib.align.sft import COLD_START
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / PRM_NAME
    torch.set_num_threads(1)
    seed_everything(cfg.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    tok = load_tokenizer()
    task = chain_arithmetic_task()
    policy = load_model(COLD_START)
    gen = torch.Generator().manual_seed(DATA_SEED)
    sols = [s for group in sample_solutions(policy, tok, task.rl_train[:n_questions], TRAIN_SAMPLES, gen)
            for s in group]
    exact = [exact_step_labels(s.problem, s.steps) for s in sols]
    t_sample = time.process_time() - c0
    est = shepherd_estimates(policy, tok, sols, SHEPHERD_K, gen)
    agree = label_agreement(exact, est)
    t_label = time.process_time() - c0 - t_sample
    data = {"orm": orm_examples(sols), "prm-exact": prm_examples(sols, exact),
            "prm-shepherd": prm_examples(sols, [e > 0 for e in est])}
    models, train_times, histories = {}, {}, {}
    for kind in KINDS:
        c1 = time.process_time()
        run = train_score_model(cfg, data[kind], tok.pad_id, policy, progress=progress)
        models[kind] = run.model
        train_times[kind] = time.process_time() - c1
        histories[kind] = [round(u["loss"], 4) for u in run.log.updates[::10]]
    egen = torch.Generator().manual_seed(EVAL_SEED)
    held = [s for g in sample_solutions(policy, tok, task.held_out, EVAL_SAMPLES, egen) for s in g]
    metrics = evaluate_models(models, held, tok.pad_id)
    reload = held[:N_RELOAD]
    reload_metrics = evaluate_models(models, reload, tok.pad_id)
    out.mkdir(parents=True, exist_ok=True)
    shas = {kind: save_score_model(rm, out / f"{kind}.safetensors") for kind, rm in models.items()}
    n_steps = np.bincount([len(e) for e in exact])
    meta = {"name": PRM_NAME, "kind": "prm", "seed": cfg.seed, "base": COLD_START,
            "command": command or "python -m lib.align.prm", "machine": machine(), "commit": git_commit(),
            "tree_dirty": tree_dirty(), "task": task.describe(), "train_config": dataclasses.asdict(cfg),
            "config": policy.config.to_dict(), "weights_sha256": shas,
            "data": {"questions": n_questions, "samples_per_question": TRAIN_SAMPLES, "seed": DATA_SEED,
                     "solutions": len(sols), "outcome_right_share": float(np.mean([s.outcome for s in sols])),
                     "steps_per_solution": {str(i): int(c) for i, c in enumerate(n_steps) if c},
                     "exact_good_share": agree["exact_good_share"], "shepherd_k": SHEPHERD_K,
                     "prm_examples": {k: len(v) for k, v in data.items()}},
            "agreement": agree,
            "metrics": {"held_out": metrics, "held_out_solutions": len(held), "eval_seed": EVAL_SEED,
                        "sample_cpu_s": t_sample, "shepherd_cpu_s": t_label, "train_cpu_s": train_times},
            "history_every_10": histories,
            "reload_check": {"n": len(reload), "metrics": reload_metrics,
                             "solutions": [_solution_record(s) for s in reload]}}
    meta["metrics"]["cpu_s"] = time.process_time() - c0
    meta["metrics"]["wall_s"] = time.perf_counter() - t0
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def reload_solutions(meta: dict, tokenizer) -> list[Solution]:
    """The held-out solutions recorded in ``meta["reload_check"]`` rebuilt as :class:`Solution`."""
    from lib.data import ArithProblem as AP

    out = []
    for r in meta["reload_check"]["solutions"]:
        ids = r["ids"]
        n = r["prompt_len"]
        out.append(make_solution(tokenizer, AP.from_expression(r["expression"]), ids[:n], ids[n:]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.prm",
                                 description="Make the ORM and the two PRMs (data/checkpoints/prm).")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/prm)")
    ap.add_argument("--steps", type=int, default=PRM_CONFIG.steps, help="updates per model")
    ap.add_argument("--questions", type=int, default=N_TRAIN_Q, help="rl_train questions to sample on")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cfg = dataclasses.replace(PRM_CONFIG, steps=a.steps,
                              warmup_steps=min(PRM_CONFIG.warmup_steps, a.steps))
    meta = make_prm(a.out, cfg, a.questions, progress=not a.no_progress,
                    command="python -m lib.align.prm " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(json.dumps({"agreement": meta["agreement"], "held_out": meta["metrics"]["held_out"],
                      "cpu_s": meta["metrics"]["cpu_s"], "train_cpu_s": meta["metrics"]["train_cpu_s"],
                      "data": meta["data"]}, indent=1))
    return 0


# ----------------------------------------------------------------------------- helpers
def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_solutions(solutions) -> list[Solution]:
    sols = list(solutions)
    if not sols or not all(isinstance(s, Solution) for s in sols):
        raise TypeError("solutions must be a non-empty sequence of Solution (make_solution)")
    return sols


__all__ = ["PRM_NAME", "KINDS", "AGGREGATES", "Solution", "make_solution", "exact_step_labels", "prefix_labels", "sample_solutions",
           "shepherd_estimates", "label_agreement", "orm_examples", "prm_examples", "example_batch",
           "new_score_model", "score_loss", "ScoreConfig", "ScoreRun", "train_score_model", "position_logits",
           "outcome_logits", "step_logits", "aggregate_steps", "binary_metrics", "rerank_accuracy",
           "prm_step_search", "save_score_model", "load_prm", "evaluate_models", "make_prm", "reload_solutions",
           "main", "PRM_CONFIG", "N_TRAIN_Q", "TRAIN_SAMPLES", "SHEPHERD_K", "DATA_SEED", "EVAL_SAMPLES",
           "EVAL_SEED", "N_RELOAD"]


if __name__ == "__main__":
    sys.exit(main())
