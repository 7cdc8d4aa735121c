"""Tests of lib.sft.chat (seed-13) and its Hugging Face cross-check: the exported Jinja
template gives the same ids and the same assistant-token mask in transformers."""
import json

import numpy as np
import pytest
import torch

from lib.data import chat_pairs
from lib.llm.tokenizer import TOKENIZER_DIR, load_tokenizer
from lib.sft.chat import (CHAT_TEMPLATE_JINJA, IGNORE_INDEX, chat_labels, chat_segments,
                          check_messages, decode_chat, encode_chat, render_chat, token_table)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def conversations(n=40, seed=0):
    out = [[{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is 7 * 8?"},
            {"role": "assistant", "content": "7 * 8 = 56."},
            {"role": "user", "content": "And in Chinese?"},
            {"role": "assistant", "content": "五十六"}],
           [{"role": "user", "content": "  leading spaces"},
            {"role": "assistant", "content": "\n\nnewlines first\n"}],
           [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]]
    out += [it["messages"] for it in chat_pairs(n, seed=seed)]
    return out


def test_render_equals_tokenizer_template(tok):
    for m in conversations():
        for gen in (False, True):
            assert render_chat(m, gen) == tok.apply_chat_template(m, add_generation_prompt=gen)


def test_encode_round_trip_and_reserved_ids(tok):
    assert tok.special_id("<|im_start|>") == 1021 and tok.special_id("<|im_end|>") == 1022
    for m in conversations():
        ids, mask = encode_chat(tok, m)
        assert ids == tok.encode(render_chat(m))
        assert tok.decode(ids) == render_chat(m)
        assert decode_chat(tok, ids) == m
        assert ids.count(1021) == len(m) and ids.count(1022) == len(m)
        assert len(mask) == len(ids) and set(mask) <= {0, 1}
        # every assistant <|im_end|> is trained, every other one is not
        ends = [i for i, t in enumerate(ids) if t == 1022]
        assert [mask[i] for i in ends] == [int(x["role"] == "assistant") for x in m]
        # the trained tokens decode to the assistant contents + <|im_end|>, in order
        trained = tok.decode([t for t, k in zip(ids, mask) if k])
        assert trained == "".join(x["content"] + "<|im_end|>" for x in m
                                  if x["role"] == "assistant")


def test_segments_labels_and_table(tok):
    m = conversations()[0]
    segs = chat_segments(m, add_generation_prompt=True)
    assert segs[-1] == ("<|im_start|>assistant\n", False)
    assert sum(t for _, t in segs) == 2
    ids, mask = encode_chat(tok, m)
    labels = chat_labels(ids, mask)
    assert all((l == IGNORE_INDEX) != bool(k) for l, k in zip(labels, mask))
    rows = token_table(tok, ids, mask)
    assert [r["id"] for r in rows] == ids and rows[0]["token"] == "<|im_start|>"
    assert rows[0]["special"] and not rows[1]["special"]
    assert sum(r["trained"] for r in rows) == sum(mask)


def test_validation(tok):
    with pytest.raises(TypeError):
        check_messages({"role": "user", "content": "hi"})
    with pytest.raises(ValueError, match="at least one"):
        check_messages([])
    with pytest.raises(ValueError, match="role"):
        check_messages([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="keys"):
        check_messages([{"role": "user", "content": "hi", "name": "x"}])
    with pytest.raises(TypeError, match="content"):
        check_messages([{"role": "user", "content": 3}])
    with pytest.raises(ValueError, match="special token"):
        check_messages([{"role": "user", "content": "hi<|im_end|>"}])
    with pytest.raises(TypeError, match="BPETokenizer"):
        encode_chat("tok", [{"role": "user", "content": "hi"}])
    with pytest.raises(ValueError, match="length"):
        chat_labels([1, 2], [1])
    with pytest.raises(ValueError, match="0/1"):
        chat_labels([1, 2], [1, 2])
    with pytest.raises(ValueError):
        decode_chat(tok, tok.encode("<|im_start|>user\nhi"))


def test_hf_export_apply_chat_template_ids_and_mask(tok, tmp_path):
    transformers = pytest.importorskip("transformers")
    from lib.llm.config import LMConfig
    from lib.llm.export import export_hf
    from lib.llm.model import TinyLM

    model = TinyLM(LMConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2,
                            n_kv_heads=1, d_ff=64, max_seq_len=128))
    folder = export_hf(model, tmp_path / "hf", tokenizer_dir=TOKENIZER_DIR,
                       chat_template=CHAT_TEMPLATE_JINJA)
    conf = json.loads((folder / "tokenizer_config.json").read_text())
    assert conf["chat_template"] == CHAT_TEMPLATE_JINJA
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    for m in conversations(20, seed=1):
        for gen in (False, True):
            text = hf_tok.apply_chat_template(m, tokenize=False, add_generation_prompt=gen)
            assert text == render_chat(m, gen)
        out = hf_tok.apply_chat_template(m, tokenize=True, return_dict=True,
                                         return_assistant_tokens_mask=True)
        ids, mask = encode_chat(tok, m)
        assert list(out["input_ids"]) == ids
        assert list(out["assistant_masks"]) == mask
    with pytest.raises(ValueError, match="tokenizer_dir"):
        export_hf(model, tmp_path / "x", chat_template=CHAT_TEMPLATE_JINJA)
