"""Tests of lib.llm.generate: processors vs Hugging Face warpers, cache vs no cache, eos, HF generate."""
import numpy as np
import pytest
import torch

from lib.llm.config import LMConfig
from lib.llm.generate import Temperature, TopK, TopP, apply_processors, generate, greedy, sample
from lib.llm.model import TinyLM
from helpers import hf_twin



def small(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    return TinyLM(LMConfig(**{**cfg, **kw})).eval()


def test_processors_equal_hf_warpers():
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)
    torch.manual_seed(0)
    ids = torch.zeros(4, 3, dtype=torch.long)
    logits = torch.randn(4, 50) * 2
    for ours, theirs in [(Temperature(0.7), TemperatureLogitsWarper(0.7)), (TopK(5), TopKLogitsWarper(5)),
                         (TopP(0.8), TopPLogitsWarper(0.8)), (TopP(0.05), TopPLogitsWarper(0.05)),
                         (TopP(1.0), TopPLogitsWarper(1.0))]:
        torch.testing.assert_close(ours(ids, logits.clone()), theirs(ids, logits.clone()))
    chain = [Temperature(0.5), TopK(10), TopP(0.9)]
    want = TopPLogitsWarper(0.9)(ids, TopKLogitsWarper(10)(ids, TemperatureLogitsWarper(0.5)(ids, logits.clone())))
    torch.testing.assert_close(apply_processors(chain, ids, logits.clone()), want)
    assert int(torch.isfinite(TopK(5)(ids, logits)).sum(-1).min()) == 5


def test_processor_validation():
    for bad in (lambda: Temperature(0), lambda: TopK(0), lambda: TopK(2.5), lambda: TopP(0), lambda: TopP(1.5)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError, match="must return a tensor"):
        apply_processors([lambda i, s: None], None, torch.zeros(1, 3))


def test_cache_and_no_cache_identical_greedy_and_sampled():
    for kw in ({}, {"n_experts": 4, "top_k": 2}):
        m = small(**kw)
        prompt = torch.randint(0, 61, (3, 7))
        a = generate(m, prompt, 15, use_cache=True)
        b = generate(m, prompt, 15, use_cache=False)
        assert torch.equal(a, b) and a.shape == (3, 22) and torch.equal(a[:, :7], prompt)
        procs = [Temperature(1.3), TopK(20), TopP(0.95)]
        s1 = generate(m, prompt, 12, processors=procs, do_sample=True, generator=torch.Generator().manual_seed(1))
        s2 = generate(m, prompt, 12, processors=procs, do_sample=True, use_cache=False,
                      generator=torch.Generator().manual_seed(1))
        assert torch.equal(s1, s2)
        s3 = sample(m, prompt, 12, temperature=1.3, top_k=20, top_p=0.95, generator=torch.Generator().manual_seed(1))
        assert torch.equal(s1, s3)


def test_greedy_is_argmax_and_info():
    m = small()
    prompt = torch.randint(0, 61, (2, 5))
    out, info = greedy(m, prompt, 6, return_info=True)
    ids = prompt
    for t in range(6):
        nxt = m(ids).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
    assert torch.equal(out, ids)
    assert info.logprobs.shape == (2, 6) and len(info.step_times_s) == 6 and bool((info.logprobs <= 0).all())


def test_eos_stops_and_pads():
    m = small()
    prompt = torch.randint(0, 61, (2, 4))
    free = greedy(m, prompt, 12)
    eos = int(free[0, 6])  # force row 0 to finish at its 3rd new token
    out = greedy(m, prompt, 12, eos_token_id=eos, pad_token_id=0)
    row0 = out[0, 4:].tolist()
    k = row0.index(eos)
    assert all(t == 0 for t in row0[k + 1:])
    assert out.shape[1] <= free.shape[1]


def test_left_padded_batch_generation_matches_single():
    m = small()
    torch.manual_seed(2)
    a, b = torch.randint(1, 61, (1, 4)), torch.randint(1, 61, (1, 7))
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), a], 1), b])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    out = greedy(m, batch, 10, attention_mask=mask)
    assert torch.equal(out[0, 7:], greedy(m, a, 10)[0, 4:])
    assert torch.equal(out[1, 7:], greedy(m, b, 10)[0, 7:])
    assert torch.equal(greedy(m, batch, 10, attention_mask=mask, use_cache=False), out)


def test_generate_validation():
    m = small()
    with pytest.raises(ValueError, match="max_seq_len"):
        generate(m, torch.zeros(1, 60, dtype=torch.long), 10)
    with pytest.raises(ValueError, match="input_ids"):
        generate(m, torch.zeros(4, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(m, torch.zeros(1, 2, dtype=torch.long), -1)
    assert generate(m, torch.zeros(1, 2, dtype=torch.long), 0).shape == (1, 2)


def test_same_tokens_as_hf_generate():
    pytest.importorskip("transformers")
    m = small(tie_embeddings=False)
    hf = hf_twin(m)
    prompt = torch.randint(0, 61, (2, 6))
    ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, do_sample=False,
                      pad_token_id=0)
    assert torch.equal(greedy(m, prompt, 20), ref)


def test_edge_inputs_are_rejected_clearly():
    # regressions: booleans were accepted as 1.0, float ids were silently cast to long
    for proc, bad in ((Temperature, True), (TopP, True), (TopK, True)):
        with pytest.raises(ValueError):
            proc(bad)
    m = small()
    with pytest.raises(TypeError, match="integer token ids"):
        generate(m, torch.zeros(1, 2), 3)
    with pytest.raises(TypeError, match="integer token ids"):
        generate(m, torch.zeros(1, 2, dtype=torch.bool), 3)


def _tiny_lm_12(seed=0):
    torch.manual_seed(seed)
    return TinyLM(LMConfig(vocab_size=12, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, d_ff=64, max_seq_len=32))


def test_sampled_hits_shape_seed_and_pass_at_k():
    from lib.llm.generate import sampled_hits
    model = _tiny_lm_12(2)
    prompts = [[1, 2], [3, 4], [5, 6]]
    check = lambda i, c: c[0] % 2 == 0
    h1 = sampled_hits(model, prompts, check, eos_id=11, samples=6, max_new_tokens=2, seed=5)
    h2 = sampled_hits(model, prompts, check, eos_id=11, samples=6, max_new_tokens=2, seed=5, batch_size=2)
    assert h1.shape == (3, 6) and h1.dtype == bool
    assert np.array_equal(h1, sampled_hits(model, prompts, check, eos_id=11, samples=6, max_new_tokens=2, seed=5))
    assert h2.shape == (3, 6)
    assert sampled_hits(model, prompts, check, 11, samples=1, max_new_tokens=2).shape == (3, 1)
    with pytest.raises(ValueError, match="samples"):
        sampled_hits(model, prompts, check, 11, samples=0)
