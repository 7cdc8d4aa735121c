"""Tests of lib.data.corpus: determinism, splits, the world, the arithmetic verifiers."""
import numpy as np
import pytest

from lib.data import (ArithProblem, Step, arithmetic_problems, build_corpus, chat_pairs, check_steps,
                      corpus_stats, evaluate_expression, first_error, make_world, parse_answer, parse_steps,
                      verify_answer)
from lib.data.corpus import PHRASES, RELATIONS


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


def test_world_structured_and_rendered():
    w = make_world(0)
    assert w.people == make_world(0).people
    assert len(w.people) == 40 and len(w.cities) == 8
    name = next(iter(w.people))
    for r in RELATIONS:
        assert w.query(name, r) == w.people[name][r]
    assert w.query(w.people[name]["city"], "region") in ("north", "south", "east", "west")
    assert w.people[name]["friend"] != name and w.people[name]["friend"] in w.people
    facts = w.facts()
    assert len(facts) == 40 * len(RELATIONS) + 8
    f = facts[0]
    assert f.value in w.sentence(f) and f.subject in w.sentence(f, "zh")
    assert w.sentence(f, "zh").endswith("。")
    q, a = w.question(f)
    assert q.endswith("?") and f.value in a
    doc = w.document(name)
    assert all(w.people[name][r] in doc for r in RELATIONS)
    assert set(w.documents()) == set(w.people) | set(w.cities)
    with pytest.raises(KeyError):
        w.query("Nobody", "city")
    with pytest.raises(KeyError):
        w.query(name, "height")
    with pytest.raises(ValueError):
        w.sentence(f, "fr")
    with pytest.raises(ValueError):
        make_world(0, n_people=1)
    with pytest.raises(TypeError):
        make_world("a")


def test_evaluate_expression_matches_python():
    rng = np.random.default_rng(0)
    for _ in range(200):
        nums = rng.integers(0, 30, size=int(rng.integers(1, 6)))
        ops = rng.choice(["+", "-", "*"], size=len(nums) - 1)
        expr = str(nums[0]) + "".join(f" {o} {v}" for o, v in zip(ops, nums[1:]))
        assert evaluate_expression(expr) == eval(expr)  # noqa: S307 - trusted, generated here
    for bad in ("", "3 +", "3 / 4", "a + 1", "+ 3"):
        with pytest.raises(ValueError):
            evaluate_expression(bad)
    with pytest.raises(TypeError):
        evaluate_expression(3)


def test_problems_and_steps():
    probs = arithmetic_problems(300, seed=1)
    assert len({p.expression for p in probs}) == 300
    assert {p.n_steps for p in probs} == {1, 2, 3}
    for p in probs:
        assert p.answer == evaluate_expression(p.expression)
        assert all(0 <= s.result <= 999 for s in p.steps)
        assert parse_steps(p.cot_answer) == list(p.steps)
        assert parse_answer(p.cot_answer) == p.answer == parse_answer(p.direct_answer)
        assert all(check_steps(p, p.cot_answer))
        assert first_error(p, p.cot_answer) is None
    assert arithmetic_problems(5, seed=1) == probs[:5]
    other = arithmetic_problems(50, seed=2, exclude=[p.expression for p in probs])
    assert not {p.expression for p in other} & {p.expression for p in probs}
    with pytest.raises(ValueError):
        arithmetic_problems(-1)
    with pytest.raises(ValueError):
        arithmetic_problems(3, min_ops=3, max_ops=2)


def test_check_steps_detects_errors():
    p = ArithProblem.from_expression("3 + 4 * 2 - 5")
    assert p.cot_answer == "4 * 2 = 8. 3 + 8 = 11. 11 - 5 = 6. The answer is 6."
    # precedence violation, then a step on operands that are not there
    assert check_steps(p, "3 + 4 = 7. 7 * 2 = 14.") == [False, False]
    # wrong arithmetic; later steps judged given the written result
    assert check_steps(p, "4 * 2 = 9. 3 + 9 = 12. 12 - 5 = 7.") == [False, True, True]
    assert first_error(p, "4 * 2 = 8. 3 + 8 = 12. 12 - 5 = 7.") == 1
    # a different but valid order (left subtraction first is not allowed here: 8 - 5 is fine)
    assert check_steps("3 + 4 * 2 - 5", "4 * 2 = 8. 8 - 5 = 3. 3 + 3 = 6.") == [True, True, True]
    assert check_steps("10 - 4 - 3", "4 - 3 = 1.") == [False]           # not value preserving
    assert check_steps("3 * 4", [Step(3, "*", 4, 12)]) == [True]
    assert verify_answer(p, "blah. The answer is 6.")
    assert not verify_answer(p, "blah. The answer is 6.", require_steps=True)
    assert not verify_answer(p, "The answer is 5.")
    assert not verify_answer(p, "no answer here")
    assert parse_answer("The answer is 3. Actually the answer is -4") == -4
    assert parse_answer("nothing") is None
    with pytest.raises(TypeError):
        check_steps(p, [1, 2])
    with pytest.raises(TypeError):
        parse_steps(None)
    with pytest.raises(TypeError):
        verify_answer(3, "x")


def test_chat_pairs():
    w = make_world(0)
    items = chat_pairs(300, seed=0, world=w)
    assert items[0]["messages"] == chat_pairs(1, seed=0, world=w)[0]["messages"]
    tasks = {it["task"] for it in items}
    assert tasks == {"arithmetic", "arithmetic_direct", "fact", "translate", "describe"}
    for it in items:
        (u, a) = it["messages"]
        assert u["role"] == "user" and a["role"] == "assistant" and u["content"] and a["content"]
        if it["task"] == "arithmetic":
            assert verify_answer(it["problem"], a["content"], require_steps=True)
        if it["task"] == "arithmetic_direct":
            assert a["content"] == it["problem"].direct_answer
        if it["task"] == "translate":
            src = u["content"].split(": ", 1)[1]
            assert (src, a["content"]) in PHRASES or (a["content"], src) in PHRASES
    only = chat_pairs(20, seed=3, tasks=["fact"])
    assert {it["task"] for it in only} == {"fact"}
    with pytest.raises(ValueError):
        chat_pairs(3, tasks=["poetry"])
    with pytest.raises(TypeError):
        chat_pairs(2.5)
