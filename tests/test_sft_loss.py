"""Tests of lib.sft.loss (seed-14): the completion-only SFT loss equals torch's and Hugging
Face's, masked positions get zero gradient, and lib.align.sft uses the same loss."""
import pytest
import torch
import torch.nn.functional as F

from lib.sft.loss import (IGNORE_INDEX, completion_loss, shift_labels, targets_from_mask,
                          token_nll)
from helpers import hf_twin, small_lm


def batch(seed=0, B=3, T=12, V=97):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        start = int(torch.randint(1, T - 2, (1,), generator=g))
        mask[b, start:T - b] = 1                 # a completion after a prompt, then padding
    return ids, mask


def test_manual_cross_entropy_equals_torch():
    for seed in range(3):
        ids, mask = batch(seed)
        logits = torch.randn(*ids.shape, 97, generator=torch.Generator().manual_seed(seed))
        tg = targets_from_mask(ids, mask)
        keep = tg != IGNORE_INDEX
        manual = token_nll(logits, tg).sum() / keep.sum()
        ref = F.cross_entropy(logits.reshape(-1, 97), tg.reshape(-1), ignore_index=-100)
        assert abs(float(manual - ref)) < 1e-6
        assert abs(float(completion_loss(logits, tg) - ref)) < 1e-6
        assert abs(float(completion_loss(logits, tg, "sum") - token_nll(logits, tg).sum())) < 1e-5
        per_row = token_nll(logits, tg).sum(-1) / keep.sum(-1)
        assert abs(float(completion_loss(logits, tg, "sample") - per_row.mean())) < 1e-6


def test_shift_and_mask_conventions():
    labels = torch.tensor([[5, -100, 7, 8]])
    assert shift_labels(labels).tolist() == [[-100, 7, 8, -100]]
    ids = torch.tensor([[1, 2, 3, 4]])
    assert targets_from_mask(ids, torch.tensor([[0, 0, 1, 1]])).tolist() == [[-100, 3, 4, -100]]


def test_same_targets_as_align_sft_batch():
    from lib.align.sft import sft_batch, sft_loss
    examples = [([1, 2, 3], [4, 5]), ([6], [7, 8, 9, 10])]
    ids, targets, attn = sft_batch(examples, pad_id=0)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 1, 1, 1, 1]])
    assert torch.equal(targets_from_mask(ids, mask), targets)
    m = small_lm()
    with torch.no_grad():
        assert float(sft_loss(m, ids, targets)) == float(completion_loss(m(ids).logits, targets))


def test_masked_positions_get_zero_gradient():
    ids, mask = batch(1)
    logits = torch.randn(*ids.shape, 97, requires_grad=True)
    tg = targets_from_mask(ids, mask)
    completion_loss(logits, tg).backward()
    g = logits.grad.abs().sum(-1)
    assert bool((g[tg == IGNORE_INDEX] == 0).all())
    assert bool((g[tg != IGNORE_INDEX] > 0).all())
    # and through a model: a prompt-only batch row contributes nothing
    m = small_lm()
    out = m(ids).logits
    out.retain_grad()
    completion_loss(out, tg).backward()
    assert bool((out.grad.abs().sum(-1)[tg == IGNORE_INDEX] == 0).all())


def test_equals_hf_labels_loss():
    pytest.importorskip("transformers")
    m = small_lm()
    hf = hf_twin(m)
    for seed in range(3):
        ids, mask = batch(seed)
        labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
        with torch.no_grad():
            ours = completion_loss(m(ids).logits, shift_labels(labels))
            theirs = hf(ids, labels=labels).loss
        assert abs(float(ours - theirs)) < 1e-6


def test_validation():
    logits = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError, match="no completion"):
        completion_loss(logits, torch.full((2, 3), -100))
    with pytest.raises(ValueError, match="shape|need"):
        completion_loss(logits, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        completion_loss(logits, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="floating"):
        completion_loss(torch.zeros(2, 3, 5, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must be in"):
        completion_loss(logits, torch.full((2, 3), 5))
    with pytest.raises(ValueError, match="reduction"):
        completion_loss(logits, torch.zeros(2, 3, dtype=torch.long), "mean")
    with pytest.raises(TypeError):
        completion_loss("x", torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError):
        shift_labels(torch.zeros(3))
    with pytest.raises(ValueError):
        targets_from_mask(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(TypeError):
        targets_from_mask([1, 2], [1, 0])
