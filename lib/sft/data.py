"""An instruction-data pipeline: several sources -> one schema -> cleaning -> a sampled set.

Book: seed-15 (where instruction data comes from, and how it is cleaned).

Sources (each with its own field names, as real sources have):

* :func:`template_records` — templates over the fact world (:func:`lib.data.chat_pairs`), with
  paraphrased instructions (``"Quick question: …"``): ``{"messages": [user, assistant]}``;
* :func:`self_generated_records` — the tiny model's own answers to arithmetic questions
  (self-instruct style), checked by the verifier later: ``{"prompt", "completion", "problem"}``;
* :func:`converted_records` — existing book data turned into questions (the RL algorithm table
  ``data/rl-algorithms.csv``): ``{"question", "answer"}``.

Cleaning (:func:`clean`), in order, each step counted: field renames to ``{"instruction",
"response", "source"}`` (:data:`FIELD_MAPS`); whitespace trim; the invalid filter (empty fields,
special-token text, U+FFFD, a self-generated answer the verifier rejects); exact duplicates
(after lower-casing and collapsing whitespace); near duplicates (word-bigram Jaccard
similarity >= ``threshold`` with an earlier kept record, computed exactly over all pairs with a
sparse matrix product); the length filter (tokens of the rendered chat); shuffle and sample.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

CANONICAL = ("instruction", "response", "source")
#: How each source's fields map to the canonical schema.
FIELD_MAPS = {
    "templates": {"messages": None},            # user -> instruction, assistant -> response
    "self": {"prompt": "instruction", "completion": "response"},
    "converted": {"question": "instruction", "answer": "response"},
}
_PARAPHRASE = ("Quick question: {q}", "{q} Please answer in one sentence.", "Tell me: {q}")
_SPECIAL = ("<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", "<|im_end|>", "<|image|>")


# ----------------------------------------------------------------------------- sources
def template_records(n: int, seed: int, world=None, paraphrase: float = 0.3) -> list[dict]:
    """``n`` chat records from the fact world's templates; a share ``paraphrase`` of the fact
    questions get a second, reworded copy (a near duplicate the cleaner should catch)."""
    from lib.data import chat_pairs

    if not 0 <= paraphrase <= 1:
        raise ValueError(f"paraphrase must be in [0, 1], got {paraphrase}")
    rng = np.random.default_rng(seed)
    out = []
    for it in chat_pairs(n, seed=seed, world=world, tasks=("fact", "translate", "describe")):
        out.append({"messages": it["messages"]})
        if it["task"] == "fact" and rng.random() < paraphrase:
            q = it["messages"][0]["content"]
            tpl = _PARAPHRASE[int(rng.integers(len(_PARAPHRASE)))]
            out.append({"messages": [{"role": "user", "content": tpl.format(q=q)},
                                     it["messages"][1]]})
    return out


def self_generated_records(model, tokenizer, n: int, seed: int, max_new_tokens: int = 40,
                           temperature: float = 1.0) -> list[dict]:
    """The model's own answers (sampled) to ``n`` arithmetic questions in the corpus format
    ``Q: What is …?\\nA:``; the answer is cut at the first newline or end of text."""
    import torch

    from lib.data import arithmetic_problems
    from lib.llm.generate import sample

    problems = arithmetic_problems(n, seed=seed, min_ops=1, max_ops=2)
    prompts = [tokenizer.encode(f"Q: {p.question}\nA:") for p in problems]
    T = max(len(p) for p in prompts)
    ids = torch.full((n, T), tokenizer.pad_id, dtype=torch.long)
    attn = torch.zeros((n, T), dtype=torch.long)
    for i, p in enumerate(prompts):                      # left padding
        ids[i, T - len(p):] = torch.tensor(p)
        attn[i, T - len(p):] = 1
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        out = sample(model, ids, max_new_tokens, temperature=temperature, generator=g,
                     attention_mask=attn, eos_token_id=tokenizer.eos_id,
                     pad_token_id=tokenizer.pad_id)
    recs = []
    for p, row in zip(problems, out[:, T:].tolist()):
        text = tokenizer.decode([t for t in row if t not in tokenizer.id_to_special])
        recs.append({"prompt": p.question, "completion": text.split("\n")[0], "problem": p})
    return recs


def converted_records(rows: Sequence[dict] | None = None) -> list[dict]:
    """Questions and answers made from the book's RL algorithm table (three per row)."""
    if rows is None:
        from lib.registry import load_table

        rows = load_table("algorithms")
    out = []
    for r in rows:
        out.append({"question": f"Which family of RL methods does {r['name']} belong to?",
                    "answer": f"{r['name']} is a {r['family']} method."})
        out.append({"question": f"Is {r['name']} on-policy or off-policy?",
                    "answer": f"{r['name']} is {r['policy']}."})
        out.append({"question": f"When was {r['name']} published, and by whom?",
                    "answer": f"{r['name']} was published in {r['year']} by {r['authors'].rstrip('.')}."})
    return out


