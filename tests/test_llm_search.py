"""Tests of lib.llm.search: exhaustive search, greedy trace, beam search (cross-checked with transformers)."""
import itertools

import pytest
import torch

from lib.llm.config import LMConfig
from lib.llm.generate import greedy
from lib.llm.model import TinyLM
from helpers import hf_twin
from lib.llm.search import (AllowedSequences, beam_search, exhaustive_search, greedy_trace,
                            sequence_logprobs)

V = 23


def small(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64,
               tie_embeddings=False, init_std=0.3)
    return TinyLM(LMConfig(**{**cfg, **kw})).eval()


def hf_beams(hf, prompt, k, n, eos, lp, es):
    out = hf.generate(prompt[None], attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                      num_beams=k, num_return_sequences=k, do_sample=False, max_new_tokens=n,
                      eos_token_id=eos, pad_token_id=eos if eos is not None else 0,
                      length_penalty=lp, early_stopping=es, return_dict_in_generate=True, output_scores=True)
    seqs = []
    for row in out.sequences[:, len(prompt):].tolist():
        if eos is not None and eos in row:
            row = row[:row.index(eos) + 1]
        seqs.append(row)
    # num_beams=1 dispatches to greedy search in transformers, which has no sequence scores
    return seqs, out.sequences_scores.tolist() if k > 1 else None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_equals_transformers(seed):
    m = small(seed)
    hf = hf_twin(m)
    g = torch.Generator().manual_seed(seed)
    matched = 0
    for k, lp, es in [(1, 1.0, True), (2, 1.0, False), (3, 0.5, False), (4, 2.0, True), (5, 1.0, "never"),
                      (3, 0.0, False), (6, -0.5, False)]:
        prompt = torch.randint(0, V, (5,), generator=g)
        eos = int(torch.randint(0, V, (1,), generator=g))
        ours = beam_search(m, prompt, k, 12, eos_token_id=eos, length_penalty=lp, early_stopping=es)
        seqs, scores = hf_beams(hf, prompt, k, 12, eos, lp, es)
        assert ours.sequences == seqs, (k, lp, es)
        if scores is not None:
            torch.testing.assert_close(torch.tensor(ours.scores), torch.tensor(scores), rtol=1e-4, atol=1e-4)
        matched += 1
    assert matched == 7


@pytest.mark.parametrize("name", ["tiny-lm-arith-sft", "tiny-lm-arith-direct"])
def test_beam_and_greedy_equal_transformers_on_the_shipped_export(name, tmp_path):
    """lib.llm.export.export_hf -> AutoModelForCausalLM: same beams and scores, same greedy tokens."""
    from transformers import AutoModelForCausalLM

    from lib.align.tasks import chain_arithmetic_task, prompt_text
    from lib.llm.checkpoint import load_model
    from lib.llm.export import export_hf
    from lib.llm.tokenizer import load_tokenizer
    tok = load_tokenizer()
    m = load_model(name)
    export_hf(m, tmp_path / name)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / name).eval()
    for p, k in zip(chain_arithmetic_task().held_out[:4], (1, 2, 3, 4)):
        prompt = torch.tensor(tok.encode(prompt_text(p)))
        seqs, scores = hf_beams(hf, prompt, k, 24, tok.eos_id, 1.0, k == 1)
        ours = beam_search(m, prompt, k, 24, eos_token_id=tok.eos_id, early_stopping=k == 1)
        assert ours.sequences == seqs
        if scores is not None:
            torch.testing.assert_close(torch.tensor(ours.scores), torch.tensor(scores), rtol=1e-4,
                                       atol=1e-4)
        if k == 1:  # transformers runs greedy search for one beam
            assert greedy_trace(m, prompt, 24, tok.eos_id)[0] == seqs[0]


def test_one_beam_is_greedy():
    for seed in range(3):
        m = small(seed)
        prompt = torch.randint(0, V, (4,), generator=torch.Generator().manual_seed(seed))
        ref = greedy(m, prompt[None], 10)[0, 4:].tolist()
        assert beam_search(m, prompt, 1, 10).sequences[0] == ref
        toks, steps = greedy_trace(m, prompt, 10)
        assert toks == ref and len(steps) == 10
        eos = ref[3]
        want = ref[:ref.index(eos) + 1]
        assert beam_search(m, prompt, 1, 10, eos_token_id=eos, early_stopping=True).sequences[0] == want
        assert greedy_trace(m, prompt, 10, eos_token_id=eos)[0] == want


