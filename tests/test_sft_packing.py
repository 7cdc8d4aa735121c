"""Tests of lib.sft.packing (seed-16) and the explicit 4-D mask of TinyLM: per-sample loss
packed = unpacked, equal to Hugging Face's Llama given the 4-D mask; a plain causal mask leaks."""
import pytest
import torch

from lib.llm.model import IGNORE_INDEX
from lib.sft.packing import (Packed, block_causal_mask, forward_packed, pack, pad_batch,
                             padding_fraction, per_sample_loss, tokens_per_second)
from helpers import hf_twin, small_lm


def samples(n=9, seed=0, lo=3, hi=20):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        L = int(torch.randint(lo, hi, (1,), generator=g))
        ids = torch.randint(0, 96, (L,), generator=g).tolist()
        p = int(torch.randint(1, L - 1, (1,), generator=g))
        out.append((ids, [0] * p + [1] * (L - p)))
    return out


@pytest.mark.parametrize("order", ["ffd", "sequential"])
def test_pack_invariants(order):
    s = samples(15, seed=1)
    pk = pack(s, 32, pad_id=96, order=order)
    seen = set()
    for i, (r, st, n) in enumerate(pk.placement):
        ids, m = s[i]
        assert n == len(ids) and pk.input_ids[r, st:st + n].tolist() == ids
        assert pk.position_ids[r, st:st + n].tolist() == list(range(n))
        assert len(set(pk.segment_ids[r, st:st + n].tolist())) == 1
        assert pk.targets[r, st + n - 1] == IGNORE_INDEX          # never predicts the next sample
        want = [ids[t + 1] if m[t + 1] else -100 for t in range(n - 1)]
        assert pk.targets[r, st:st + n - 1].tolist() == want
        seen.update((r, st + k) for k in range(n))
    assert len(seen) == int((pk.segment_ids > 0).sum()) == sum(len(i) for i, _ in s)
    assert bool((pk.targets[pk.segment_ids == 0] == IGNORE_INDEX).all())
    padded = pad_batch(s, pad_id=96)
    assert padded.n_rows == len(s) and pk.padding_fraction < padded.padding_fraction
    lower = -(-sum(len(i) for i, _ in s) // 32)
    assert pk.n_rows >= lower


def test_ffd_no_worse_than_sequential():
    for seed in range(5):
        s = samples(20, seed=seed)
        assert pack(s, 40, 96).n_rows <= pack(s, 40, 96, order="sequential").n_rows


def test_block_causal_mask_brute_force():
    seg = torch.tensor([[1, 1, 2, 2, 2, 0], [1, 2, 3, 3, 0, 0]])
    m = block_causal_mask(seg)
    assert m.shape == (2, 1, 6, 6) and m.dtype == torch.bool
    for r in range(2):
        for q in range(6):
            for k in range(6):
                s_q, s_k = int(seg[r, q]), int(seg[r, k])
                want = (k <= q and s_q == s_k and s_q > 0) or k == q
                assert bool(m[r, 0, q, k]) == want
    assert padding_fraction(seg) == pytest.approx(3 / 12)


def test_packed_loss_equals_each_sample_alone_and_causal_mask_leaks():
    model = small_lm()
    s = samples(10, seed=2)
    pk = pack(s, 48, pad_id=96)
    with torch.no_grad():
        packed = per_sample_loss(forward_packed(model, pk), pk)
        padded_b = pad_batch(s, pad_id=96)
        padded = per_sample_loss(forward_packed(model, padded_b), padded_b)
        alone = torch.stack([per_sample_loss(forward_packed(model, pad_batch([x], 96)),
                                             pad_batch([x], 96))[0] for x in s])
        leaky = per_sample_loss(forward_packed(model, pk, mask="causal"), pk)
    assert float((packed - alone).abs().max()) < 1e-5
    assert float((padded - alone).abs().max()) < 1e-5
    first = [i for i, (r, st, n) in enumerate(pk.placement) if st == 0]
    later = [i for i in range(len(s)) if i not in first]
    assert float((leaky[first] - alone[first]).abs().max()) < 1e-5   # nothing before them
    assert float((leaky[later] - alone[later]).abs().min()) > 1e-4    # they see other samples


def test_explicit_4d_mask_in_tinylm():
    model = small_lm()
    ids = torch.randint(0, 97, (2, 10))
    causal = torch.ones(10, 10, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        ref = model(ids).logits
        torch.testing.assert_close(model(ids, attention_mask=causal).logits, ref, atol=1e-6,
                                   rtol=0)
        add = torch.zeros(1, 1, 10, 10).masked_fill(~causal, float("-inf"))
        torch.testing.assert_close(model(ids, attention_mask=add).logits, ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="shape"):
        model(ids, attention_mask=torch.ones(2, 1, 10, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="attends to nothing"):
        model(ids, attention_mask=torch.zeros(2, 1, 10, 10, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool or floating"):
        model(ids, attention_mask=torch.ones(2, 1, 10, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="negative"):
        model(ids, attention_mask=torch.ones(2, 1, 10, 10))


def test_equals_hf_llama_with_explicit_4d_mask_and_hf_default_leaks():
    pytest.importorskip("transformers")
    model = small_lm()
    hf = hf_twin(model)
    pk = pack(samples(10, seed=3), 48, pad_id=96)
    real = pk.segment_ids > 0
    mask = pk.attention_mask()
    with torch.no_grad():
        ours = forward_packed(model, pk)
        theirs = hf(pk.input_ids, attention_mask=mask, position_ids=pk.position_ids).logits
        assert float((ours - theirs).abs()[real].max()) < 1e-5
        add = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
        theirs = hf(pk.input_ids, attention_mask=add, position_ids=pk.position_ids)
        assert float((ours - theirs.logits).abs()[real].max()) < 1e-5
        # transformers' default path (all-ones 2-D mask) is a plain causal mask: it leaks
        ones = hf(pk.input_ids, attention_mask=torch.ones_like(pk.input_ids),
                  position_ids=pk.position_ids).logits
        leaky = forward_packed(model, pk, mask="causal")
        assert float((ones - leaky).abs()[real].max()) < 1e-5
        assert float((ones - ours).abs()[real].max()) > 1e-2
        # and the HF loss of the packed rows equals ours
        labels = torch.full_like(pk.targets, -100)
        labels[:, 1:] = pk.targets[:, :-1]
        from lib.sft.loss import completion_loss
        hf_loss = hf(pk.input_ids, attention_mask=mask, position_ids=pk.position_ids,
                     labels=labels).loss
        assert abs(float(hf_loss - completion_loss(ours, pk.targets))) < 1e-5


def test_throughput_and_validation():
    model = small_lm()
    s = samples(6)
    pk = pack(s, 32, 96)
    r = tokens_per_second(model, pk, repeats=1)
    assert r["real_tokens"] == sum(len(i) for i, _ in s) and r["slots"] == pk.input_ids.numel()
    assert r["real_tokens_per_s"] > 0
    r = tokens_per_second(model, pk, repeats=1, train=False)
    assert r["seconds"] > 0
    with pytest.raises(ValueError, match="longer than row_len"):
        pack(s, 4, 96)
    with pytest.raises(ValueError, match="order"):
        pack(s, 32, 96, order="best")
    with pytest.raises(ValueError, match="non-empty"):
        pack([], 32, 96)
    with pytest.raises(ValueError, match="at least 2"):
        pack([[1]], 32, 96)
    with pytest.raises(ValueError, match="loss_mask"):
        pack([([1, 2], [1])], 32, 96)
    with pytest.raises(ValueError, match="shorter"):
        pad_batch(s, 96, row_len=2)
    with pytest.raises(ValueError, match="block"):
        forward_packed(model, pk, mask="full")
    with pytest.raises(TypeError):
        forward_packed(model, "x")
    with pytest.raises(ValueError):
        block_causal_mask(torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError):
        tokens_per_second(model, pk, repeats=0)
    assert isinstance(pk, Packed) and pack([[1, 2, 3]], 8, 0).targets.tolist()[0][:3] == \
        [2, 3, -100]
