"""Exercise checkers for Part 5's RAG and function-calling sections (seed-31, seed-32).

Book: seed-31, seed-32.
"""

from __future__ import annotations

import json
from typing import Callable


from . import CheckReport, check_function

_WORDS = ["mara", "lives", "in", "tarmo", "pet", "dog", "cat", "is", "a", "the", "blue", "red"]


def _ref_bm25_term(term, docs, k1, b):
    from lib.rag import BM25

    return BM25([" ".join(d) for d in docs], k1=k1, b=b).term_scores(term)


def check_bm25_term_scores(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(term, docs, k1, b)`` -> BM25 contribution of ``term`` to each document (array).

    ``docs`` is a list of documents, each a list of words. The term occurs in at most half of the
    documents, so its idf ``ln((N - n + 0.5) / (n + 0.5))`` is never negative (no floor needed).
    """

    def make(rng):
        n_docs = int(rng.integers(2, 9))
        docs = [
            [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(1, 9)))]
            for _ in range(n_docs)
        ]
        term = "mara"
        for d in docs:
            d[:] = [w for w in d if w != term] or ["the"]
        for i in rng.choice(n_docs, size=int(rng.integers(0, n_docs // 2 + 1)), replace=False):
            docs[i] += [term] * int(rng.integers(1, 4))
        return {
            "term": term,
            "docs": docs,
            "k1": float(rng.choice([1.2, 1.5, 2.0])),
            "b": float(rng.choice([0.0, 0.5, 0.75, 1.0])),
        }

    return check_function(candidate, _ref_bm25_term, make, name="BM25 term scores", trials=trials)


def _ref_valid_call(text):
    from lib.data import make_world
    from lib.toolcall import ToolBox, ToolCallError

    try:
        call = ToolBox(make_world(0)).check(text)
    except ToolCallError:
        return None
    return call.arguments["expression"] if call.name == "calculator" else None


_CALLS = [
    ("calculator", {"expression": "12 + 30"}),
    ("calculator", {"expression": "7 * 8 - 3"}),
    ("calculator", {"expression": "12 +"}),
    ("calculator", {"expression": "2 ** 8"}),
    ("calculator", {"expression": 42}),
    ("calculator", {"expression": "1 + 2", "x": 1}),
    ("calculator", {}),
    ("eval", {"expression": "1 + 2"}),
    ("lookup", {"subject": "Mara"}),
    ("calculator", {"expression": "12345 + 1"}),
    ("calculator", {"expression": "5"}),
]


def check_validate_calculator_call(candidate: Callable, trials: int = 40) -> CheckReport:
    """``candidate(text)`` -> the expression of a valid calculator call, else ``None`` (no raise).

    Valid: ``text`` is a JSON object with exactly the keys ``name`` (``"calculator"``) and
    ``arguments``, an object with exactly the key ``expression``: integers of 1–4 digits joined
    by `` + ``, `` - `` or `` * `` (single spaces, at most 5 operators). Anything else -> ``None``.
    """

    def make(rng):
        name, args = _CALLS[int(rng.integers(len(_CALLS)))]
        text = json.dumps({"name": name, "arguments": args})
        r = rng.random()
        if r < 0.1:
            text = text[:-1]  # cut: not JSON
        elif r < 0.15:
            text = json.dumps([name, args])
        return {"text": text}

    return check_function(
        candidate, _ref_valid_call, make, name="calculator call validation", trials=trials
    )


__all__ = ["check_bm25_term_scores", "check_validate_calculator_call"]
