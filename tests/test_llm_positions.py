"""lib.llm.positions: ALiBi slopes and biases (== transformers' Bloom after softmax), RoPE tables
(== transformers' Llama rotary embedding), the relative-position property, wavelengths, NTK/PI."""
import math

import pytest
import torch

from lib.llm.model import apply_rope, rope_cos_sin
from lib.llm.positions import (alibi_bias, alibi_probs, alibi_slopes, context_losses, ntk_theta,
                               rope_angles, rope_inv_freq, rope_override, rope_scores, rope_wavelengths)
from lib.llm.variants import VariantConfig, VariantLM


def test_alibi_slopes_geometric_formula():
    for n in (1, 2, 4, 8, 16):
        expect = torch.tensor([2.0 ** (-8.0 * h / n) for h in range(1, n + 1)], dtype=torch.float64)
        torch.testing.assert_close(alibi_slopes(n), expect, rtol=0, atol=0)
    s = alibi_slopes(6)  # 4 of the 4-head sequence, then 2 odd-indexed of the 8-head sequence
    torch.testing.assert_close(s, torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3],
                                               dtype=torch.float64))
    with pytest.raises(ValueError, match="n_heads"):
        alibi_slopes(0)


def test_alibi_bias_matrix():
    b = alibi_bias(4, 6)
    assert b.shape == (4, 6, 6)
    m = alibi_slopes(4)
    for h in range(4):
        for i in range(6):
            for j in range(i + 1):
                assert b[h, i, j].item() == pytest.approx(-m[h].item() * (i - j), abs=1e-7)
    assert torch.all(b.diagonal(dim1=1, dim2=2) == 0)
    with pytest.raises(ValueError, match="seq_len"):
        alibi_bias(4, 0)


@pytest.mark.parametrize("n_heads", [1, 4, 6, 8, 12])
def test_alibi_equals_bloom_after_softmax(n_heads):
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    T = 11
    hf = build_alibi_tensor(torch.ones(1, T), n_heads, torch.float64)  # (H, 1, T): slope * key pos
    torch.testing.assert_close(hf[:, 0, 1], alibi_slopes(n_heads), rtol=1e-6, atol=0)
    scores = torch.randn(n_heads, T, T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    ref = (scores + hf).masked_fill(~causal, float("-inf")).softmax(-1)
    # Bloom computes its slopes in float32 (relative error ~1e-7)
    torch.testing.assert_close(alibi_probs(scores), ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="heads"):
        alibi_probs(scores, n_heads=n_heads + 1)


def test_variant_alibi_attention_uses_the_bias():
    torch.manual_seed(0)
    m = VariantLM(VariantConfig(vocab_size=50, d_model=32, n_heads=4, position="alibi",
                                attention="mha", max_seq_len=32)).eval()
    pos = m.position_inputs(0, 5)
    torch.testing.assert_close(pos["mask"][0, :, 4, :5], alibi_bias(4, 5)[:, 4])
    assert torch.isinf(pos["mask"][0, :, 0, 1:]).all()


def test_rope_tables_equal_model_and_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    hd, base, T = 16, 10000.0, 40
    cos, sin = rope_cos_sin(torch.arange(T), hd, base)
    ang = rope_angles(torch.arange(T), hd, base)
    torch.testing.assert_close(cos, torch.cat([ang, ang], -1).cos().float(), atol=2e-6, rtol=0)
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, rope_theta=base,
                      max_position_embeddings=64, vocab_size=10)
    rot = LlamaRotaryEmbedding(cfg)
    x = torch.randn(2, 4, T, hd, generator=torch.Generator().manual_seed(0))
    hcos, hsin = rot(x, torch.arange(T)[None])
    torch.testing.assert_close(hcos[0], cos, atol=1e-6, rtol=0)
    torch.testing.assert_close(hsin[0], sin, atol=1e-6, rtol=0)
    q, k = x, x.flip(1)
    hq, hk = apply_rotary_pos_emb(q, k, hcos, hsin)
    torch.testing.assert_close(apply_rope(q, cos, sin), hq, atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_rope(k, cos, sin), hk, atol=1e-6, rtol=0)


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(32, generator=g), torch.randn(32, generator=g)
    S = rope_scores(q, k, 48)
    for delta in range(-47, 48):
        d = S.diagonal(-delta)  # entries with m - n = delta
        assert (d - d[0]).abs().max() < 1e-5 * max(1.0, d[0].abs().item())
    assert S.diagonal(0)[0].item() == pytest.approx(float(q @ k), abs=1e-5)
    with pytest.raises(ValueError, match="equal length"):
        rope_scores(q, k[:8], 4)


