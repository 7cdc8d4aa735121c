"""Retrieval-augmented generation (RAG) over the book's fact world.

Book: seed-31 (RAG). The function-calling section (seed-32, :mod:`lib.toolcall`) reuses the
knowledge questions and their answer check.

Sections, top to bottom:

1. **Knowledge base** — :func:`world_documents` writes one document per person (its facts in a
   random order and wording) and per city; :func:`chunk_documents` cuts them into passages of a few
   sentences (:class:`Chunk`, which remembers the facts it states, so relevance is exact).
2. **Terms** — :func:`terms`: lower-cased word tokens (``"Mara's"`` -> ``["mara", "s"]``).
3. **BM25** — :class:`BM25` (Okapi), identical to ``rank_bm25.BM25Okapi`` with its defaults
   ``k1=1.5, b=0.75, epsilon=0.25``: ``idf = ln((N - n + 0.5) / (n + 0.5))``, and a term whose idf
   is negative (in more than half of the passages) gets ``epsilon * mean idf`` instead, the mean
   taken over every term of the vocabulary *before* that floor (rank_bm25's convention).
4. **TF-IDF** — :class:`TfIdf`, scikit-learn's ``TfidfVectorizer`` defaults (raw counts,
   ``idf = ln((1 + N) / (1 + n)) + 1``, rows scaled to unit length) and cosine scores.
5. **Evaluation** — :func:`knowledge_questions`, :func:`recall_at_k`, :func:`answer_correct`.
6. **Reader** — prompts (:func:`reader_prompt`), answers with and without retrieval
   (:func:`answer_questions`), and the shipped fine-tune ``tiny-lm-rag``
   (``python -m lib.rag train``), which learned to answer from passages about worlds it never saw.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import re
import sys
import time
from typing import Sequence

import numpy as np

from lib.data.world import COLOURS, JOBS, PETS, RELATIONS, Fact, World, make_world
from lib.provenance import git_commit, machine

# ----------------------------------------------------------------------------- 1. knowledge base


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A retrieval passage: its ``text``, its ``subject`` and the ``facts`` it states."""

    text: str
    subject: str
    facts: tuple[Fact, ...]


def _check_world(world) -> World:
    if not isinstance(world, World):
        raise TypeError(f"world must be a lib.data.World, got {type(world).__name__}")
    return world


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def world_documents(world: World, seed=0) -> dict[str, list[tuple[str, Fact]]]:
    """``{subject: [(sentence, fact), ...]}``: every person's facts in a random order and wording
    (the corpus's English templates), then one sentence per city. Deterministic given ``seed``."""
    world = _check_world(world)
    rng = _rng(seed)
    docs: dict[str, list[tuple[str, Fact]]] = {}
    for f in world.facts():
        docs.setdefault(f.subject, []).append((world.sentence(f, "en", int(rng.integers(3))), f))
    for subject in world.people:
        order = rng.permutation(len(docs[subject]))
        docs[subject] = [docs[subject][i] for i in order]
    return docs


def chunk_documents(
    docs: dict[str, list[tuple[str, Fact]]], sentences_per_chunk: int = 2
) -> list[Chunk]:
    """Cut every document into consecutive passages of ``sentences_per_chunk`` sentences."""
    if (
        isinstance(sentences_per_chunk, bool)
        or not isinstance(sentences_per_chunk, int)
        or not 1 <= sentences_per_chunk <= 20
    ):
        raise ValueError(
            f"sentences_per_chunk must be an int in [1, 20], got {sentences_per_chunk!r}"
        )
    if not isinstance(docs, dict) or not docs:
        raise ValueError("docs must be a non-empty {subject: [(sentence, fact), ...]} dict")
    out = []
    for subject, sents in docs.items():
        for s in range(0, len(sents), sentences_per_chunk):
            part = sents[s : s + sentences_per_chunk]
            out.append(Chunk(" ".join(t for t, _ in part), subject, tuple(f for _, f in part)))
    return out


def knowledge_base(world: World, seed=0, sentences_per_chunk: int = 2) -> list[Chunk]:
    """:func:`world_documents` cut by :func:`chunk_documents`: the passages retrieval searches."""
    return chunk_documents(world_documents(world, seed), sentences_per_chunk)


