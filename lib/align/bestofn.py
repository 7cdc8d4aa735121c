"""Best-of-N and majority vote over one pool of sampled answers, with exact estimators.

Spend ``N`` samples on a question and keep one answer:

* **best-of-N** keeps the sample a *scorer* ranks highest: the exact verifier (the *oracle*:
  best-of-N accuracy is then pass@N) or a learned reward model (Part 8's
  :func:`lib.align.reward.load_reward_model`, scored with
  :func:`lib.align.reward.sequence_scores`), which is a *proxy* for correctness;
* **majority vote** (self-consistency) keeps the most frequent final answer
  (:func:`lib.llm.reasoning.majority_vote`).

**One pool, every N.** Sampling afresh for each ``N`` wastes samples and adds noise. Draw
``M >= N`` answers per question once; the accuracy of a method at ``N`` is its expectation over
all ``C(M, N)`` subsets of ``N`` pool answers (drawn without replacement) — an unbiased
estimate of the method's accuracy with ``N`` fresh samples, computed exactly, without drawing:

* :func:`selection_weights` / :func:`best_of_n_expected`: the top-scored of a random
  ``N``-subset. For an answer with ``b`` pool answers scored strictly *lower* and ``k``
  answers tied with it (itself included), the subset's top score is its score with probability ``(C(b + k, N) - C(b, N)) / C(M, N)``;
  **ties** are broken uniformly at random among the tied answers, so each gets ``1 / k`` of it.
  With the verifier as scorer this is ``1 - C(M - c, N) / C(M, N)``, the unbiased pass@k of
  :func:`lib.llm.evalharness.pass_at_k`;
* :func:`majority_vote_expected`: the vote of a random ``N``-subset, by a sum over the count
  ``j`` of right answers drawn and a dynamic programme over the other answers' counts (each
  below ``j``, or equal to it: a tie). **Ties** of the vote go to one of the tied answers
  uniformly at random — what :func:`lib.llm.reasoning.majority_vote` ("the one seen first")
  does on the subset in random order, as :func:`lib.llm.reasoning.vote_accuracy` draws it.

Both are checked against enumeration of every subset (:func:`best_of_n_enumerate`,
:func:`majority_vote_enumerate`) in ``tests/test_align_bestofn.py``.

**How far the selection moves from the policy.** For i.i.d. draws of a continuous score the
best-of-N distribution's KL from the policy is ``log N - (N - 1) / N`` (Stiennon et al. 2020;
the KL axis of Gao et al. 2023's over-optimisation curves): :func:`best_of_n_kl`; for a discrete
distribution it is at most that (:func:`best_of_n_kl_exact`), and :func:`pool_kl` is the
exact KL of the without-replacement selection from a pool against one uniform draw (above the
formula, since drawing without replacement concentrates more, close to it for ``N << M``).

**The pool** (:func:`sample_pool`): ``M`` answers per question from ``tiny-lm-arith-sft`` at
temperature 1, in blocks of questions, each block with its own generator seed, so that one block
re-sampled reproduces the pool's texts; ``python -m lib.align.bestofn`` writes the shipped
``data/checkpoints/bestofn-pool`` (:func:`load_pool`).

Book: seed-99, seed-100.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import pathlib
import sys
import time
from typing import Sequence

import numpy as np
import torch

#: Name of the shipped pool (``data/checkpoints/bestofn-pool``) and how it was sampled.
POOL_NAME = "bestofn-pool"
POOL_POLICY = "tiny-lm-arith-sft"
POOL_M, POOL_SEED, POOL_BLOCK, POOL_MAX_NEW_TOKENS = 32, 0, 8, 32


def _check_n(n, m: int | None = None, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    if m is not None and n > m:
        raise ValueError(f"{name} ({n}) exceeds the pool size M ({m})")
    return int(n)


def _scores_2d(scores, name: str = "scores") -> np.ndarray:
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(scores).__name__}") from None
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[1] == 0 or s.shape[0] == 0:
        raise ValueError(f"{name} must be (M,) or (questions, M) with M >= 1, got {np.shape(scores)}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return s


def _subset_share(m: int, n: int) -> np.ndarray:
    """``C(a, n) / C(m, n)`` for ``a = 0..m``: the share of ``n``-subsets of ``m`` items that lie
    inside a given ``a`` of them (exact integer ratios, correctly rounded)."""
    total = math.comb(m, n)
    return np.array([math.comb(a, n) / total for a in range(m + 1)])


def _comb_table(m: int) -> np.ndarray:
    """``T[a, n] = C(a, n)`` for ``0 <= a, n <= m`` as floats (exact integers below 2**53)."""
    return np.array([[math.comb(a, n) for n in range(m + 1)] for a in range(m + 1)], dtype=float)


# ----------------------------------------------------------------------------- best-of-N
def selection_weights(scores, n: int) -> np.ndarray:
    """(Q, M) probability that each pool answer is the one kept by best-of-``n``: the top-scored
    of ``n`` answers drawn without replacement from the ``M`` of its row, ties broken uniformly
    at random. Each row sums to 1. ``scores``: (M,) or (Q, M)."""
    s = _scores_2d(scores)
    M = s.shape[1]
    n = _check_n(n, M)
    share = _subset_share(M, n)                         # share[a] = C(a, n) / C(M, n)
    lower = (s[:, None, :] < s[:, :, None]).sum(-1)     # b: answers scored strictly lower
    tied = (s[:, None, :] == s[:, :, None]).sum(-1)     # k: answers with the same score
    top_here = share[lower + tied] - share[lower]       # P(the subset's top score is this one)
    return top_here / tied                              # shared by the k tied answers


def best_of_n_expected(scores, values, n: int) -> np.ndarray:
    """(Q,) expected ``values`` of the answer best-of-``n`` keeps (:func:`selection_weights`):
    with ``values`` the verifier's 0/1 the accuracy of best-of-``n``, with ``values = scores``
    the proxy score of the kept answer. Unbiased for ``n`` fresh samples when the pool's ``M``
    answers are i.i.d. draws of the policy."""
    s = _scores_2d(scores)
    v = _scores_2d(values, "values")
    if v.shape != s.shape:
        raise ValueError(f"values must have the shape of scores {s.shape}, got {v.shape}")
    return (selection_weights(s, n) * v).sum(1)


def best_of_n_enumerate(scores, values, n: int) -> float:
    """Brute force for one row (M,): the mean over all ``C(M, n)`` subsets of the mean ``values``
    of the subset's top-scored answers (uniform tie-break)."""
    s, v = np.asarray(scores, float), np.asarray(values, float)
    if s.ndim != 1 or s.shape != v.shape or s.size == 0:
        raise ValueError(f"scores and values must be 1-D of one non-zero length, got {s.shape}, {v.shape}")
    n = _check_n(n, s.size)
    out = []
    for sub in itertools.combinations(range(s.size), n):
        sub = list(sub)
        top = s[sub] == s[sub].max()
        out.append(v[sub][top].mean())
    return float(np.mean(out))


