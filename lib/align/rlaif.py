"""Labels from an AI instead of people: RLAIF, Constitutional AI and rule-based rewards.

**RLAIF** (Lee et al. 2023; seed-90). An *AI labeller* orders the two answers of each pair in
place of a person. The tiny LM cannot be prompted to judge free text, so the labeller here is a
trained model of its own: a reward model trained on a different slice of verifier-labelled
pairs (the shipped ``reward-model``, :mod:`lib.align.reward`). :func:`ai_labels` lets it order
pairs; :func:`fit_probe_head` trains a reward model's head on frozen features
(:func:`pair_features`) with any labels, so reward models trained on AI labels and on verifier
labels can be compared on the same held-out pairs.

**Constitutional AI** (Bai et al. 2022; seed-91). Principles written as data
(:data:`PRINCIPLES`), a *critic* that names the principles an answer breaks (:func:`critique`),
a *reviser* that rewrites the answer to satisfy them (:func:`revise`), supervised fine-tuning on
the revised answers (SL-CAI) and preference pairs "revised ≻ original" for a preference stage
(:func:`cai_data`). The critic and reviser are **rule-based stand-ins** — a model of a million
parameters cannot critique text — written with their own parser; the violations are counted by
an **independent checker** (:func:`violations`) built on :mod:`lib.data`'s step parser.

**Rule-based rewards** (Mu et al. 2024; seed-92). Propositions graded per answer
(:func:`rule_features`: the principles, as 0/1 features), weights fitted by logistic regression
on a small labelled set, the fitted rule score added to the reward model's
(:func:`fit_rbr`, :class:`RBR`).

Book: seed-90, seed-91, seed-92.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import torch


# ----------------------------------------------------------------------------- RLAIF
@torch.no_grad()
def pair_features(model, pairs, pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """(N, 2, d) final hidden state at the last real token of the chosen and the rejected sequence
    of each pair, from ``model`` (a TinyLM or the backbone of a
    :class:`~lib.align.reward.RewardModel`): the features a reward head reads."""
    from lib.align.reward import RewardModel, _triples, last_token_index, pair_sequences

    lm = model.lm if isinstance(model, RewardModel) else model
    tr = _triples(pairs)
    was = lm.training
    lm.eval()
    out = []
    for s in range(0, len(tr), batch_size):
        ids, attn = pair_sequences(tr[s:s + batch_size], pad_id)
        h = lm(ids.to(lm.device), attention_mask=attn.to(lm.device), output_hidden_states=True).last_hidden_state
        h = h[torch.arange(h.shape[0]), last_token_index(attn).to(h.device)].float().cpu()
        B = len(tr[s:s + batch_size])
        out.append(torch.stack([h[:B], h[B:]], 1))
    lm.train(was)
    return torch.cat(out)


def ai_labels(judge, pairs, pad_id: int) -> np.ndarray:
    """(N,) 1 where the ``judge`` (a reward model) scores the pair's first answer (its
    ``chosen``) above the second, else 0 — the AI's preference label."""
    from lib.align.reward import pair_scores

    s = pair_scores(judge, pairs, pad_id)
    return (s[:, 0] > s[:, 1]).numpy().astype(int)


def relabel(pairs, labels) -> list:
    """The pairs oriented by ``labels``: kept where the label is 1, chosen and rejected swapped
    where it is 0 (``(prompt, chosen, rejected)`` triples)."""
    from lib.align.reward import _triples

    tr = _triples(pairs)
    lab = np.asarray(labels)
    if lab.shape != (len(tr),) or not np.isin(lab, (0, 1)).all():
        raise ValueError(f"labels must be {len(tr)} values in {{0, 1}}, got shape {lab.shape}")
    return [(p, c, r) if y == 1 else (p, r, c) for (p, c, r), y in zip(tr, lab)]