# ----------------------------------------------------------------------------- 2. terms

_WORD = re.compile(r"\w+")


def terms(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (the analyser of both retrievers)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _passages(passages) -> list[list[str]]:
    if (
        isinstance(passages, (str, bytes))
        or not isinstance(passages, Sequence)
        or len(passages) == 0
    ):
        raise ValueError("passages must be a non-empty list of strings or Chunks")
    out = []
    for i, p in enumerate(passages):
        text = p.text if isinstance(p, Chunk) else p
        if not isinstance(text, str):
            raise TypeError(f"passage {i} must be a str or a Chunk, got {type(p).__name__}")
        out.append(terms(text))
    return out


def _query(query) -> list[str]:
    if isinstance(query, str):
        return terms(query)
    if isinstance(query, (list, tuple)) and all(isinstance(t, str) for t in query):
        return list(query)
    raise TypeError(f"query must be a str or a list of terms, got {type(query).__name__}")


# ----------------------------------------------------------------------------- 3. BM25


class BM25:
    """Okapi BM25 over ``passages`` (strings or :class:`Chunk`), rank_bm25's conventions.

    ``score(q, d) = sum_t idf(t) * f(t,d) (k1 + 1) / (f(t,d) + k1 (1 - b + b |d| / avgdl))``
    over the query's terms ``t``
    with ``f(t, d)`` the count of ``t`` in ``d``; a repeated query term counts once per occurrence;
    a term not in the index scores 0. ``k1`` (term-frequency saturation, typically 1.2–2) and
    ``b`` (length normalisation, 0–1) as in Robertson & Zaragoza (2009); ``epsilon`` is the idf
    floor factor.
    """

    def __init__(self, passages, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        if not (isinstance(k1, (int, float)) and k1 >= 0) or not (
            isinstance(b, (int, float)) and 0 <= b <= 1
        ):
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1!r}, b={b!r}")
        if not (isinstance(epsilon, (int, float)) and epsilon >= 0):
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
        docs = _passages(passages)
        self.k1, self.b, self.epsilon = float(k1), float(b), float(epsilon)
        self.n_docs = len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=float)
        self.avgdl = float(self.doc_len.mean())
        if self.avgdl == 0:
            raise ValueError("every passage is empty: nothing to index")
        self.tf: list[dict[str, int]] = []
        df: dict[str, int] = {}
        for d in docs:
            counts: dict[str, int] = {}
            for t in d:
                counts[t] = counts.get(t, 0) + 1
            self.tf.append(counts)
            for t in counts:
                df[t] = df.get(t, 0) + 1
        self.df = df
        raw = {t: math.log(self.n_docs - n + 0.5) - math.log(n + 0.5) for t, n in df.items()}
        floor = self.epsilon * (sum(raw.values()) / len(raw))
        self.idf = {t: (floor if v < 0 else v) for t, v in raw.items()}

    def term_scores(self, term: str) -> np.ndarray:
        """The contribution of one query term to every passage's score, shape (n_docs,)."""
        f = np.array([d.get(term, 0) for d in self.tf], dtype=float)
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avgdl)
        return self.idf.get(term, 0.0) * f * (self.k1 + 1) / (f + norm)

    def scores(self, query) -> np.ndarray:
        """BM25 score of every passage for ``query`` (a string or a list of terms): (n_docs,)."""
        out = np.zeros(self.n_docs)
        for t in _query(query):
            out += self.term_scores(t)
        return out


# ----------------------------------------------------------------------------- 4. TF-IDF