def pool_kl(scores, n: int) -> np.ndarray:
    """(Q,) exact KL (nats) of best-of-``n`` from the pool (:func:`selection_weights`) against
    one uniform draw, over the distinct scores of each row (equal scores = the same outcome).
    Drawing without replacement concentrates more than i.i.d. draws: at ``n = M`` it is the
    pool's best for sure (``log M`` with distinct scores); for ``n << M`` it approaches
    :func:`best_of_n_kl`."""
    s = _scores_2d(scores)
    w = selection_weights(s, n)
    out = np.zeros(s.shape[0])
    for q in range(s.shape[0]):
        u, inv = np.unique(s[q], return_inverse=True)
        p_sel = np.bincount(inv, weights=w[q], minlength=u.size)
        p_one = np.bincount(inv, minlength=u.size) / s.shape[1]
        nz = p_sel > 0
        out[q] = float((p_sel[nz] * np.log(p_sel[nz] / p_one[nz])).sum())
    return out


def best_of_n_kl(n) -> np.ndarray | float:
    """``log n - (n - 1) / n``: KL (nats) of best-of-``n`` from the policy for a continuous score
    (Stiennon et al. 2020; Gao et al. 2023); an upper bound for discrete ones."""
    a = np.asarray(n, dtype=float)
    if not np.all(a >= 1):
        raise ValueError(f"n must be >= 1, got {n!r}")
    out = np.log(a) - (a - 1) / a
    return float(out) if out.ndim == 0 else out