def fit_probe_head(features: torch.Tensor, labels=None, c: float = 1.0) -> torch.Tensor:
    """The Bradley–Terry head on frozen features: ``w`` (d,) maximising
    ``Σ log σ(±w·(h_a − h_b))`` with an L2 penalty (``c``: scikit-learn's inverse strength), where
    ``features`` (N, 2, d) holds the two answers of each pair and ``labels`` (N,) says whether the
    first is preferred (default all 1: the pairs are already oriented). With no intercept this *is*
    a reward head trained with the Bradley–Terry loss (scikit-learn's ``LogisticRegression`` on the
    differences, each pair entered in both orders so that the fit is symmetric)."""
    from sklearn.linear_model import LogisticRegression

    f = torch.as_tensor(features, dtype=torch.float64)
    if f.dim() != 3 or f.shape[1] != 2:
        raise ValueError(f"features must be (N, 2, d), got {tuple(f.shape)}")
    y = np.ones(f.shape[0], dtype=int) if labels is None else np.asarray(labels).astype(int)
    if y.shape != (f.shape[0],) or not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be {f.shape[0]} values in {{0, 1}}")
    if not c > 0:
        raise ValueError(f"c must be > 0, got {c!r}")
    d = (f[:, 0] - f[:, 1]).numpy()
    x = np.concatenate([d, -d])
    t = np.concatenate([y, 1 - y])
    lr = LogisticRegression(C=float(c), fit_intercept=False, max_iter=2000)
    lr.fit(x, t)
    return torch.tensor(lr.coef_[0], dtype=torch.float32)


def probe_reward_model(lm, head: torch.Tensor):
    """A :class:`~lib.align.reward.RewardModel` with a copy of ``lm`` as backbone and ``head`` as
    its weights (the frozen-feature reward model of :func:`fit_probe_head`)."""
    from lib.align.reward import RewardModel

    rm = RewardModel.from_lm(lm, head_std=0.0)
    if head.shape != (rm.config.d_model,):
        raise ValueError(f"head must be ({rm.config.d_model},), got {tuple(head.shape)}")
    with torch.no_grad():
        rm.head.weight.copy_(head[None])
    return rm.eval()


# ----------------------------------------------------------------------------- Constitutional AI
@dataclasses.dataclass(frozen=True)
class Principle:
    """One written principle: a short ``name`` and the ``text`` a critic applies."""

    name: str
    text: str


#: The constitution of the book's arithmetic assistant (what the tiny LM actually violates).
PRINCIPLES: tuple[Principle, ...] = (
    Principle("true equations", "Every equation you write must be true."),
    Principle("carry forward", "Each step after the first must use the result of the step before it."),
    Principle("answer from the work", "The answer you state must be the result of your last step."),
    Principle("one clean answer", "State the answer exactly once, as 'The answer is N.', and stop."),
)
PRINCIPLE_NAMES = tuple(p.name for p in PRINCIPLES)

# The critic's own parser (deliberately not lib.data's: the checker below uses that one).
_EQ = re.compile(r"(\d+)\s*([-+*])\s*(\d+)\s*=\s*(-?\d+)")
_ANS = re.compile(r"The answer is\s*(-?\d+)\s*\.")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _numbers(question_or_expression: str) -> set:
    return {int(x) for x in re.findall(r"\d+", question_or_expression)}


def critique(expression: str, text: str) -> list[tuple[str, str]]:
    """The rule-based critic: ``(principle name, what is wrong)`` for every principle of
    :data:`PRINCIPLES` that ``text`` (an answer to the problem ``expression``) breaks; ``[]``
    when it breaks none."""
    if not isinstance(text, str) or not isinstance(expression, str):
        raise TypeError("expression and text must be str")
    eqs = [(int(a), o, int(b), int(c)) for a, o, b, c in _EQ.findall(text)]
    out = []
    bad = [f"{a} {o} {b} = {c}" for a, o, b, c in eqs if _OPS[o](a, b) != c]
    if bad:
        out.append(("true equations", "false: " + "; ".join(bad)))
    for k in range(1, len(eqs)):
        if eqs[k - 1][3] not in (eqs[k][0], eqs[k][2]):
            out.append(("carry forward", f"step {k + 1} does not use {eqs[k - 1][3]}"))
            break
    answers = _ANS.findall(text)
    if eqs and answers and int(answers[-1]) != eqs[-1][3]:
        out.append(("answer from the work", f"answer {answers[-1]} but the last step gives {eqs[-1][3]}"))
    tail = _ANS.split(text)[-1].strip() if answers else text
    if len(answers) != 1 or tail or not eqs:
        out.append(("one clean answer", f"{len(answers)} stated answers" + (", text after it" if tail else "")))
    return out