class TfIdf:
    """TF-IDF vectors with scikit-learn's ``TfidfVectorizer`` defaults and cosine scores."""

    def __init__(self, passages):
        docs = _passages(passages)
        vocab = sorted({t for d in docs for t in d})
        if not vocab:
            raise ValueError("every passage is empty: nothing to index")
        self.vocab = {t: i for i, t in enumerate(vocab)}
        counts = np.zeros((len(docs), len(vocab)))
        for i, d in enumerate(docs):
            for t in d:
                counts[i, self.vocab[t]] += 1
        df = (counts > 0).sum(0)
        self.idf = np.log((1 + len(docs)) / (1 + df)) + 1
        self.matrix = self._normalise(counts * self.idf)

    @staticmethod
    def _normalise(m: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(m, axis=-1, keepdims=True)
        return np.divide(m, n, out=np.zeros_like(m), where=n > 0)

    def vector(self, query) -> np.ndarray:
        """The query's unit TF-IDF vector (terms outside the vocabulary are dropped)."""
        v = np.zeros(len(self.vocab))
        for t in _query(query):
            if t in self.vocab:
                v[self.vocab[t]] += 1
        return self._normalise(v * self.idf)

    def scores(self, query) -> np.ndarray:
        """Cosine similarity of the query with every passage, shape (n_docs,)."""
        return self.matrix @ self.vector(query)


def top_k(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first (ties broken by the lower index)."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return np.argsort(-s, kind="stable")[:k]


# ----------------------------------------------------------------------------- 5. evaluation


def knowledge_questions(
    world: World, relations: Sequence[str] = RELATIONS
) -> list[tuple[str, Fact]]:
    """``(question, fact)`` for every person and relation of ``world`` (in the world's order)."""
    world = _check_world(world)
    bad = [r for r in relations if r not in RELATIONS]
    if bad or not relations:
        raise ValueError(
            f"relations must be a non-empty subset of {RELATIONS}, got {list(relations)}"
        )
    out = []
    for name in world.people:
        for r in relations:
            f = Fact(name, r, world.people[name][r])
            out.append((world.question(f)[0], f))
    return out


def relevant(chunks: Sequence[Chunk], fact: Fact) -> np.ndarray:
    """Boolean mask of the passages that state ``fact``."""
    return np.array([fact in c.facts for c in chunks], dtype=bool)


def recall_at_k(score_matrix, relevant_mask, ks: Sequence[int]) -> np.ndarray:
    """Share of queries with at least one relevant passage among their top ``k``, for each ``k``.

    ``score_matrix`` (queries, passages), ``relevant_mask`` bool of the same shape (each query needs
    at least one relevant passage). Ties are broken by the lower passage index (:func:`top_k`).
    """
    s = np.asarray(score_matrix, dtype=float)
    rel = np.asarray(relevant_mask)
    if s.ndim != 2 or s.shape != rel.shape:
        raise ValueError(
            f"scores and relevance must be (queries, passages) arrays of one shape, got "
            f"{s.shape} and {rel.shape}"
        )
    if rel.dtype != bool:
        raise TypeError(f"relevant_mask must be boolean, got {rel.dtype}")
    if not rel.any(1).all():
        raise ValueError("every query needs at least one relevant passage")
    order = np.argsort(-s, axis=1, kind="stable")
    hit_rank = np.take_along_axis(rel, order, 1).argmax(1)  # 0-based rank of the first relevant one
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"each k must be a positive int, got {k!r}")
        out.append(float((hit_rank < k).mean()))
    return np.array(out)


def _candidates(world: World, fact: Fact) -> list[str]:
    r = fact.relation
    if r == "city":
        return list(world.cities)
    if r == "friend":
        return [n for n in world.people if n != fact.subject]
    if r == "age":
        return [str(a) for a in range(0, 130)]
    return list({"job": JOBS, "pet": PETS, "colour": COLOURS}[r])


def answer_correct(world: World, fact: Fact, text: str) -> bool:
    """Is ``text`` a right answer about ``fact``? Among the values ``fact.relation`` can take in
    ``world`` (its cities, the other people, ages, jobs, pets, colours), exactly the true one must
    appear as a whole word: naming several candidates is not an answer."""
    world = _check_world(world)
    if not isinstance(fact, Fact) or fact.relation not in RELATIONS:
        raise TypeError(f"fact must be a person Fact with a relation in {RELATIONS}, got {fact!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = set(re.findall(r"\w+", text))
    named = {c for c in _candidates(world, fact) if c in words}
    return named == {fact.value}


# ----------------------------------------------------------------------------- 6. reader

#: The shipped reader checkpoint.
READER = "tiny-lm-rag"
#: Passages put in the reader's prompt.
READER_K = 3


def reader_prompt(question: str, passages: Sequence[str] | None) -> str:
    """``Context: p1 | p2 | p3\\nQ: question\\nA:``; no passages gives ``Context: none``."""
    if not isinstance(question, str) or not question:
        raise ValueError("question must be a non-empty str")
    if passages is not None and not all(isinstance(p, str) for p in passages):
        raise TypeError("passages must be a list of strings (or None)")
    ctx = " | ".join(passages) if passages else "none"
    return f"Context: {ctx}\nQ: {question}\nA:"


def retrieve(index, chunks: Sequence[Chunk], question: str, k: int = READER_K) -> list[Chunk]:
    """The ``k`` passages that ``index`` (:class:`BM25` or :class:`TfIdf`) ranks first."""
    if len(chunks) != getattr(index, "n_docs", len(getattr(index, "matrix", []))):
        raise ValueError("chunks must be the passages the index was built on")
    return [chunks[i] for i in top_k(index.scores(question), k)]


def reader_examples(
    tokenizer, n_worlds: int, seed: int = 0, no_context_share: float = 0.1, k: int = READER_K
) -> list[tuple[list[int], list[int]]]:
    """SFT pairs for the reader: every knowledge question of ``n_worlds`` fresh worlds (seeds
    ``10_000 + seed * 1000 + i``, never the pretraining world 0), prompt = BM25's top ``k`` passages
    + question, completion = the answer sentence + EOS; a share ``no_context_share`` of them without
    passages, so that the no-retrieval prompt is one the reader has seen."""
    rng = np.random.default_rng([seed, 31])
    out = []
    for i in range(n_worlds):
        world = make_world(10_000 + seed * 1000 + i)
        chunks = knowledge_base(world, rng)
        index = BM25(chunks)
        for q, f in knowledge_questions(world):
            ctx = (
                None
                if rng.random() < no_context_share
                else [c.text for c in retrieve(index, chunks, q, k)]
            )
            answer = " " + world.sentence(f, "en", 0)
            out.append(
                (
                    tokenizer.encode(reader_prompt(q, ctx)),
                    tokenizer.encode(answer) + [tokenizer.eos_id],
                )
            )
    return out


def answer_questions(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 16, batch_size: int = 64
) -> list[str]:
    """Greedy answers (decoded text, EOS dropped) of ``model`` to each prompt string."""
    import torch

    from lib.llm.generate import left_pad
    from lib.llm.generate import generate

    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty list of strings")
    out = []
    dev = next(model.parameters()).device
    for s in range(0, len(prompts), batch_size):
        ids, attn = left_pad(
            [tokenizer.encode(p) for p in prompts[s : s + batch_size]], tokenizer.eos_id
        )
        with torch.no_grad():
            gen = generate(
                model,
                ids.to(dev),
                max_new_tokens,
                eos_token_id=tokenizer.eos_id,
                attention_mask=attn.to(dev),
            )
        out += [
            tokenizer.decode(r, skip_special_tokens=True).strip()
            for r in gen[:, ids.shape[1] :].tolist()
        ]
    return out


def evaluate_reader(
    model,
    tokenizer,
    world: World,
    seed=0,
    k: int = READER_K,
    questions: Sequence[tuple[str, Fact]] | None = None,
) -> dict:
    """Answer ``world``'s knowledge questions without passages, with BM25's top ``k`` and with the
    passage that states the fact (oracle). Returns ``{"hits": {mode: bool array}, "accuracy":
    {mode: share}, "answers": {mode: [text]}}`` over the same questions (a paired comparison)."""
    chunks = knowledge_base(world, seed)
    index = BM25(chunks)
    qs = list(questions) if questions is not None else knowledge_questions(world)
    prompts = {
        "no retrieval": [reader_prompt(q, None) for q, _ in qs],
        "BM25 top-k": [
            reader_prompt(q, [c.text for c in retrieve(index, chunks, q, k)]) for q, _ in qs
        ],
        "oracle passage": [
            reader_prompt(q, [chunks[int(np.argmax(relevant(chunks, f)))].text]) for q, f in qs
        ],
    }
    res: dict = {"hits": {}, "accuracy": {}, "answers": {}}
    for mode, ps in prompts.items():
        ans = answer_questions(model, tokenizer, ps)
        hits = np.array([answer_correct(world, f, a) for a, (_, f) in zip(ans, qs)])
        res["hits"][mode], res["answers"][mode] = hits, ans
        res["accuracy"][mode] = float(hits.mean())
    return res


#: Worlds the shipped reader is evaluated on (neither the pretraining world nor a training one).
EVAL_WORLDS = (900_001, 900_002)


def make_reader(
    out=None,
    steps: int = 800,
    batch_size: int = 16,
    n_worlds: int = 60,
    seed: int = 0,
    command: str | None = None,
    progress: bool = True,
    init: str = "tiny-lm",
) -> dict:
    """Fine-tune ``init`` (default ``tiny-lm``; a second stage starts from ``tiny-lm-rag`` itself)
    into the reader; save it (default ``data/checkpoints/tiny-lm-rag``)."""
    from lib import seed_everything
    from lib.align.sft import SFTConfig, sft_train
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_meta, load_model, save_checkpoint
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer

    seed_everything(seed)
    tok = load_tokenizer()
    stages = []
    if init != "tiny-lm":
        prev = load_meta(init)
        stages = prev.get("stages", []) + [
            {k: prev.get(k) for k in ("command", "train_config", "base", "commit")}
        ]
    model = load_model(init)
    examples = reader_examples(tok, n_worlds, seed)
    cfg = SFTConfig(
        steps=steps, batch_size=batch_size, lr=1e-3, warmup_steps=min(50, steps), seed=seed
    )
    t0 = time.perf_counter()
    hist = sft_train(model, examples, tok.eos_id, cfg, progress=progress)
    train_s = time.perf_counter() - t0
    metrics = {
        f"world_{w}": evaluate_reader(model, tok, make_world(w), seed=w)["accuracy"]
        for w in EVAL_WORLDS
    }
    every = max(1, steps // 100)
    meta = {
        "name": READER,
        "description": "tiny-lm fine-tuned (completion-only SFT) to answer a knowledge question "
        f"from BM25's top-{READER_K} passages about a world it never saw (Part 5, RAG).",
        "base": init,
        "stages": stages,
        "seed": seed,
        "train_config": dataclasses.asdict(cfg),
        "data": {
            "builder": "lib.rag.reader_examples",
            "n_worlds": n_worlds,
            "examples": len(examples),
            "k": READER_K,
        },
        "tokenizer_sha256": tokenizer_sha256(),
        "metrics": {
            "accuracy": metrics,
            "train_time_s": round(train_s, 1),
            "final_loss": hist["loss"][-1],
            "note": "lib.rag.evaluate_reader(model, tok, make_world(w), seed=w): greedy accuracy "
            "on every knowledge question of fresh world w",
        },
        "history": {
            "step": hist["step"][::every],
            "loss": [round(x, 5) for x in hist["loss"][::every]],
        },
        "machine": machine(),
        "commit": git_commit(),
        "command": command or "python -m lib.rag train",
    }
    save_checkpoint(model, pathlib.Path(out) if out else CHECKPOINT_DIR / READER, meta)
    return meta


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(
        prog="python -m lib.rag", description="Make the RAG reader tiny-lm-rag."
    )
    ap.add_argument("action", choices=["train"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--worlds", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--init", default="tiny-lm", help="checkpoint to start from")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cmd = "python -m lib.rag " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = make_reader(
        args.out,
        args.steps,
        args.batch_size,
        args.worlds,
        args.seed,
        cmd.strip(),
        not args.no_progress,
        args.init,
    )
    print(meta["metrics"])
    return 0


__all__ = [
    "Chunk",
    "world_documents",
    "chunk_documents",
    "knowledge_base",
    "terms",
    "BM25",
    "TfIdf",
    "top_k",
    "knowledge_questions",
    "relevant",
    "recall_at_k",
    "answer_correct",
    "READER",
    "READER_K",
    "reader_prompt",
    "retrieve",
    "reader_examples",
    "answer_questions",
    "evaluate_reader",
    "EVAL_WORLDS",
    "make_reader",
]

if __name__ == "__main__":
    sys.exit(main())
