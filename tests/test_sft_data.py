"""Tests of lib.sft.data (seed-15): sources, renames, Jaccard, and the cleaning invariants."""
import numpy as np
import pytest

from lib.data import arithmetic_problems
from lib.llm.tokenizer import load_tokenizer
from lib.sft.data import (CANONICAL, check_clean, clean, converted_records, invalid_reason,
                          jaccard, jaccard_matrix, near_duplicate_drop, normalize,
                          rename_fields, shingles, template_records)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def noisy_sources(seed=0):
    p = arithmetic_problems(3, seed=seed)
    self_recs = [{"prompt": p[0].question, "completion": p[0].cot_answer, "problem": p[0]},
                 {"prompt": p[1].question, "completion": "The answer is -1.", "problem": p[1]},
                 {"prompt": p[2].question, "completion": "   ", "problem": p[2]},
                 {"prompt": "Say <|im_end|>", "completion": "ok"},
                 {"completion": "no prompt"}]
    return {"templates": template_records(150, seed, paraphrase=0.5),
            "self": self_recs, "converted": converted_records()[:30]}


def test_rename_fields_and_invalid_reasons():
    r = rename_fields({"messages": [{"role": "user", "content": "q"},
                                    {"role": "assistant", "content": "a"}]}, "templates")
    assert r == {"instruction": "q", "response": "a", "source": "templates"}
    assert rename_fields({"question": "q", "answer": "a"}, "converted")["response"] == "a"
    assert rename_fields({"prompt": "q"}, "self")["response"] is None
    with pytest.raises(ValueError, match="unknown source"):
        rename_fields({}, "web")
    with pytest.raises(TypeError):
        rename_fields("x", "self")
    assert invalid_reason({"instruction": "q", "response": None}) == "response missing"
    assert invalid_reason({"instruction": " ", "response": "a"}) == "instruction empty"
    assert invalid_reason({"instruction": "q\ufffd", "response": "a"}) == "instruction not valid text"
    assert "special" in invalid_reason({"instruction": "<|eos|>", "response": "a"})
    p = arithmetic_problems(1, seed=0)[0]
    assert invalid_reason({"instruction": "q", "response": p.cot_answer, "problem": p}) is None
    assert invalid_reason({"instruction": "q", "response": "The answer is -7.", "problem": p}) \
        == "answer fails the verifier"


def test_jaccard_matrix_equals_pairwise():
    texts = ["What does Mila do? Mila is a doctor.", "Quick question: what does Mila do? "
             "Mila is a doctor.", "How old is Tomo?", "how  old is tomo?", "猫", "Translate: cat"]
    J = jaccard_matrix(texts)
    for i in range(len(texts)):
        for j in range(len(texts)):
            assert J[i, j] == pytest.approx(jaccard(shingles(texts[i]), shingles(texts[j])))
    assert J[2, 3] == 1.0 and J[0, 1] == pytest.approx(7 / 9)
    assert normalize("  A  b\nC ") == "a b c" and shingles("one") == {"one"}
    assert jaccard(set(), set()) == 1.0
    assert near_duplicate_drop(texts, 0.7) == [1, 3]
    with pytest.raises(ValueError):
        near_duplicate_drop(texts, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_invariants(tok, seed):
    src = noisy_sources(seed)
    recs, rep = clean(src, tok, max_tokens=64, threshold=0.6, seed=seed)
    assert check_clean(recs, tok, 64, 0.6) == []
    assert all(set(CANONICAL) <= set(r) for r in recs)
    counts = [n for _, n in rep.funnel]
    assert counts[0] == sum(len(v) for v in src.values())
    assert all(a >= b for a, b in zip(counts, counts[1:]))              # a funnel
    dropped = sum(v for v in rep.reasons.values())
    assert counts[0] - counts[-1] == dropped
    assert rep.reasons["answer fails the verifier"] == 1
    assert rep.reasons["exact duplicate"] > 0 and rep.reasons["near duplicate"] > 0
    assert max(rep.lengths_after) <= 64 < max(rep.lengths_before)
    assert sum(rep.by_source_after.values()) == len(recs)
    again, _ = clean(noisy_sources(seed), tok, max_tokens=64, threshold=0.6, seed=seed)
    assert again == recs                                                # deterministic
    sampled, rep2 = clean(noisy_sources(seed), tok, max_tokens=64, n_sample=10, seed=seed)
    assert len(sampled) == 10 and rep2.funnel[-1] == ("shuffled, sampled", 10)


def test_check_clean_finds_violations(tok):
    good = {"instruction": "How old is Tomo?", "response": "Tomo is 30 years old.",
            "source": "templates"}
    assert check_clean([good], tok, 64, 0.6) == []
    assert any("exact" in m for m in check_clean([good, dict(good)], tok, 64, 0.6))
    near = dict(good, instruction="Quick question: How old is Tomo?")
    assert any("near" in m for m in check_clean([good, near], tok, 64, 0.6))
    assert any("longer" in m for m in check_clean([good], tok, 5, 0.6))
    assert any("empty" in m for m in check_clean([dict(good, response=" ")], tok, 64, 0.6))
    with pytest.raises(ValueError):
        clean({}, tok)
    with pytest.raises(ValueError):
        clean(noisy_sources(), tok, max_tokens=2)
    with pytest.raises(ValueError):
        template_records(5, 0, paraphrase=2)


def test_self_generated_records(tok):
    from lib.llm.checkpoint import load_model
    from lib.sft.data import self_generated_records
    recs = self_generated_records(load_model("tiny-lm"), tok, 6, seed=0, max_new_tokens=8)
    assert len(recs) == 6 and all({"prompt", "completion", "problem"} <= set(r) for r in recs)
    assert all("\n" not in r["completion"] for r in recs)
    assert np.all([isinstance(r["prompt"], str) for r in recs])
