"""lib.rag: knowledge base, BM25 (cross-checked against rank_bm25), TF-IDF (against scikit-learn),
recall@k, the answer check, and the shipped reader tiny-lm-rag."""

import numpy as np
import pytest

from lib.data import Fact, make_world
from lib.rag import (
    BM25,
    EVAL_WORLDS,
    READER,
    TfIdf,
    answer_correct,
    chunk_documents,
    evaluate_reader,
    knowledge_base,
    knowledge_questions,
    reader_prompt,
    recall_at_k,
    relevant,
    retrieve,
    terms,
    top_k,
    world_documents,
)


@pytest.fixture(scope="module")
def kb():
    world = make_world(123)
    return world, knowledge_base(world, 4)


def test_documents_and_chunks_keep_every_fact(kb):
    world, chunks = kb
    stated = [f for c in chunks for f in c.facts]
    assert sorted(stated, key=repr) == sorted(world.facts(), key=repr)
    assert all(c.subject == f.subject for c in chunks for f in c.facts)
    assert all(c.subject in c.text for c in chunks)
    docs = world_documents(world, 4)
    assert knowledge_base(world, 4) == chunks  # deterministic
    assert len(chunk_documents(docs, 6)) == len(docs)  # one chunk per subject
    with pytest.raises(ValueError, match="sentences_per_chunk"):
        chunk_documents(docs, 0)
    with pytest.raises(TypeError, match="World"):
        world_documents("world")


def test_terms():
    assert terms("Mara's pet is a Dog.") == ["mara", "s", "pet", "is", "a", "dog"]
    with pytest.raises(TypeError):
        terms(3)


def test_bm25_equals_rank_bm25(kb):
    from rank_bm25 import BM25Okapi

    world, chunks = kb
    ref = BM25Okapi([terms(c.text) for c in chunks])  # defaults k1=1.5, b=0.75, epsilon=0.25
    ours = BM25(chunks)
    queries = [q for q, _ in knowledge_questions(world)] + [
        "lives lives in",
        "unseen words only",
        "is a the",
    ]
    for q in queries:
        np.testing.assert_allclose(ours.scores(q), ref.get_scores(terms(q)), rtol=1e-12, atol=1e-12)
    # the idf floor: a term in more than half of the passages has a negative raw idf
    assert any(ref.idf[t] == pytest.approx(0.25 * ref.average_idf) for t in ref.idf)
    for t in ref.idf:
        assert ours.idf[t] == pytest.approx(ref.idf[t], abs=1e-12)
    # other parameters too
    ref2 = BM25Okapi([terms(c.text) for c in chunks], k1=1.2, b=0.3, epsilon=0.5)
    np.testing.assert_allclose(
        BM25(chunks, 1.2, 0.3, 0.5).scores(queries[0]), ref2.get_scores(terms(queries[0]))
    )


def test_bm25_one_term_by_hand():
    docs = ["a b b", "a c", "c d e f", "d"]
    bm = BM25(docs)
    n, N, avgdl = 1, 4, 2.5  # 'b' occurs in one document of four
    idf = np.log((N - n + 0.5) / (n + 0.5))
    expected = idf * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 3 / avgdl))
    assert bm.scores("b")[0] == pytest.approx(expected)
    assert bm.scores("b")[1:].tolist() == [0, 0, 0]
    assert bm.scores("zzz").tolist() == [0, 0, 0, 0]


def test_bm25_errors():
    with pytest.raises(ValueError, match="non-empty"):
        BM25([])
    with pytest.raises(ValueError, match="k1"):
        BM25(["a"], k1=-1)
    with pytest.raises(ValueError, match="b"):
        BM25(["a"], b=2)
    with pytest.raises(TypeError, match="passage 1"):
        BM25(["a", 3])
    with pytest.raises(ValueError, match="empty"):
        BM25(["", "..."])
    with pytest.raises(TypeError, match="query"):
        BM25(["a"]).scores(5)


