"""Preference data for DPO, built from the book's own model and judged by the book's verifier.

The pipeline of the prompt-collection diagram, on the fact-chaining task
(:func:`lib.align.tasks.chain_arithmetic_task`):

1. **gather** (:func:`gather_prompts`): a log of questions as users typed them — the task's
   ``rl_train`` questions, some asked several times, with free spacing (``"17+6 * 2"``) — plus
   **generated** questions from the task's generator with another seed;
2. **deduplicate** (:func:`dedup_prompts`): parse each question, write it in canonical form, keep
   the first of each form, and drop any that is a held-out question (decontamination);
3. **cluster** (:func:`prompt_features`, :func:`cluster_prompts`): k-means (scikit-learn) on a few
   features of each problem (its operators, which step precedence picks first, the size of the
   operands and of the answer), so that the sample can cover every kind of question;
4. **stratified sample** (:func:`stratified_sample`): the same number of prompts from every
   cluster (a cluster smaller than its share gives all it has, the rest goes to the others);
5. **pairs** (:func:`build_pairs`): sample ``group_size`` answers per prompt from the model; the
   verifier (:func:`lib.data.verify_answer`) marks each right or wrong; a prompt with at least one
   of each gives one pair, *chosen* = a right answer, *rejected* = a wrong one (prompts the model
   always or never gets right give no pair);
6. **noise** (:func:`add_label_noise`): swap chosen and rejected in an exact share of the pairs,
   chosen at random and flagged, to study DPO under label noise.

:func:`check_pairs` states the invariants (no prompt twice, no pair with equal texts, the sizes
asked for, the noise share exact) and raises on a violation.

Book: seed-18 (and the data of seed-17, seed-19 … seed-22).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from lib.data import ArithProblem, verify_answer

SOURCES = ("gathered", "generated")


@dataclasses.dataclass(frozen=True)
class RawPrompt:
    """One collected question: the text as typed and where it came from (one of :data:`SOURCES`)."""

    text: str
    source: str


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    """A prompt with a preferred (``chosen``) and a dispreferred (``rejected``) completion.

    Token lists: ``prompt_ids`` (the corpus format ``Q: What is …?\\nA:``), ``chosen_ids`` and
    ``rejected_ids`` (sampled completions, ending with EOS when the model stopped). ``flipped``:
    the labels were swapped on purpose (:func:`add_label_noise`), so ``chosen`` is the wrong one.
    """

    problem: ArithProblem
    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]
    chosen_text: str
    rejected_text: str
    cluster: int = -1
    flipped: bool = False

    def swapped(self) -> "PreferencePair":
        """The same pair with chosen and rejected exchanged (``flipped`` toggled)."""
        return dataclasses.replace(self, chosen_ids=self.rejected_ids, rejected_ids=self.chosen_ids,
                                   chosen_text=self.rejected_text, rejected_text=self.chosen_text,
                                   flipped=not self.flipped)


# ----------------------------------------------------------------------------- 1. gather
def _respace(expression: str, rng: np.random.Generator) -> str:
    """The expression as a user might type it: each space kept, dropped or doubled at random."""
    parts = expression.split(" ")
    out = parts[0]
    for p in parts[1:]:
        out += [" ", "", "  "][int(rng.integers(0, 3))] + p
    return out


def gather_prompts(task, n_generated: int = 300, repeat_share: float = 0.3, seed: int = 0,
                   n_gathered: int | None = None) -> list[RawPrompt]:
    """The raw collection: a user log of the task's ``rl_train`` questions (a ``repeat_share`` of
    them asked once more with other spacing; ``n_gathered`` limits how many distinct ones, default
    all) and ``n_generated`` new two-step questions from the task's generator (seeded ``seed``;
    some coincide with logged or held-out questions, as generated data does).
    Returns the texts (``What is <expression>?``) in collection order, shuffled by ``seed``."""
    from lib.data import fact_chain_problems

    if isinstance(n_generated, bool) or not isinstance(n_generated, (int, np.integer)) or n_generated < 0:
        raise ValueError(f"n_generated must be an int >= 0, got {n_generated!r}")
    if not 0 <= repeat_share <= 1:
        raise ValueError(f"repeat_share must be in [0, 1], got {repeat_share!r}")
    rng = np.random.default_rng(seed)
    logged = list(task.rl_train if n_gathered is None else task.rl_train[:int(n_gathered)])
    raw = [RawPrompt(f"What is {_respace(p.expression, rng)}?", "gathered") for p in logged]
    again = rng.choice(len(logged), size=int(round(repeat_share * len(logged))), replace=False)
    raw += [RawPrompt(f"What is {_respace(logged[i].expression, rng)}?", "gathered") for i in again]
    if n_generated:
        # another draw from the task's generator: it knows nothing of the log or of held-out questions
        gen = fact_chain_problems(int(n_generated), seed=int(rng.integers(2**31)), n_ops=2)
        raw += [RawPrompt(p.question, "generated") for p in gen]
    order = rng.permutation(len(raw))
    return [raw[i] for i in order]


# ----------------------------------------------------------------------------- 2. deduplicate
_QUESTION = re.compile(r"^\s*what\s+is\s+(.+?)\s*\?\s*$", re.IGNORECASE)


def normalize_question(text: str) -> ArithProblem:
    """Parse ``What is <expression>?`` (any spacing, any case) into its canonical problem."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    m = _QUESTION.match(text)
    if m is None:
        raise ValueError(f"not a question of the form 'What is <expression>?': {text!r}")
    return ArithProblem.from_expression(m.group(1))