def revise(expression: str, text: str) -> str:
    """The rule-based reviser: rewrite ``text`` to satisfy the principles the critic names.

    Walks the written steps in order: a step after the first whose operands miss the previous
    result gets it in place of the operand that is not a number of the question (or, when the
    previous result was wrong and is used, the corrected value instead); every result is
    recomputed; the answer becomes the last result, stated once. Steps that chose the wrong
    operands are kept (no principle forbids them), so a revised answer can still be wrong on the
    task. Text without any step is returned unchanged."""
    eqs = [[int(a), o, int(b), int(c)] for a, o, b, c in _EQ.findall(text)]
    if not eqs:
        return text
    qnums = _numbers(expression)
    for k, e in enumerate(eqs):
        if k:
            written, fixed = eqs[k - 1][3], eqs[k - 1][4]
            if e[0] == written or e[2] == written:
                j = 0 if e[0] == written else 2
                e[j] = fixed
            elif fixed not in (e[0], e[2]):
                j = 2 if e[0] in qnums and e[2] not in qnums else 0
                e[j] = fixed
        e.append(_OPS[e[1]](e[0], e[2]))                # e[4]: the true result
    steps = ". ".join(f"{a} {o} {b} = {r}" for a, o, b, _, r in eqs)
    return f" {steps}. The answer is {eqs[-1][4]}."


def violations(problem, text: str) -> dict[str, bool]:
    """The independent checker: for each principle name, whether ``text`` violates it, judged with
    :mod:`lib.data`'s parser (:func:`lib.data.parse_steps`, :func:`lib.data.parse_answer`,
    ``Step.correct_arithmetic``) — code that shares nothing with the critic."""
    from lib.data import parse_answer, parse_steps

    steps = parse_steps(text)
    ans = parse_answer(text)
    n_ans = len(re.findall(r"answer is", text))
    after = text.rsplit("answer is", 1)[-1] if n_ans else ""
    clean_end = bool(re.fullmatch(r"\s*-?\d+\.\s*", after))
    return {
        "true equations": any(not s.correct_arithmetic for s in steps),
        "carry forward": any(steps[k - 1].result not in (steps[k].a, steps[k].b) for k in range(1, len(steps))),
        "answer from the work": bool(steps) and ans is not None and ans != steps[-1].result,
        "one clean answer": n_ans != 1 or not clean_end or not steps,
    }