# ----------------------------------------------------------------------------- cleaning steps
def rename_fields(record: dict, source: str) -> dict:
    """A raw record of ``source`` in the canonical schema ``{instruction, response, source}``
    (missing fields become None, to be dropped by the invalid filter)."""
    if source not in FIELD_MAPS:
        raise ValueError(f"unknown source {source!r}; expected one of {sorted(FIELD_MAPS)}")
    if not isinstance(record, dict):
        raise TypeError(f"a record must be a dict, got {type(record).__name__}")
    out = {"instruction": None, "response": None, "source": source}
    if source == "templates":
        for m in record.get("messages") or []:
            key = {"user": "instruction", "assistant": "response"}.get(m.get("role"))
            if key:
                out[key] = m.get("content")
    else:
        for old, new in FIELD_MAPS[source].items():
            out[new] = record.get(old)
    if "problem" in record:
        out["problem"] = record["problem"]
    return out


def invalid_reason(rec: dict) -> str | None:
    """Why a canonical record is invalid (``None`` when it is valid)."""
    for k in ("instruction", "response"):
        v = rec.get(k)
        if not isinstance(v, str):
            return f"{k} missing"
        if not v.strip():
            return f"{k} empty"
        if "\ufffd" in v:
            return f"{k} not valid text"
        if any(s in v for s in _SPECIAL):
            return f"{k} holds special-token text"
    if rec.get("problem") is not None:
        from lib.data import verify_answer

        if not verify_answer(rec["problem"], rec["response"]):
            return "answer fails the verifier"
    return None


def normalize(text: str) -> str:
    """Lower case, whitespace collapsed: the key of exact deduplication."""
    return re.sub(r"\s+", " ", text.strip().lower())


def shingles(text: str, n: int = 2) -> set:
    """Word ``n``-grams of the normalized text (the whole text when it has fewer words)."""
    words = normalize(text).split(" ")
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    return 1.0 if not a and not b else len(a & b) / len(a | b)


def jaccard_matrix(texts: Sequence[str], n: int = 2) -> np.ndarray:
    """All pairwise word-``n``-gram Jaccard similarities (N, N), via a sparse 0/1 matrix:
    intersections are ``X Xᵀ``, unions ``|a| + |b| - |a ∩ b|``."""
    from scipy import sparse

    sets = [shingles(t, n) for t in texts]
    vocab: dict = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for g in s:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    X = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (X @ X.T).toarray()
    size = np.asarray(X.sum(1)).ravel()
    return inter / (size[:, None] + size[None, :] - inter)


