"""The Part 5 RAG / function-calling checkers accept a correct answer and reject wrong ones."""

import json
import math
import re

import numpy as np

from lib.exercises.retrieval_tools import check_bm25_term_scores, check_validate_calculator_call


def good_bm25(term, docs, k1, b):
    n_docs = len(docs)
    avgdl = sum(len(d) for d in docs) / n_docs
    n = sum(term in d for d in docs)
    idf = math.log((n_docs - n + 0.5) / (n + 0.5))
    out = []
    for d in docs:
        f = d.count(term)
        out.append(idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(d) / avgdl)))
    return np.array(out)


def test_bm25_checker():
    assert check_bm25_term_scores(good_bm25).passed
    wrong_idf = lambda term, docs, k1, b: good_bm25(term, docs, k1, b) * 1.1  # noqa: E731

    def no_length_norm(term, docs, k1, b):
        return good_bm25(term, docs, k1, 0.0)

    assert not check_bm25_term_scores(wrong_idf).passed
    assert not check_bm25_term_scores(no_length_norm).passed

    def stub(term, docs, k1, b):
        raise NotImplementedError

    rep = check_bm25_term_scores(stub)
    assert not rep.passed and "not attempted" in rep.message


PATTERN = re.compile(r"[0-9]{1,4}( [-+*] [0-9]{1,4}){0,5}")


def good_validate(text):
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if (
        not isinstance(obj, dict)
        or set(obj) != {"name", "arguments"}
        or obj["name"] != "calculator"
    ):
        return None
    args = obj["arguments"]
    if not isinstance(args, dict) or set(args) != {"expression"}:
        return None
    e = args["expression"]
    return e if isinstance(e, str) and PATTERN.fullmatch(e) else None


def test_validate_checker():
    assert check_validate_calculator_call(good_validate).passed

    def accepts_any_name(text):
        try:
            obj = json.loads(text)
            return obj["arguments"]["expression"]
        except (ValueError, KeyError, TypeError):
            return None

    assert not check_validate_calculator_call(accepts_any_name).passed
    assert not check_validate_calculator_call(lambda text: None).passed