@torch.no_grad()
def sample_answers(model, tokenizer, problems, samples: int, seed: int, max_new_tokens: int = 32,
                   batch_size: int = 64) -> list[list[tuple[tuple, str]]]:
    """``samples`` answers per problem from ``model`` (temperature 1, seeded): per problem a list
    of ``(completion token ids, text)``."""
    from lib.align.tasks import encode_prompts
    from lib.llm.generate import sample_groups

    probs = list(problems)
    if not probs:
        raise ValueError("need at least one problem")
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))
    ids = encode_prompts(tokenizer, probs)
    out: list = []
    for s in range(0, len(probs), batch_size):
        seq, _, cm, n = sample_groups(model, ids[s:s + batch_size], samples, max_new_tokens,
                                      tokenizer.eos_id, generator=gen)
        comps = [tuple(r[:int(m.sum())]) for r, m in zip(seq[:, n:].tolist(), cm)]
        for k in range(len(comps) // samples):
            group = comps[k * samples:(k + 1) * samples]
            out.append([(c, tokenizer.decode(c, skip_special_tokens=True)) for c in group])
    return out


def violation_rates(problems, answers) -> dict:
    """Share of answers violating each principle (independent checker) and ``"any"``: the share
    violating at least one; ``answers`` as returned by :func:`sample_answers`; also the per-answer
    0/1 matrix ``flags`` (answers, principles)."""
    flags = np.array([[violations(p, t)[n] for n in PRINCIPLE_NAMES] for p, group in zip(problems, answers)
                      for _, t in group], dtype=float)
    out = {n: float(flags[:, j].mean()) for j, n in enumerate(PRINCIPLE_NAMES)}
    out["any"] = float(flags.max(1).mean())
    out["flags"] = flags
    return out


def cai_data(problems, answers, tokenizer) -> dict:
    """Critique → revise on sampled ``answers``: ``sl`` (SL-CAI examples ``(prompt ids,
    completion ids + EOS)``: every final answer, revised where the critic found a violation, kept
    where it found none; an answer the reviser cannot repair — no equation written — is left
    out), ``pairs`` (revised ≻ original triples, one per revised answer), ``critiques`` (per
    answer the list of :func:`critique` findings), ``n_revised`` and ``n_unrepairable``."""
    from lib.align.tasks import encode_prompts

    prompts = encode_prompts(tokenizer, problems)
    sl, pairs, crits, unrepairable = [], [], [], 0
    for p, prompt, group in zip(problems, prompts, answers):
        for ids, text in group:
            found = critique(p.expression, text)
            crits.append(found)
            if not found:
                sl.append((list(prompt), list(ids)))
                continue
            new = revise(p.expression, text)
            if new == text:                             # nothing the reviser can parse
                unrepairable += 1
                continue
            new_ids = tokenizer.encode(new) + [tokenizer.eos_id]
            sl.append((list(prompt), new_ids))
            if list(new_ids) != list(ids):
                pairs.append((list(prompt), new_ids, list(ids)))
    return {"sl": sl, "pairs": pairs, "critiques": crits, "n_revised": len(pairs),
            "n_unrepairable": unrepairable}


# ----------------------------------------------------------------------------- rule-based rewards
def rule_features(expression: str, text: str) -> np.ndarray:
    """The propositions of an answer as 0/1 features, one per principle (1 = satisfied, graded by
    the rule-based critic :func:`critique`)."""
    broken = {name for name, _ in critique(expression, text)}
    return np.array([0.0 if n in broken else 1.0 for n in PRINCIPLE_NAMES])


@dataclasses.dataclass
class RBR:
    """A fitted rule-based reward: ``weights`` (one per proposition) and ``bias`` of the rules
    alone, and the combination with the reward model: ``rm_weight``, ``combo_weights``,
    ``combo_bias`` (all from logistic regression on the labelled set)."""

    weights: np.ndarray
    bias: float
    rm_weight: float
    combo_weights: np.ndarray
    combo_bias: float

    def rule_score(self, features) -> np.ndarray:
        """The rules' reward (logit) of (N, P) features."""
        return np.asarray(features, float) @ self.weights + self.bias

    def combined(self, features, rm_scores) -> np.ndarray:
        """Reward model + rules: ``rm_weight · r_RM + combo_weights · features + combo_bias``."""
        return self.rm_weight * np.asarray(rm_scores, float) + np.asarray(features, float) @ self.combo_weights \
            + self.combo_bias


def fit_rbr(features, rm_scores, labels, c: float = 1.0) -> RBR:
    """Fit the rule weights on a small labelled set: logistic regression (scikit-learn, L2 with
    inverse strength ``c``) of the 0/1 ``labels`` (N,) on the (N, P) rule ``features`` alone, and
    on the features plus the reward model's (normalised) scores ``rm_scores`` (N,)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, float)
    r = np.asarray(rm_scores, float).ravel()
    y = np.asarray(labels).astype(int)
    if x.ndim != 2 or x.shape[0] != r.shape[0] or y.shape != r.shape:
        raise ValueError(f"need features (N, P), rm_scores (N,), labels (N,); got {x.shape}, {r.shape}, {y.shape}")
    if len(np.unique(y)) != 2:
        raise ValueError("labels must contain both classes")
    alone = LogisticRegression(C=float(c), max_iter=2000).fit(x, y)
    combo = LogisticRegression(C=float(c), max_iter=2000).fit(np.c_[r, x], y)
    return RBR(alone.coef_[0].copy(), float(alone.intercept_[0]), float(combo.coef_[0][0]),
               combo.coef_[0][1:].copy(), float(combo.intercept_[0]))


__all__ = ["pair_features", "ai_labels", "relabel", "fit_probe_head", "probe_reward_model", "Principle",
           "PRINCIPLES", "PRINCIPLE_NAMES", "critique", "revise", "violations", "sample_answers",
           "violation_rates", "cai_data", "rule_features", "RBR", "fit_rbr"]