def best_of_n_kl_exact(probs, n: int) -> float:
    """Exact KL (nats) of best-of-``n`` with replacement from a discrete distribution ``probs``
    over outcomes listed by increasing score (distinct scores): the kept outcome is ``i`` with
    probability ``F_i^n - F_{i-1}^n`` (``F`` the cumulative probability)."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError("probs must be a 1-D probability vector (non-negative, summing to 1)")
    n = _check_n(n)
    F = np.clip(np.cumsum(p), 0.0, 1.0)
    q = F ** n - np.concatenate([[0.0], F[:-1]]) ** n
    nz = (q > 0) & (p > 0)
    return float((q[nz] * np.log(q[nz] / p[nz])).sum())


# ----------------------------------------------------------------------------- majority vote
def _vote_row(answers, truth, ns, T) -> np.ndarray:
    """Exact majority-vote accuracy of one question for each ``n`` in ``ns``."""
    counts: dict = {}
    abstain = 0
    for a in answers:
        if a is None:
            abstain += 1
        else:
            counts[a] = counts.get(a, 0) + 1
    M, n_max = len(answers), max(ns)
    c_true = counts.pop(truth, 0)
    others = list(counts.values())
    K = len(others)
    win = np.zeros(n_max + 1)                         # win[n]: winning subsets (tie-weighted)
    inv_ties = 1.0 / np.arange(1, K + 2)               # a tie with t others is won 1/(t+1)
    for j in range(1, min(c_true, n_max) + 1):         # j right answers in the subset
        # W[s, t]: ways to draw s of the other answers, each wrong answer fewer than j times
        # except t of them exactly j times (ties); abstentions never vote.
        W = np.zeros((n_max - j + 1, K + 1))
        W[: min(abstain, n_max - j) + 1, 0] = T[abstain, : min(abstain, n_max - j) + 1]
        for c in others:
            new = np.zeros_like(W)
            for x in range(min(c, j, n_max - j) + 1):
                if x < j:
                    new[x:, :] += T[c, x] * W[: W.shape[0] - x, :]
                else:
                    new[x:, 1:] += T[c, x] * W[: W.shape[0] - x, :-1]
            W = new
        per_s = W @ inv_ties                           # (n_max - j + 1,)
        win[j:] += T[c_true, j] * per_s[: n_max + 1 - j]
    return np.array([win[n] / T[M, n] for n in ns])


def majority_vote_expected(answers, truth: Sequence, ns) -> np.ndarray:
    """(Q, len(ns)) exact accuracy of a majority vote over ``n`` answers drawn without
    replacement from each question's pool, for each ``n`` in ``ns``. ``answers``: Q lists of
    M final answers (``None`` = no answer, which never votes); ties of the vote are broken
    uniformly at random (the expectation of :func:`lib.llm.reasoning.vote_accuracy`)."""
    rows = [list(a) for a in answers]
    if not rows or len(rows) != len(truth):
        raise ValueError(f"need one answer list per question, got {len(rows)} and {len(truth)}")
    M = len(rows[0])
    if M == 0 or any(len(r) != M for r in rows):
        raise ValueError("every question needs the same number M >= 1 of answers")
    if M > 1000:
        raise ValueError(f"M must be <= 1000 (counts of subsets stay finite floats), got {M}")
    ns = [_check_n(n, M) for n in np.atleast_1d(ns).tolist()]
    T = _comb_table(M)
    return np.stack([_vote_row(r, t, ns, T) for r, t in zip(rows, truth)])


def weighted_vote(answers, weights):
    """The answer with the largest *total* weight over its votes (``None`` answers and their
    weights ignored; ties: the answer seen first), ``None`` when no answer is given. With equal
    weights it is :func:`lib.llm.reasoning.majority_vote`; with reward-model scores as weights
    it mixes voting and best-of-N (weighted self-consistency)."""
    a = list(answers)
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(a),):
        raise ValueError(f"need one weight per answer, got {w.shape} for {len(a)} answers")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0")
    total: dict = {}
    for ans, wt in zip(a, w):
        if ans is not None:
            total[ans] = total.get(ans, 0.0) + float(wt)
    if not total:
        return None
    best = max(total.values())
    return next(k for k in total if total[k] == best)


def majority_vote_enumerate(answers, truth, n: int) -> float:
    """Brute force for one question: over all ``C(M, n)`` subsets, the share won by ``truth``
    (a tie of ``t`` answers counts ``1/t`` when ``truth`` is among them)."""
    a = list(answers)
    n = _check_n(n, len(a))
    total = 0.0
    subsets = list(itertools.combinations(range(len(a)), n))
    for sub in subsets:
        votes: dict = {}
        for i in sub:
            if a[i] is not None:
                votes[a[i]] = votes.get(a[i], 0) + 1
        if votes:
            top = max(votes.values())
            tied = [k for k, v in votes.items() if v == top]
            total += (truth in tied) / len(tied)
    return total / len(subsets)


# ----------------------------------------------------------------------------- the pool
@dataclasses.dataclass
class Pool:
    """``M`` sampled answers per question: ``problems`` (Q,), ``texts`` (Q lists of M),
    ``scores`` (Q, M) the reward model's normalised scores; derived: ``answers`` (parsed final
    answers, ``None`` when there is none), ``correct`` (Q, M) bool from the verifier."""

    problems: list
    texts: list
    scores: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        from lib.data import parse_answer, verify_answer

        self.scores = np.asarray(self.scores, dtype=float)
        Q = len(self.problems)
        if Q == 0 or len(self.texts) != Q or self.scores.shape[0] != Q or self.scores.ndim != 2:
            raise ValueError(f"need Q >= 1 problems, Q text lists and (Q, M) scores, got {Q}, "
                             f"{len(self.texts)}, {self.scores.shape}")
        if any(len(t) != self.scores.shape[1] for t in self.texts):
            raise ValueError("every question needs M texts, as many as its scores")
        self.answers = [[parse_answer(t) for t in row] for row in self.texts]
        self.correct = np.array([[verify_answer(p, t) for t in row]
                                 for p, row in zip(self.problems, self.texts)], dtype=bool)

    @property
    def M(self) -> int:
        return int(self.scores.shape[1])

    @property
    def truth(self) -> list:
        return [p.answer for p in self.problems]

    def subset(self, questions) -> "Pool":
        idx = list(questions)
        return Pool([self.problems[i] for i in idx], [self.texts[i] for i in idx],
                    self.scores[idx], dict(self.meta))


@torch.no_grad()
def sample_pool(model, tokenizer, reward_model, problems, m: int = POOL_M, seed: int = POOL_SEED,
                block: int = POOL_BLOCK, max_new_tokens: int = POOL_MAX_NEW_TOKENS,
                blocks=None) -> Pool:
    """``m`` answers per problem sampled from ``model`` (temperature 1), scored by
    ``reward_model`` (normalised, :func:`lib.align.reward.sequence_scores` of prompt + answer up
    to its EOS). Problems go in blocks of ``block``; block ``b`` is sampled in one batch with a
    generator seeded ``seed * 100_003 + b``, so any block can be re-sampled alone (``blocks``:
    the block indices to sample, default all)."""
    from lib.align.reward import sequence_scores
    from lib.align.tasks import encode_prompts
    from lib.llm.generate import sample_groups

    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    m = _check_n(m, name="m")
    block = _check_n(block, name="block")
    if m < 2:
        raise ValueError("m must be >= 2 (answers are sampled in groups)")
    n_blocks = math.ceil(len(probs) / block)
    todo = list(range(n_blocks)) if blocks is None else [int(b) for b in blocks]
    if any(not 0 <= b < n_blocks for b in todo):
        raise ValueError(f"blocks must lie in 0..{n_blocks - 1}, got {todo}")
    dev = next(model.parameters()).device
    kept, texts, scores = [], [], []
    for b in todo:
        chunk = probs[b * block:(b + 1) * block]
        prompts = encode_prompts(tokenizer, chunk)
        gen = torch.Generator(device=dev).manual_seed(int(seed) * 100_003 + b)
        ids, _, cmask, n0 = sample_groups(model, prompts, m, max_new_tokens, tokenizer.eos_id,
                                          generator=gen)
        lens, rows = cmask.sum(1).tolist(), ids[:, n0:].tolist()
        comps = [rows[i][:lens[i]] for i in range(len(rows))]
        seqs = [prompts[i // m] + c for i, c in enumerate(comps)]
        sc = sequence_scores(reward_model, seqs, tokenizer.pad_id, normalized=True).numpy()
        for k, p in enumerate(chunk):
            kept.append(p)
            texts.append([tokenizer.decode(c, skip_special_tokens=True)
                          for c in comps[k * m:(k + 1) * m]])
            scores.append(sc[k * m:(k + 1) * m].astype(float))
    return Pool(kept, texts, np.stack(scores),
                {"m": m, "seed": int(seed), "block": block, "blocks": todo,
                 "max_new_tokens": max_new_tokens})


def accuracy_curves(pool: Pool, ns) -> dict:
    """Per-question (Q, len(ns)) curves of the pool at each ``n``: ``single`` (one sample),
    ``majority`` (vote), ``rm`` (reward-model best-of-n, verifier's accuracy), ``oracle``
    (verifier best-of-n = pass@n), ``proxy`` (reward-model score of the kept answer)."""
    if not isinstance(pool, Pool):
        raise TypeError(f"expected a Pool, got {type(pool).__name__}")
    ns = [_check_n(n, pool.M) for n in np.atleast_1d(ns).tolist()]
    hit = pool.correct.astype(float)
    out = {"single": np.repeat(hit.mean(1, keepdims=True), len(ns), 1),
           "majority": majority_vote_expected(pool.answers, pool.truth, ns)}
    out["rm"] = np.stack([best_of_n_expected(pool.scores, hit, n) for n in ns], 1)
    out["oracle"] = np.stack([best_of_n_expected(hit, hit, n) for n in ns], 1)
    out["proxy"] = np.stack([best_of_n_expected(pool.scores, pool.scores, n) for n in ns], 1)
    return out


def save_pool(pool: Pool, folder, meta: dict | None = None) -> pathlib.Path:
    """Write ``pool.json`` (question expressions, texts, scores) and ``meta.json``."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"expressions": [p.expression for p in pool.problems], "texts": pool.texts,
            "scores": [[float(x) for x in row] for row in pool.scores]}
    (folder / "pool.json").write_text(json.dumps(data) + "\n", encoding="utf-8")
    meta = dict(meta or {})
    meta["kind"] = "bestofn-pool"
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                      encoding="utf-8")
    return folder


