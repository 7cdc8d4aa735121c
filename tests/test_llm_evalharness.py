"""The evaluation harness: items, prompt formats, option log-likelihoods, intervals, pass@k."""
import itertools
from math import comb

import numpy as np
import pytest
import torch

from lib.data import arithmetic_facts
from lib.llm import evalharness as eh
from helpers import small_lm


class CharTok:
    """A tokenizer of single characters (ids 1..), enough to exercise the harness."""

    def encode(self, text):
        return [1 + (ord(ch) % 60) for ch in text]


def test_items_are_deterministic_with_uniform_answer_positions():
    facts = arithmetic_facts()
    a = eh.arithmetic_mc_items(facts, seed=3)
    assert a == eh.arithmetic_mc_items(facts, seed=3)
    assert a != eh.arithmetic_mc_items(facts, seed=4)
    for it, p in zip(a, facts):
        assert it.options[it.answer] == str(p.answer) and len(set(it.options)) == 4
        assert all(int(o) >= 0 for o in it.options)
        assert it.stem == f"{p.expression} ="
    counts = np.bincount([it.answer for it in a], minlength=4)
    assert counts.min() > 0.2 * len(a)  # each place near 25 % of 674


def test_formats():
    it = eh.MCItem("What is 1 + 2?", ("3", "4", "2", "13"), 0, "arithmetic", "1 + 2 =")
    ctx, conts = eh.format_item(it, "mmlu")
    assert ctx.endswith("A. 3\nB. 4\nC. 2\nD. 13\nAnswer:") and conts == [" A", " B", " C", " D"]
    assert "multiple choice questions about arithmetic" in ctx
    ctx, conts = eh.format_item(it, "cloze")
    assert ctx == "Q: What is 1 + 2?\nA: 1 + 2 =" and conts == [" 3.", " 4.", " 2.", " 13."]
    with pytest.raises(ValueError, match="style"):
        eh.format_item(it, "letters")
    with pytest.raises(ValueError, match="distinct"):
        eh.MCItem("q", ("1", "1", "2", "3"), 0, "s")
    with pytest.raises(ValueError, match="option index"):
        eh.MCItem("q", ("1", "4", "2", "3"), 4, "s")


def test_continuation_logprobs_match_one_sequence_at_a_time():
    model = small_lm()
    rng = np.random.default_rng(0)
    ctx = [list(rng.integers(1, 60, size=int(rng.integers(1, 9)))) for _ in range(7)]
    cont = [list(rng.integers(1, 60, size=int(rng.integers(1, 5)))) for _ in range(7)]
    lp, nt = eh.continuation_logprobs(model, ctx, cont, batch_size=3)
    assert list(nt) == [len(c) for c in cont]
    for i in range(7):
        ids = torch.tensor([ctx[i] + cont[i]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
        want = sum(float(logp[len(ctx[i]) - 1 + j, t]) for j, t in enumerate(cont[i]))
        assert lp[i] == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="as many"):
        eh.continuation_logprobs(model, ctx, cont[:-1])
    with pytest.raises(ValueError, match="at least one token"):
        eh.continuation_logprobs(model, [[]], [[1]])


def test_score_items_fast_path_equals_general_path_and_reruns_identically():
    model = small_lm(max_seq_len=256)
    items = eh.arithmetic_mc_items(arithmetic_facts()[:12], seed=0)
    tok = CharTok()
    fast = eh.score_items(model, tok, items, "mmlu")   # one-token continuations
    ctx, cont = [], []
    for it in items:
        c, conts = eh.format_item(it, "mmlu")
        ctx += [tok.encode(c)] * 4
        cont += [tok.encode(k) for k in conts]
    slow, _ = eh.continuation_logprobs(model, ctx, cont)
    np.testing.assert_allclose(fast.logprobs.reshape(-1), slow, atol=1e-5)
    cloze = eh.score_items(model, tok, items, "cloze")
    again = eh.score_items(model, tok, items, "cloze")
    assert np.array_equal(cloze.logprobs, again.logprobs)
    assert cloze.correct.shape == (12,) and 0 <= cloze.accuracy <= 1


def test_wilson_interval_matches_the_closed_form_and_edges():
    lo, hi = eh.wilson_interval(47, 120)
    # the closed form, written out independently
    z, n, p = 1.959963984540054, 120, 47 / 120
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (lo, hi) == pytest.approx((c - h, c + h), abs=1e-12)
    assert eh.wilson_interval(0, 10)[0] == 0.0
    assert eh.wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    assert eh.wilson_interval(0, 10)[1] > 0
    for bad in ((11, 10), (-1, 10), (0, 0)):
        with pytest.raises(ValueError):
            eh.wilson_interval(*bad)
    with pytest.raises(TypeError):
        eh.wilson_interval(0.5, 10)
    with pytest.raises(ValueError, match="level"):
        eh.wilson_interval(1, 10, level=1.0)


def test_bootstrap_interval_close_to_wilson():
    x = np.random.default_rng(0).random(400) < 0.4
    b = eh.bootstrap_interval(x, seed=1)
    w = eh.wilson_interval(int(x.sum()), x.size)
    assert b == pytest.approx(w, abs=0.01)
    assert b == eh.bootstrap_interval(x, seed=1)
    with pytest.raises(ValueError):
        eh.bootstrap_interval([1.0])


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_enumeration_and_binomials(n):
    rng = np.random.default_rng(n)
    for _ in range(6):
        hits = rng.random(n) < rng.random()
        c = int(hits.sum())
        for k in range(1, n + 1):
            want = 1 - comb(n - c, k) / comb(n, k)
            assert eh.pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)
            assert eh.pass_at_k_enumerate(hits, k) == pytest.approx(want, abs=1e-12)
            assert eh.pass_at_k_plugin(n, c, k) <= eh.pass_at_k(n, c, k) + 1e-12


def test_pass_at_k_large_n_is_stable_and_mean_over_problems():
    assert eh.pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert 0 < eh.pass_at_k(1000, 3, 1) == pytest.approx(0.003)
    hits = np.array([[True, False, False, False], [False] * 4, [True] * 4])
    assert eh.mean_pass_at_k(hits, 1) == pytest.approx((0.25 + 0 + 1) / 3)
    assert eh.mean_pass_at_k(hits, 4) == pytest.approx(2 / 3)
    brute = np.mean([np.mean([row[list(s)].any() for s in itertools.combinations(range(4), 2)])
                     for row in hits])
    assert eh.mean_pass_at_k(hits, 2) == pytest.approx(brute)


def test_pass_at_k_validation():
    for bad in ((0, 0, 1), (5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1)):
        with pytest.raises(ValueError):
            eh.pass_at_k(*bad)
    with pytest.raises(TypeError):
        eh.pass_at_k(5.0, 2, 1)
    with pytest.raises(ValueError, match="bool"):
        eh.pass_at_k_enumerate([1, 0], 1)
    with pytest.raises(ValueError, match="2-D"):
        eh.mean_pass_at_k(np.array([True, False]), 1)
