"""Generated data for the book: the pretraining corpus, its tasks and the toy image set.

Everything here is produced deterministically from a seed; nothing is downloaded.

* :mod:`lib.data.corpus` — the *book corpus*: multi-step arithmetic with checkable steps,
  facts about a generated world (kept as structured data), English/Chinese phrases and
  chat-formatted instruction/response pairs; :func:`build_corpus` makes the pretraining
  train/validation splits.
* :mod:`lib.data.shapes` — small RGB images of coloured shapes with captions/questions
  (the tiny VLM's data).
"""
from __future__ import annotations

from .corpus import (
    ArithProblem,
    Corpus,
    PHRASES,
    Step,
    World,
    arithmetic_facts,
    arithmetic_problems,
    fact_chain_problems,
    is_fact_chain,
    build_corpus,
    chat_pairs,
    check_steps,
    corpus_stats,
    evaluate_expression,
    first_error,
    make_world,
    parse_answer,
    parse_steps,
    verify_answer,
)

__all__ = [
    "ArithProblem", "Corpus", "PHRASES", "Step", "World", "arithmetic_facts", "arithmetic_problems", "build_corpus",
    "fact_chain_problems", "is_fact_chain",
    "chat_pairs", "check_steps", "corpus_stats", "evaluate_expression", "first_error", "make_world",
    "parse_answer", "parse_steps", "verify_answer",
]