def dedup_prompts(raw: Sequence[RawPrompt], exclude: Sequence[ArithProblem] = ()) -> tuple[list, dict]:
    """Unique problems of ``raw`` in first-seen order, without any in ``exclude`` (held-out questions).

    Returns ``(kept, stats)``: ``kept`` a list of ``(problem, source)``; ``stats``: ``raw``,
    ``exact_duplicates`` (same text), ``spacing_duplicates`` (same problem, other text),
    ``decontaminated`` (dropped as held-out) and ``kept``.
    """
    if len(raw) == 0:
        raise ValueError("raw must hold at least one prompt")
    banned = {p.expression for p in exclude}
    seen_text: set = set()
    seen_expr: set = set()
    kept: list = []
    stats = {"raw": len(raw), "exact_duplicates": 0, "spacing_duplicates": 0, "decontaminated": 0}
    for r in raw:
        if r.text in seen_text:
            stats["exact_duplicates"] += 1
            continue
        seen_text.add(r.text)
        prob = normalize_question(r.text)
        if prob.expression in seen_expr:
            stats["spacing_duplicates"] += 1
            continue
        seen_expr.add(prob.expression)
        if prob.expression in banned:
            stats["decontaminated"] += 1
            continue
        kept.append((prob, r.source))
    stats["kept"] = len(kept)
    return kept, stats


# ----------------------------------------------------------------------------- 3. cluster
FEATURES = ("op1 +", "op1 -", "op1 *", "op2 +", "op2 -", "op2 *", "right step first",
            "log max operand", "log answer")


def prompt_features(problems: Sequence[ArithProblem]) -> np.ndarray:
    """(n, len(:data:`FEATURES`)) features of two-step problems: one-hot first and second operator,
    whether precedence makes the right-hand step come first, log(1 + largest operand) and
    log(1 + |answer|)."""
    rows = []
    for p in problems:
        toks = p.expression.split(" ")  # canonical form: numbers and operators separated by spaces
        if len(toks) != 5:
            raise ValueError(f"expected a two-step problem, got {p.expression!r}")
        a, o1, b, o2, c = int(toks[0]), toks[1], int(toks[2]), toks[3], int(toks[4])
        right_first = float(o2 == "*" and o1 != "*")
        rows.append([o1 == "+", o1 == "-", o1 == "*", o2 == "+", o2 == "-", o2 == "*", right_first,
                     np.log1p(max(a, b, c)), np.log1p(abs(p.answer))])
    return np.asarray(rows, dtype=float)


