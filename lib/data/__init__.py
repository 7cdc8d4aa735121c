"""Generated data for the book: the pretraining corpus, its tasks and the toy image set.

Everything here is produced deterministically from a seed; nothing is downloaded.

* :mod:`lib.data.arithmetic` — multi-step arithmetic problems with checkable steps;
* :mod:`lib.data.verify` — the verifiers: parse a model's text, label its steps, judge its answer;
* :mod:`lib.data.world` — a generated world of people and cities, kept as structured data;
* :mod:`lib.data.chat` — English/Chinese phrases and chat-formatted instruction/response pairs;
* :mod:`lib.data.corpus` — assembles them into the pretraining train/validation splits;
* :mod:`lib.data.shapes` — small RGB images of coloured shapes with captions/questions
  (the tiny VLM's data).

Book: seed-8 (the pretraining corpus) and every section that uses the book's tasks.
"""
from __future__ import annotations

from .arithmetic import (
    ArithProblem,
    Step,
    arithmetic_facts,
    arithmetic_problems,
    evaluate_expression,
    fact_chain_problems,
    is_fact_chain,
)
from .chat import PHRASES, chat_pairs
from .corpus import Corpus, build_corpus, corpus_stats
from .verify import check_steps, first_error, parse_answer, parse_steps, verify_answer
from .world import Fact, World, make_world

__all__ = [
    "ArithProblem", "Corpus", "Fact", "PHRASES", "Step", "World", "arithmetic_facts",
    "arithmetic_problems", "build_corpus", "fact_chain_problems", "is_fact_chain", "chat_pairs",
    "check_steps", "corpus_stats", "evaluate_expression", "first_error", "make_world",
    "parse_answer", "parse_steps", "verify_answer",
]
