"""lib.data.chat: phrases and chat-formatted instruction pairs."""
import pytest

from lib.data import chat_pairs, make_world, verify_answer
from lib.data.chat import PHRASES


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