def near_duplicate_drop(texts: Sequence[str], threshold: float = 0.6, n: int = 2) -> list[int]:
    """Indices to drop so that no two kept texts have Jaccard >= ``threshold``: scanning in
    order, a text is dropped when it is that similar to an earlier *kept* one."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if len(texts) == 0:
        return []
    J = jaccard_matrix(texts, n)
    kept: list[int] = []
    drop = []
    for j in range(len(texts)):
        if kept and J[j, kept].max() >= threshold:
            drop.append(j)
        else:
            kept.append(j)
    return drop


@dataclasses.dataclass
class CleanReport:
    """Counts after each step (``funnel``), why records were dropped (``reasons``), and token
    lengths of the rendered chats before (all renderable records) and after cleaning."""

    funnel: list[tuple[str, int]]
    reasons: dict
    lengths_before: list[int]
    lengths_after: list[int]
    by_source_before: dict
    by_source_after: dict


def record_messages(rec: dict) -> list[dict]:
    """The chat of a canonical record: one user turn, one assistant turn."""
    return [{"role": "user", "content": rec["instruction"]},
            {"role": "assistant", "content": rec["response"]}]


def _length(tokenizer, rec) -> int | None:
    from .chat import encode_chat

    try:
        return len(encode_chat(tokenizer, record_messages(rec))[0])
    except (TypeError, ValueError):
        return None


def clean(sources: dict, tokenizer, max_tokens: int = 80, threshold: float = 0.6,
          n_sample: int | None = None, seed: int = 0) -> tuple[list[dict], CleanReport]:
    """Run the pipeline on ``{source_name: raw records}``; returns the cleaned, shuffled
    (and, with ``n_sample``, sampled) canonical records and a :class:`CleanReport`."""
    if not isinstance(sources, dict) or not sources:
        raise ValueError("sources must be a non-empty {source name: records} dict")
    if not isinstance(max_tokens, int) or max_tokens < 4:
        raise ValueError(f"max_tokens must be an int >= 4, got {max_tokens!r}")
    recs = []
    for name, raw in sources.items():
        recs += [rename_fields(r, name) for r in raw]
    funnel = [("raw, renamed", len(recs))]
    reasons: dict = {}
    before = [x for x in (_length(tokenizer, r) for r in recs) if x is not None]
    src_before: dict = {}
    for r in recs:
        src_before[r["source"]] = src_before.get(r["source"], 0) + 1
    for r in recs:
        for k in ("instruction", "response"):
            if isinstance(r[k], str):
                r[k] = r[k].strip()
    ok = []
    for r in recs:
        why = invalid_reason(r)
        if why is None:
            ok.append(r)
        else:
            reasons[why] = reasons.get(why, 0) + 1
    recs = ok
    funnel.append(("valid", len(recs)))
    seen, ok = set(), []
    for r in recs:
        key = (normalize(r["instruction"]), normalize(r["response"]))
        if key not in seen:
            seen.add(key)
            ok.append(r)
    reasons["exact duplicate"] = len(recs) - len(ok)
    recs = ok
    funnel.append(("no exact duplicates", len(recs)))
    drop = set(near_duplicate_drop([r["instruction"] + " " + r["response"] for r in recs],
                                   threshold))
    reasons["near duplicate"] = len(drop)
    recs = [r for i, r in enumerate(recs) if i not in drop]
    funnel.append(("no near duplicates", len(recs)))
    lengths = [_length(tokenizer, r) for r in recs]
    reasons["too long"] = sum(n > max_tokens for n in lengths)
    recs = [r for r, n in zip(recs, lengths) if n <= max_tokens]
    funnel.append((f"<= {max_tokens} tokens", len(recs)))
    order = np.random.default_rng(seed).permutation(len(recs))
    recs = [recs[i] for i in order]
    if n_sample is not None:
        if not 1 <= n_sample:
            raise ValueError(f"n_sample must be >= 1, got {n_sample}")
        recs = recs[:n_sample]
    funnel.append(("shuffled, sampled", len(recs)))
    src_after: dict = {}
    for r in recs:
        src_after[r["source"]] = src_after.get(r["source"], 0) + 1
    rep = CleanReport(funnel, reasons, before, [_length(tokenizer, r) for r in recs],
                      src_before, src_after)
    return recs, rep


def check_clean(records: Sequence[dict], tokenizer, max_tokens: int, threshold: float
                ) -> list[str]:
    """The invariants a cleaned set must satisfy; returns the violations (empty when clean):
    canonical keys, no invalid record, no exact or near duplicate pair, the length bound."""
    bad = []
    for i, r in enumerate(records):
        if set(CANONICAL) - set(r):
            bad.append(f"record {i} lacks canonical fields")
        elif invalid_reason(r) is not None:
            bad.append(f"record {i}: {invalid_reason(r)}")
        elif _length(tokenizer, r) > max_tokens:
            bad.append(f"record {i} is longer than {max_tokens} tokens")
    keys = [(normalize(r["instruction"]), normalize(r["response"])) for r in records]
    if len(set(keys)) != len(keys):
        bad.append("exact duplicates remain")
    if len(records) > 1:
        J = jaccard_matrix([r["instruction"] + " " + r["response"] for r in records])
        np.fill_diagonal(J, 0)
        if J.max() >= threshold:
            bad.append(f"near duplicates remain (max Jaccard {J.max():.3f})")
    return bad


__all__ = ["CANONICAL", "FIELD_MAPS", "template_records", "self_generated_records",
           "converted_records", "rename_fields", "invalid_reason", "normalize", "shingles",
           "jaccard", "jaccard_matrix", "near_duplicate_drop", "CleanReport", "record_messages",
           "clean", "check_clean"]
