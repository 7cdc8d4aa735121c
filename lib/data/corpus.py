"""The book's pretraining corpus: small, generated, regular text that a ~1M-parameter model can learn.

Four kinds of text, all generated from a seed (no downloads):

* **arithmetic** — multi-step problems such as ``What is 3 + 4 * 2 - 5?`` with a direct
  answer (``The answer is 6.``) and a step-by-step answer
  (``4 * 2 = 8. 3 + 8 = 11. 11 - 5 = 6. The answer is 6.``). Every step is machine-checkable:
  :func:`parse_steps`, :func:`check_steps`, :func:`first_error`, :func:`parse_answer` and
  :func:`verify_answer` are the verifiers later chapters build reward models on.
  :func:`arithmetic_facts` lists all 674 one-step problems; :func:`fact_chain_problems` draws
  multi-step problems made only of such facts (the GRPO section's task).
* **facts** — short sentences (English and Chinese) about a generated :class:`World` of people
  and cities; the world is kept as structured data (:meth:`World.query`, :meth:`World.facts`,
  :meth:`World.document`) for knowledge probing and retrieval.
* **phrases** — English/Chinese phrase pairs (:data:`PHRASES`) so that Chinese tokenisation is
  part of the story.
* **chat** — instruction/response pairs in a messages format (:func:`chat_pairs`) for
  supervised fine-tuning; the pretraining text uses a plain ``Q:``/``A:`` format instead.

:func:`build_corpus` returns the pretraining train/validation splits (lists of documents);
:func:`corpus_stats` counts documents, characters, bytes and (optionally) tokens per kind.

Topics live in their own modules: :mod:`lib.data.arithmetic`, :mod:`lib.data.verify`,
:mod:`lib.data.world`, :mod:`lib.data.chat`; this one assembles them.

Book: seed-5 (the tokenizer's training text), seed-8 (pretraining).
"""
from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np

from .arithmetic import ArithProblem, arithmetic_problems
from .chat import PHRASES
from .world import World, make_world