def cluster_prompts(problems: Sequence[ArithProblem], n_clusters: int = 8, seed: int = 0) -> np.ndarray:
    """Cluster labels (n,) from k-means on the standardised :func:`prompt_features`
    (``sklearn.cluster.KMeans``, ``n_init=4``, seeded)."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be an int >= 1, got {n_clusters!r}")
    if len(problems) < n_clusters:
        raise ValueError(f"need at least n_clusters={n_clusters} problems, got {len(problems)}")
    x = StandardScaler().fit_transform(prompt_features(problems))
    km = KMeans(n_clusters=int(n_clusters), n_init=4, random_state=int(seed))
    return km.fit_predict(x).astype(int)


# ----------------------------------------------------------------------------- 4. stratified sample
def allocate(sizes: Sequence[int], n: int) -> np.ndarray:
    """How many to draw from each stratum: as equal as possible, never more than a stratum holds
    (water-filling), summing to ``n``."""
    sizes = np.asarray(sizes, dtype=int)
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 0).any():
        raise ValueError("sizes must be a non-empty 1-D list of counts >= 0")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= sizes.sum():
        raise ValueError(f"n must be an int in [0, {int(sizes.sum())}], got {n!r}")
    take = np.zeros_like(sizes)
    left = int(n)
    while left > 0:
        open_ = np.flatnonzero(take < sizes)
        share = max(1, left // len(open_))
        for k in open_:
            add = min(share, sizes[k] - take[k], left)
            take[k] += add
            left -= add
            if left == 0:
                break
    return take


def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` items drawn without replacement, :func:`allocate`'d equally over the
    clusters in ``labels`` (random within each cluster, seeded), sorted."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("labels must be 1-D")
    rng = np.random.default_rng(seed)
    ks = np.unique(labels)
    take = allocate([int((labels == k).sum()) for k in ks], n)
    idx = [rng.choice(np.flatnonzero(labels == k), size=t, replace=False) for k, t in zip(ks, take)]
    return np.sort(np.concatenate(idx)).astype(int)


# ----------------------------------------------------------------------------- 5. pairs
@dataclasses.dataclass(frozen=True)
class JudgedGroup:
    """One problem's sampled answers, judged: ``right``/``wrong`` are the distinct
    ``(completion ids, text)`` pairs the verifier accepts/rejects, sorted; ``n_right`` counts the
    right answers among all ``group_size`` samples (repeats included)."""

    index: int
    prompt_ids: tuple
    right: list
    wrong: list
    n_right: int


def judged_groups(model, tokenizer, problems: Sequence[ArithProblem], group_size: int,
                  max_new_tokens: int = 32, seed: int = 0, batch_size: int = 64):
    """Sample ``group_size`` answers per problem from ``model`` (temperature 1, one torch
    generator seeded ``seed``, ``batch_size`` problems at a time) and judge each with the
    verifier; yields one :class:`JudgedGroup` per problem, in order. The pair builders of
    Part 4 (:func:`build_pairs`) and Part 8 (:func:`lib.align.reward.verifier_pairs`) share it."""
    import torch

    from lib.align.tasks import encode_prompts
    from lib.llm.generate import sample_groups

    probs = list(problems)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    ids = encode_prompts(tokenizer, probs)
    for s in range(0, len(probs), batch_size):
        with torch.no_grad():
            out, _, cmask, n = sample_groups(model, ids[s:s + batch_size], group_size, max_new_tokens,
                                             tokenizer.eos_id, generator=gen)
        comps = [tuple(row[:int(m.sum())]) for row, m in zip(out[:, n:].tolist(), cmask)]
        for k in range(len(comps) // group_size):
            i = s + k
            group = comps[k * group_size:(k + 1) * group_size]
            texts = [tokenizer.decode(c, skip_special_tokens=True) for c in group]
            ok = [verify_answer(probs[i], t) for t in texts]
            yield JudgedGroup(i, tuple(ids[i]),
                              sorted({(c, t) for c, t, o in zip(group, texts, ok) if o}),
                              sorted({(c, t) for c, t, o in zip(group, texts, ok) if not o}),
                              int(sum(ok)))


def build_pairs(model, tokenizer, problems: Sequence[ArithProblem], group_size: int = 4,
                max_new_tokens: int = 32, seed: int = 0, clusters=None, batch_size: int = 64) -> tuple[list, dict]:
    """Pairs from the model's own answers (module docstring, step 5).

    Samples ``group_size`` completions per problem at temperature 1 (seeded ``seed``); for a
    problem with right and wrong answers, the chosen and the rejected are drawn at random among
    the distinct right and distinct wrong ones. ``clusters``: the cluster of each problem, stored
    in the pairs. Returns ``(pairs, stats)``; ``stats``: ``prompts``, ``answers``, ``right_share``
    (of all sampled answers), ``all_right``, ``all_wrong`` (prompts without a pair) and ``pairs``.
    """
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an int >= 2, got {group_size!r}")
    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    if clusters is not None and len(clusters) != len(probs):
        raise ValueError(f"clusters has {len(clusters)} labels for {len(probs)} problems")
    rng = np.random.default_rng(seed)
    pairs, n_right, all_right, all_wrong = [], 0, 0, 0
    for g in judged_groups(model, tokenizer, probs, group_size, max_new_tokens, seed, batch_size):
        n_right += g.n_right
        if not g.wrong:
            all_right += 1
            continue
        if not g.right:
            all_wrong += 1
            continue
        cw = g.right[int(rng.integers(len(g.right)))]
        cl = g.wrong[int(rng.integers(len(g.wrong)))]
        pairs.append(PreferencePair(probs[g.index], g.prompt_ids, cw[0], cl[0], cw[1], cl[1],
                                    -1 if clusters is None else int(clusters[g.index])))
    stats = {"prompts": len(probs), "answers": len(probs) * group_size,
             "right_share": n_right / (len(probs) * group_size), "all_right": all_right,
             "all_wrong": all_wrong, "pairs": len(pairs)}
    return pairs, stats


# ----------------------------------------------------------------------------- 6. noise
def add_label_noise(pairs: Sequence[PreferencePair], share: float, seed: int = 0) -> list[PreferencePair]:
    """A copy of ``pairs`` with chosen and rejected swapped in exactly ``round(share * len(pairs))``
    of them (drawn without replacement, seeded), each marked ``flipped``."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ValueError(f"share must be a number in [0, 1], got {share!r}")
    out = list(pairs)
    k = int(round(share * len(out)))
    for i in np.random.default_rng(seed).choice(len(out), size=k, replace=False):
        out[int(i)] = out[int(i)].swapped()
    return out