def test_sum_of_greedy_logprobs_and_beam_sums_match_scoring():
    m = small(3)
    prompt = torch.arange(5)
    toks, steps = greedy_trace(m, prompt, 6)
    lp = sequence_logprobs(m, prompt, [toks])
    assert abs(float(lp[0]) - sum(s.logprob for s in steps)) < 1e-4
    res = beam_search(m, prompt, 3, 6, length_penalty=0.0)
    lps = sequence_logprobs(m, prompt, res.sequences)
    torch.testing.assert_close(lps, torch.tensor(res.sum_logprobs, dtype=torch.float64), atol=1e-4, rtol=0)
    assert res.scores == sorted(res.scores, reverse=True)


def test_exhaustive_is_exact_and_dominates_greedy_and_beam():
    m = small(4, vocab_size=6)
    prompt = torch.tensor([1, 2, 3])
    space = [list(s) for s in itertools.product(range(6), repeat=4)]        # all V**n sequences
    ex = exhaustive_search(m, prompt, space)
    assert ex.n_scored == 6 ** 4
    # the shared-prompt cache gives the same numbers as scoring each full sequence from scratch
    full = torch.cat([prompt.expand(len(space), -1), torch.tensor(space)], 1)
    ref = m(full).logits[:, 2:-1].log_softmax(-1).gather(-1, full[:, 3:, None]).squeeze(-1).sum(-1)
    torch.testing.assert_close(ex.logprobs, ref.double(), atol=1e-4, rtol=0)
    assert int(ref.argmax()) == ex.best or abs(float(ref.max() - ref[ex.best])) < 1e-5
    assert bool((ex.logprobs[ex.order][:-1] >= ex.logprobs[ex.order][1:]).all())
    g = greedy_trace(m, prompt, 4)[0]
    for k in (1, 2, 4, 8):
        b = beam_search(m, prompt, k, 4, length_penalty=0.0).sequences[0]
        assert float(ex.logprobs[ex.best]) >= float(sequence_logprobs(m, prompt, [b])[0]) - 1e-5
    assert float(ex.logprobs[ex.best]) >= float(sequence_logprobs(m, prompt, [g])[0]) - 1e-5
    assert ex.rank_of(ex.best) == 0


def test_allowed_sequences_constrains_greedy_and_beam():
    m = small(5)
    prompt = torch.tensor([3, 1, 4, 1, 5])
    space = [[7, 8], [7, 9, 2], [10], [11, 12, 13]]
    end = 0
    proc = AllowedSequences(space, prompt_len=5, end_token_id=end)
    assert proc.allowed([]) == [7, 10, 11] and proc.allowed([7]) == [8, 9] and proc.allowed([10]) == [0]
    assert proc.allowed([1]) == []
    g = greedy_trace(m, prompt, 5, eos_token_id=end, processors=[proc])[0]
    assert g[:-1] in space and g[-1] == end
    res = beam_search(m, prompt, 3, 5, eos_token_id=end, processors=[proc], length_penalty=0.0)
    assert all(s[:-1] in space and s[-1] == end for s in res.sequences)
    ex = exhaustive_search(m, prompt, [s + [end] for s in space])
    assert res.sequences[0] == space[ex.best] + [end]        # 3 beams cover this small space
    # same result as transformers' own prefix constraint
    from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor
    theirs = PrefixConstrainedLogitsProcessor(lambda b, ids: proc.allowed(ids[5:].tolist()) or [end], 1)
    ids = torch.tensor([[3, 1, 4, 1, 5, 7]])
    logits = torch.randn(1, V)
    assert torch.equal(torch.isinf(proc(ids, logits)), torch.isinf(theirs(ids, logits)))


def test_tree_records_candidates():
    m = small(6)
    res = beam_search(m, torch.arange(4), 3, 5)
    assert len(res.tree) == res.n_calls == 5
    for step in res.tree:
        assert len(step) == 6
        assert sum(c["status"] == "kept" for c in step) in (0, 3)
        assert all(0 <= c["parent"] < 3 for c in step)
    assert sum(c["status"] == "finished" for c in res.tree[-1]) == 3


def test_validation():
    m = small()
    with pytest.raises(ValueError, match="num_beams"):
        beam_search(m, [1, 2], 0, 3)
    with pytest.raises(ValueError, match="early_stopping"):
        beam_search(m, [1, 2], 2, 3, early_stopping="sometimes")
    with pytest.raises(ValueError, match="max_seq_len"):
        beam_search(m, [1, 2], 2, 63)
    with pytest.raises(ValueError, match="one sequence"):
        beam_search(m, torch.zeros(2, 3, dtype=torch.long), 2, 3)
    with pytest.raises(TypeError, match="list of ints"):
        greedy_trace(m, [1.5, 2], 3)
    with pytest.raises(ValueError, match="at least one continuation"):
        sequence_logprobs(m, [1, 2], [[]])
    with pytest.raises(ValueError, match="non-empty"):
        AllowedSequences([], 3)
    with pytest.raises(TypeError, match="length_penalty"):
        beam_search(m, [1, 2], 2, 3, length_penalty="long")