@dataclasses.dataclass
class Corpus:
    """Pretraining documents. ``train``/``val`` are lists of documents (strings) and
    ``train_kinds``/``val_kinds`` say which generator made each one."""

    train: list[str]
    val: list[str]
    train_kinds: list[str]
    val_kinds: list[str]
    world: World
    seed: int

    def text(self, split: str = "train", sep: str = "\n\n") -> str:
        """One string of a split's documents joined by ``sep`` (a training loop will usually
        put an end-of-text token between documents instead)."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return sep.join(self.train if split == "train" else self.val)

    def sha256(self) -> str:
        """Fingerprint of both splits (recorded in the tokenizer's sidecar)."""
        h = hashlib.sha256()
        for doc in self.train + ["\x00split\x00"] + self.val:
            h.update(doc.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


def _fact_doc(world: World, rng: np.random.Generator) -> str:
    """A few English facts (random people, relations and templates) in one paragraph."""
    facts = world._facts_cached()
    idx = rng.choice(len(facts), size=int(rng.integers(3, 7)), replace=False)
    return " ".join(world.sentence(facts[i], "en", int(rng.integers(3))) for i in idx)


def _person_doc(world: World, rng: np.random.Generator) -> str:
    name = list(world.people)[int(rng.integers(len(world.people)))]
    lang = "zh" if rng.random() < 0.25 else "en"
    facts = [f for f in world._facts_cached() if f.subject == name]
    order = rng.permutation(len(facts))
    sep = "" if lang == "zh" else " "
    return sep.join(world.sentence(facts[i], lang, int(rng.integers(3))) for i in order)


def _qa_doc(world: World, rng: np.random.Generator) -> str:
    facts = world._facts_cached()
    lines = []
    for i in rng.choice(len(facts), size=int(rng.integers(1, 4)), replace=False):
        q, a = world.question(facts[i])
        lines.append(f"Q: {q}\nA: {a}")
    return "\n".join(lines)


def _arith_doc(p: ArithProblem, rng: np.random.Generator) -> str:
    answer = p.cot_answer if rng.random() < 0.7 else p.direct_answer
    return f"Q: {p.question}\nA: {answer}"


def _phrase_doc(rng: np.random.Generator) -> str:
    lines = []
    for i in rng.choice(len(PHRASES), size=int(rng.integers(1, 4)), replace=False):
        en, zh = PHRASES[i]
        lines.append(f"English: {en}\nChinese: {zh}" if rng.random() < 0.5 else f"Chinese: {zh}\nEnglish: {en}")
    return "\n".join(lines)


#: Documents per kind in the training split (the validation split is ``val_fraction`` of it).
DEFAULT_MIX = {"arithmetic": 9000, "facts": 3500, "person": 1500, "qa": 2500, "phrases": 2000}


def build_corpus(seed: int = 0, scale: float = 1.0, val_fraction: float = 0.05,
                 world: World | None = None) -> Corpus:
    """The pretraining corpus: train/validation documents, shuffled, from ``seed``.

    ``scale`` multiplies the document counts of :data:`DEFAULT_MIX` (``scale=1`` gives about
    1.3 M characters of training text). The world is ``make_world(seed)`` unless given.
    Validation arithmetic problems never occur in the training split; facts are about the
    same world (the model is meant to learn them).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(scale, (int, float)) or not 0 < scale <= 10:
        raise ValueError(f"scale must be in (0, 10], got {scale!r}")
    if not 0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5), got {val_fraction!r}")
    world = world if world is not None else make_world(seed)
    rng = np.random.default_rng([int(seed), 2024])
    splits = {}
    used_expr: set[str] = set()
    for split, frac in (("train", 1.0), ("val", val_fraction)):
        docs, kinds = [], []
        for kind, count in DEFAULT_MIX.items():
            k = max(1, int(round(count * scale * frac)))
            if kind == "arithmetic":
                probs = arithmetic_problems(k, rng, exclude=used_expr)
                used_expr.update(p.expression for p in probs)
                docs += [_arith_doc(p, rng) for p in probs]
            elif kind == "facts":
                docs += [_fact_doc(world, rng) for _ in range(k)]
            elif kind == "person":
                docs += [_person_doc(world, rng) for _ in range(k)]
            elif kind == "qa":
                docs += [_qa_doc(world, rng) for _ in range(k)]
            else:
                docs += [_phrase_doc(rng) for _ in range(k)]
            kinds += [kind] * k
        order = rng.permutation(len(docs))
        splits[split] = ([docs[i] for i in order], [kinds[i] for i in order])
    return Corpus(splits["train"][0], splits["val"][0], splits["train"][1], splits["val"][1], world, int(seed))


def corpus_stats(corpus: Corpus | None = None, tokenizer=None) -> dict:
    """Statistics per split and kind: documents, characters, UTF-8 bytes, CJK characters and,
    when ``tokenizer`` (anything with ``encode(str) -> list[int]``) is given, tokens.

    Returns ``{"train": {"all": {...}, "<kind>": {...}}, "val": {...}}``.
    """
    corpus = corpus if corpus is not None else build_corpus(0)
    if not isinstance(corpus, Corpus):
        raise TypeError(f"corpus must be a Corpus, got {type(corpus).__name__}")
    cjk = re.compile(r"[\u4e00-\u9fff]")
    out: dict = {}
    for split, docs, kinds in (("train", corpus.train, corpus.train_kinds), ("val", corpus.val, corpus.val_kinds)):
        table: dict = {}
        for kind in ["all"] + sorted(set(kinds)):
            sel = [d for d, k in zip(docs, kinds) if kind == "all" or k == kind]
            row = {
                "documents": len(sel),
                "characters": sum(len(d) for d in sel),
                "bytes": sum(len(d.encode("utf-8")) for d in sel),
                "cjk_characters": sum(len(cjk.findall(d)) for d in sel),
            }
            if tokenizer is not None:
                row["tokens"] = sum(len(tokenizer.encode(d)) for d in sel)
                row["bytes_per_token"] = row["bytes"] / max(row["tokens"], 1)
            table[kind] = row
        out[split] = table
    return out


__all__ = ["Corpus", "DEFAULT_MIX", "build_corpus", "corpus_stats"]