# ----------------------------------------------------------------------------- invariants
def check_pairs(pairs: Sequence[PreferencePair], n: int | None = None, noise_share: float | None = None) -> None:
    """Raise ``ValueError`` unless: every prompt occurs once; chosen and rejected differ and are
    non-empty; without noise the chosen answer is the right one and the rejected the wrong one
    (with noise, the flagged pairs the other way round); ``len(pairs) == n`` when given; the flagged
    share is exactly ``round(noise_share * len(pairs))`` when given."""
    if len(pairs) == 0:
        raise ValueError("no pairs")
    exprs = [p.problem.expression for p in pairs]
    if len(set(exprs)) != len(exprs):
        dup = sorted({e for e in exprs if exprs.count(e) > 1})[:3]
        raise ValueError(f"a prompt occurs more than once: {dup}")
    for p in pairs:
        if not p.chosen_ids or not p.rejected_ids:
            raise ValueError(f"empty completion in the pair for {p.problem.expression!r}")
        if p.chosen_ids == p.rejected_ids or p.chosen_text == p.rejected_text:
            raise ValueError(f"chosen equals rejected for {p.problem.expression!r}")
        right = verify_answer(p.problem, p.chosen_text), verify_answer(p.problem, p.rejected_text)
        if right != ((False, True) if p.flipped else (True, False)):
            raise ValueError(f"labels disagree with the verifier for {p.problem.expression!r}")
    if n is not None and len(pairs) != n:
        raise ValueError(f"expected {n} pairs, got {len(pairs)}")
    if noise_share is not None:
        k = sum(p.flipped for p in pairs)
        if k != int(round(noise_share * len(pairs))):
            raise ValueError(f"{k} flipped pairs, expected round({noise_share} * {len(pairs)})")


@dataclasses.dataclass
class PreferenceData:
    """What :func:`make_preference_data` returns: the train and evaluation pairs and every
    intermediate product (for the charts)."""

    raw: list
    kept: list
    dedup_stats: dict
    labels: np.ndarray
    sample: np.ndarray
    train: list
    eval: list
    pair_stats: dict
    noise_share: float