def load_pool(name=POOL_NAME, with_meta: bool = False):
    """The pool written by :func:`save_pool`, from a folder or the shipped name."""
    from lib.data import ArithProblem
    from lib.llm.checkpoint import CHECKPOINT_DIR

    folder = pathlib.Path(name)
    if not folder.exists() and len(folder.parts) == 1:
        folder = CHECKPOINT_DIR / folder
    if not (folder / "pool.json").is_file() or not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no pool (pool.json + meta.json) in {folder}; make it with "
                                "python -m lib.align.bestofn")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    data = json.loads((folder / "pool.json").read_text(encoding="utf-8"))
    probs = [ArithProblem.from_expression(e) for e in data["expressions"]]
    pool = Pool(probs, data["texts"], np.asarray(data["scores"], dtype=float), meta)
    return (pool, meta) if with_meta else pool


def make_pool(out=None, m: int = POOL_M, seed: int = POOL_SEED, command: str | None = None) -> dict:
    """Sample the shipped pool: ``m`` answers of :data:`POOL_POLICY` on every held-out question
    of :func:`lib.align.tasks.chain_arithmetic_task`, scored by the Part 8 reward model."""
    from lib.align.reward import load_reward_model
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.provenance import git_commit, machine, tree_dirty

    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / POOL_NAME
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    tok, task = load_tokenizer(), chain_arithmetic_task()
    pool = sample_pool(load_model(POOL_POLICY), tok, load_reward_model(), task.held_out, m, seed)
    curves = accuracy_curves(pool, [1, m])
    meta = {"name": POOL_NAME, "seed": int(seed), "policy": POOL_POLICY,
            "reward_model": "reward-model", "command": command or "python -m lib.align.bestofn",
            "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(),
            "task": task.describe(),
            "sampling": {"questions": "held_out", "m": m, "block": POOL_BLOCK, "temperature": 1.0,
                         "max_new_tokens": POOL_MAX_NEW_TOKENS,
                         "generator_seed": "seed * 100003 + block index"},
            "metrics": {"questions": len(pool.problems), "answers": int(pool.scores.size),
                        "accuracy_single": float(curves["single"][:, 0].mean()),
                        f"pass_at_{m}": float(curves["oracle"][:, 1].mean()),
                        f"majority_at_{m}": float(curves["majority"][:, 1].mean()),
                        f"rm_best_of_{m}": float(curves["rm"][:, 1].mean()),
                        "mean_score": float(pool.scores.mean()),
                        "time_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}}
    save_pool(pool, out, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.align.bestofn",
                                 description="Sample Part 9's best-of-N pool (data/checkpoints/bestofn-pool).")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/bestofn-pool)")
    ap.add_argument("--m", type=int, default=POOL_M, help="answers per question")
    ap.add_argument("--seed", type=int, default=POOL_SEED, help="sampling seed")
    a = ap.parse_args(argv)
    args = argv if argv is not None else sys.argv[1:]
    meta = make_pool(a.out, a.m, a.seed, command=" ".join(["python -m lib.align.bestofn", *args]))
    print(json.dumps(meta["metrics"], indent=1))
    return 0


__all__ = ["POOL_NAME", "POOL_POLICY", "POOL_M", "POOL_SEED", "POOL_BLOCK", "selection_weights",
           "best_of_n_expected", "best_of_n_enumerate", "pool_kl", "best_of_n_kl",
           "best_of_n_kl_exact", "majority_vote_expected", "weighted_vote", "majority_vote_enumerate", "Pool",
           "sample_pool", "accuracy_curves", "save_pool", "load_pool", "make_pool", "main"]


if __name__ == "__main__":
    sys.exit(main())
