"""Tests of lib.sft.finetune_task: the split, the chat encoding, the verifier, the frozen base."""
import pytest

from lib.data import Fact, make_world
from lib.sft import finetune_task as ft


def test_split_is_disjoint_stratified_and_fixed():
    task = ft.fact_chat_task()
    assert len(task.train) + len(task.held_out) == len(task.world.facts()) == 248
    assert not set(task.train) & set(task.held_out)
    rels = {f.relation for f in task.world.facts()}
    assert {f.relation for f in task.held_out} == rels == {f.relation for f in task.train}
    assert ft.fact_chat_task().held_out == task.held_out                 # deterministic
    assert ft.fact_chat_task(seed=1).held_out != task.held_out
    assert task.describe()["held_out"] == len(task.held_out)
    with pytest.raises(ValueError):
        ft.fact_chat_task(held_out_fraction=1.0)
    with pytest.raises(ValueError):
        task.split("test")


def test_examples_are_the_chat_encoding_split_at_the_answer():
    from lib.llm.tokenizer import load_tokenizer
    from lib.sft.chat import encode_chat

    tok = load_tokenizer()
    task = ft.fact_chat_task()
    ex = ft.examples(tok, task)
    assert len(ex) == len(task.train)
    for (p, c), f in zip(ex[:20], task.train):
        assert p == ft.prompt_ids(tok, task.world, f)                  # what generation is given
        assert c[-1] == tok.im_end_id and tok.decode(c[:-1]) == task.world.question(f)[1]
        ids, _ = encode_chat(tok, ft.messages(task.world, f))
        assert ids[:len(p) + len(c)] == p + c


def test_verifier():
    w = make_world(0)
    person = next(iter(w.people))
    f = Fact(person, "city", w.people[person]["city"])
    other = next(c for c in w.cities if c != f.value)
    assert ft.is_correct(w, f, f"{person} lives in {f.value}.")
    assert not ft.is_correct(w, f, f"{person} lives in {other}.")
    assert not ft.is_correct(w, f, f"{person} lives in {f.value} or {other}.")
    assert not ft.is_correct(w, f, "")
    friend = Fact(person, "friend", w.people[person]["friend"])
    assert ft.is_correct(w, friend, f"{person}'s best friend is {friend.value}.")
    age = Fact(person, "age", w.people[person]["age"])
    assert ft.is_correct(w, age, f"{person} is {age.value} years old.")
    assert not ft.is_correct(w, age, f"{person} is {int(age.value) + 1} years old.")
    with pytest.raises(TypeError):
        ft.is_correct(w, f, None)


def test_frozen_base_cannot_answer_in_chat_format():
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    tok, base = load_tokenizer(), load_model("tiny-lm")
    task = ft.fact_chat_task()
    acc, hits = ft.accuracy(base, tok, task, return_hits=True)
    assert len(hits) == len(task.held_out) and acc <= 0.05