def make_preference_data(model, tokenizer, task, n_prompts: int = 320, n_generated: int = 300,
                         n_clusters: int = 8, eval_share: float = 0.25, noise_share: float = 0.1,
                         group_size: int = 4, seed: int = 0) -> PreferenceData:
    """The whole pipeline (module docstring) with one seed: ``n_prompts`` stratified prompts; the
    pairs of an ``eval_share`` of the sampled prompts (drawn at random) are kept clean for
    evaluation; the rest are the training pairs, with ``noise_share`` of their labels swapped."""
    if not 0 < eval_share < 1:
        raise ValueError(f"eval_share must be in (0, 1), got {eval_share!r}")
    raw = gather_prompts(task, n_generated=n_generated, seed=seed)
    kept, dstats = dedup_prompts(raw, exclude=task.held_out)
    probs = [p for p, _ in kept]
    labels = cluster_prompts(probs, n_clusters, seed=seed)
    sample = stratified_sample(labels, n_prompts, seed=seed + 1)
    pairs, pstats = build_pairs(model, tokenizer, [probs[i] for i in sample], group_size=group_size,
                                seed=seed + 2, clusters=labels[sample])
    rng = np.random.default_rng(seed + 3)
    is_eval = np.zeros(len(pairs), dtype=bool)
    is_eval[rng.choice(len(pairs), size=int(round(eval_share * len(pairs))), replace=False)] = True
    ev = [p for p, e in zip(pairs, is_eval) if e]
    train = add_label_noise([p for p, e in zip(pairs, is_eval) if not e], noise_share, seed=seed + 4)
    check_pairs(train, noise_share=noise_share)
    check_pairs(ev, noise_share=0.0)
    return PreferenceData(raw, kept, dstats, labels, sample, train, ev, pstats, float(noise_share))


# ----------------------------------------------------------------------------- shipping
PAIRS_NAME = "dpo-preference-pairs"


def pairs_to_json(pairs: Sequence[PreferencePair]) -> list[dict]:
    """Plain-JSON rows of ``pairs`` (the problem as its expression)."""
    return [{"expression": p.problem.expression, "prompt_ids": list(p.prompt_ids),
             "chosen_ids": list(p.chosen_ids), "rejected_ids": list(p.rejected_ids),
             "chosen_text": p.chosen_text, "rejected_text": p.rejected_text, "cluster": p.cluster,
             "flipped": p.flipped} for p in pairs]


def pairs_from_json(rows: Sequence[dict]) -> list[PreferencePair]:
    """Inverse of :func:`pairs_to_json`."""
    out = []
    for r in rows:
        out.append(PreferencePair(ArithProblem.from_expression(r["expression"]), tuple(r["prompt_ids"]),
                                  tuple(r["chosen_ids"]), tuple(r["rejected_ids"]), r["chosen_text"],
                                  r["rejected_text"], int(r["cluster"]), bool(r["flipped"])))
    return out


def load_pairs(folder=None) -> tuple[list, list, dict]:
    """The shipped preference pairs (``data/checkpoints/dpo-preference-pairs``, made by
    ``python -m lib.align.dpo``): ``(train, eval, meta)``, checked with :func:`check_pairs`."""
    import json
    import pathlib

    from lib.llm.checkpoint import CHECKPOINT_DIR

    folder = pathlib.Path(folder) if folder is not None else CHECKPOINT_DIR / PAIRS_NAME
    data = json.loads((folder / "pairs.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    train, ev = pairs_from_json(data["train"]), pairs_from_json(data["eval"])
    check_pairs(train, noise_share=meta["noise_share"])
    check_pairs(ev, noise_share=0.0)
    return train, ev, meta


__all__ = ["SOURCES", "RawPrompt", "PreferencePair", "gather_prompts", "normalize_question", "dedup_prompts",
           "FEATURES", "prompt_features", "cluster_prompts", "allocate", "stratified_sample", "build_pairs",
           "add_label_noise", "check_pairs", "PreferenceData", "make_preference_data", "PAIRS_NAME", "pairs_to_json",
           "pairs_from_json", "load_pairs"]