def test_tfidf_equals_sklearn(kb):
    from sklearn.feature_extraction.text import TfidfVectorizer

    world, chunks = kb
    vec = TfidfVectorizer(tokenizer=terms, lowercase=False, token_pattern=None)
    m = vec.fit_transform([c.text for c in chunks])
    ours = TfIdf(chunks)
    assert list(vec.get_feature_names_out()) == list(ours.vocab)
    np.testing.assert_allclose(ours.matrix, m.toarray(), atol=1e-12)
    for q, _ in knowledge_questions(world)[:30]:
        expected = (m @ vec.transform([q]).T).toarray().ravel()
        np.testing.assert_allclose(ours.scores(q), expected, atol=1e-12)
    assert ours.scores("zzz qqq").tolist() == [0.0] * len(chunks)


def test_top_k_and_recall():
    assert top_k([0.1, 0.5, 0.5, 0.2], 3).tolist() == [1, 2, 3]
    s = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    rel = np.array([[False, True, False], [True, False, False]])
    assert recall_at_k(s, rel, [1, 2, 3]).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="one shape"):
        recall_at_k(s, rel[:1], [1])
    with pytest.raises(TypeError, match="boolean"):
        recall_at_k(s, rel.astype(int), [1])
    with pytest.raises(ValueError, match="at least one relevant"):
        recall_at_k(s, np.zeros_like(rel), [1])
    with pytest.raises(ValueError, match="positive"):
        recall_at_k(s, rel, [0])
    with pytest.raises(ValueError, match="positive"):
        top_k([1.0], 0)


def test_recall_reaches_one_and_is_monotone(kb):
    world, chunks = kb
    qs = knowledge_questions(world)
    rel = np.array([relevant(chunks, f) for _, f in qs])
    assert (rel.sum(1) == 1).all()  # each fact is stated once
    for index in (BM25(chunks), TfIdf(chunks)):
        s = np.array([index.scores(q) for q, _ in qs])
        r = recall_at_k(s, rel, list(range(1, 11)))
        assert np.all(np.diff(r) >= 0) and r[-1] == 1.0 and r[0] > 0.5


def test_answer_correct():
    world = make_world(5)
    name = next(iter(world.people))
    f = Fact(name, "city", world.people[name]["city"])
    other = next(c for c in world.cities if c != f.value)
    assert answer_correct(world, f, f"{name} lives in {f.value}.")
    assert not answer_correct(world, f, f"{name} lives in {other}.")
    assert not answer_correct(world, f, f"{f.value} or {other}")  # hedging is not an answer
    assert not answer_correct(world, f, "")
    age = Fact(name, "age", world.people[name]["age"])
    assert answer_correct(world, age, f"{name} is {age.value} years old.")
    assert not answer_correct(world, age, f"{name} is {int(age.value) + 1} years old.")
    with pytest.raises(TypeError):
        answer_correct(world, ("x", "city", "y"), "text")
    with pytest.raises(TypeError):
        answer_correct(world, f, None)


def test_prompt_and_retrieve(kb):
    world, chunks = kb
    assert reader_prompt("Who?", None) == "Context: none\nQ: Who?\nA:"
    assert reader_prompt("Who?", ["a.", "b."]) == "Context: a. | b.\nQ: Who?\nA:"
    with pytest.raises(ValueError):
        reader_prompt("", None)
    q, f = knowledge_questions(world)[0]
    got = retrieve(BM25(chunks), chunks, q, 3)
    assert len(got) == 3 and all(c.subject == f.subject for c in got[:1])
    with pytest.raises(ValueError, match="passages the index"):
        retrieve(BM25(chunks[:5]), chunks, q)


def test_shipped_reader_reproduces_its_metric():
    """The reader reloads and reproduces its recorded accuracies on a fresh world (greedy)."""
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.llm.pretrain import tokenizer_sha256

    model, meta = load_model(READER, with_meta=True)
    assert meta["tokenizer_sha256"] == tokenizer_sha256()
    for key in ("seed", "command", "commit", "machine", "train_config", "metrics"):
        assert key in meta
    tok = load_tokenizer()
    for w in EVAL_WORLDS[:1]:  # one world: every question, three modes, greedy
        res = evaluate_reader(model, tok, make_world(w), seed=w)
        rec = meta["metrics"]["accuracy"][f"world_{w}"]
        n = len(res["hits"]["BM25 top-k"])
        for mode, acc in res["accuracy"].items():
            assert acc == pytest.approx(rec[mode], abs=1 / n + 1e-9), mode  # one flip of slack
        assert rec["BM25 top-k"] > rec["no retrieval"] + 0.3
