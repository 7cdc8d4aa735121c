"""lib.data.corpus: the pretraining splits are deterministic, disjoint where they must be, and counted."""
import pytest

from lib.data import build_corpus, corpus_stats, verify_answer



@pytest.fixture(scope="module")
def corpus():
    return build_corpus(0)


def test_corpus_deterministic_and_sized(corpus):
    again = build_corpus(0)
    assert again.train == corpus.train and again.val == corpus.val
    assert again.sha256() == corpus.sha256()
    assert build_corpus(1).sha256() != corpus.sha256()
    n = len(corpus.text("train"))
    assert 1_000_000 <= n <= 3_000_000, n
    assert len(corpus.train) == len(corpus.train_kinds) and len(corpus.val) == len(corpus.val_kinds)
    assert set(corpus.train_kinds) == {"arithmetic", "facts", "person", "qa", "phrases"}
    assert 0.03 < len(corpus.val) / len(corpus.train) < 0.08


def test_val_arithmetic_disjoint_from_train(corpus):
    def exprs(docs, kinds):
        return {d.split("What is ")[1].split("?")[0] for d, k in zip(docs, kinds) if k == "arithmetic"}
    tr, va = exprs(corpus.train, corpus.train_kinds), exprs(corpus.val, corpus.val_kinds)
    assert len(va) > 100 and not (tr & va)


def test_arithmetic_docs_are_correct(corpus):
    n = 0
    for d, k in zip(corpus.train, corpus.train_kinds):
        if k != "arithmetic":
            continue
        expr = d.split("What is ")[1].split("?")[0]
        answer = d.split("\nA: ")[1]
        assert verify_answer(expr, answer)
        if "=" in answer:
            assert verify_answer(expr, answer, require_steps=True)
        n += 1
    assert n == 9000


def test_stats(corpus):
    s = corpus_stats(corpus)
    assert s["train"]["all"]["documents"] == len(corpus.train)
    assert s["train"]["all"]["characters"] == sum(len(d) for d in corpus.train)
    assert sum(v["documents"] for k, v in s["train"].items() if k != "all") == len(corpus.train)
    assert s["train"]["all"]["cjk_characters"] > 5000
    assert s["train"]["all"]["bytes"] > s["train"]["all"]["characters"]

    class Chars:
        def encode(self, text):
            return list(text)
    s2 = corpus_stats(corpus, Chars())
    assert s2["val"]["all"]["tokens"] == s2["val"]["all"]["characters"]
    with pytest.raises(TypeError):
        corpus_stats("text")


def test_build_corpus_validation():
    for bad in (-1, 1.5, "0"):
        with pytest.raises(ValueError):
            build_corpus(bad)
    with pytest.raises(ValueError):
        build_corpus(0, scale=0)
    with pytest.raises(ValueError):
        build_corpus(0, val_fraction=0.9)
    with pytest.raises(ValueError):
        build_corpus(0).text("test")