def test_wavelengths_follow_the_formula():
    for hd, base in ((16, 10000.0), (64, 500000.0), (8, 100.0)):
        w = rope_wavelengths(hd, base)
        i = torch.arange(hd // 2, dtype=torch.float64)
        torch.testing.assert_close(w, 2 * math.pi * base ** (2 * i / hd))
        assert w[0] == pytest.approx(2 * math.pi)
    with pytest.raises(ValueError, match="even"):
        rope_inv_freq(15)
    with pytest.raises(ValueError, match="base"):
        rope_inv_freq(16, 1.0)


def test_ntk_theta_scales_the_lowest_frequency_like_interpolation():
    hd, base, s = 16, 10000.0, 4.0
    f0, f1 = rope_inv_freq(hd, base), rope_inv_freq(hd, ntk_theta(base, s, hd))
    assert f1[0] == f0[0] == 1.0
    # the NTK base stretches frequency i by s^(2i/(d-2)): exactly 1/s at the last pair
    assert f1[-1].item() == pytest.approx(f0[-1].item() / s, rel=1e-12)
    with pytest.raises(ValueError, match="scale"):
        ntk_theta(base, 0.5, hd)


def test_rope_override_and_context_losses():
    torch.manual_seed(0)
    m = VariantLM(VariantConfig(vocab_size=50, d_model=32, n_heads=4, max_seq_len=64)).eval()
    before = m.config
    with rope_override(m, scale=2.0, theta=500.0):
        pos = m.position_inputs(0, 6)
        cos, _ = rope_cos_sin(torch.arange(6) / 2.0, 8, 500.0)
        torch.testing.assert_close(pos["cos"][0, 0], cos)
    assert m.config is before
    val = torch.randint(0, 50, (400,), generator=torch.Generator().manual_seed(1))
    from lib.llm.train import evaluate_loss

    plain = context_losses(m, val, [16, 32], n_tokens=64)
    assert plain[0] == evaluate_loss(m, val, 16, max_windows=4)
    assert plain[1] == evaluate_loss(m, val, 32, max_windows=2)  # the same 64 predictions
    pi = context_losses(m, val, [16, 32], train_len=16, method="pi", n_tokens=64)
    assert pi[0] == plain[0] and pi[1] != plain[1]
    with pytest.raises(ValueError, match="train_len"):
        context_losses(m, val, [32], method="ntk")
    with pytest.raises(ValueError, match="no whole window"):
        context_losses(m, val, [32], n_tokens=16)
    with pytest.raises(ValueError, match="position='rope'"):
        with rope_override(VariantLM(VariantConfig(vocab_size=50, d_model=32, position="alibi")), scale=2):
            pass


def test_position_losses_average_to_the_window_loss():
    from lib.llm.positions import position_losses
    from lib.llm.train import evaluate_loss

    torch.manual_seed(0)
    m = VariantLM(VariantConfig(vocab_size=50, d_model=32, n_heads=4, max_seq_len=64)).eval()
    val = torch.randint(0, 50, (600,), generator=torch.Generator().manual_seed(1))
    per_pos = position_losses(m, val, 32, max_windows=5)
    assert per_pos.shape == (32,)
    assert float(per_pos.mean()) == pytest.approx(evaluate_loss(m, val, 32, max_windows=5), rel=1e-5)
    ntk = position_losses(m, val, 32, method="ntk", train_len=16, max_windows=5)
    with rope_override(m, theta=ntk_theta(10000.0, 2.0, 8)):
        assert torch.allclose(ntk, position_losses(m, val, 32, max_windows=5))
    with pytest.raises(ValueError, match="method must be"):
        position_losses(m, val, 32, method="yarn")
