"""lib.llm.attention_variants: GQA == MHA with repeated kv heads (groups = heads is MHA, one group
is MQA), the head mapping, an explicit per-head reference, MLA's absorbed form, cache bytes."""
import pytest
import torch

from lib.llm.attention_variants import (LatentAttention, attention_parameters, expand_kv, kv_head_of,
                                        pool_kv, set_absorbed)
from lib.llm.variants import VariantAttention, VariantConfig, VariantLM


def layer(attention, n_kv=None, dtype=torch.float64):
    torch.manual_seed(0)
    cfg = VariantConfig(d_model=64, n_heads=8, attention=attention, n_kv_heads=n_kv, max_seq_len=32)
    m = VariantAttention(cfg).to(dtype)
    for p in m.parameters():
        torch.nn.init.normal_(p, 0, 0.2)
    return m


def pos_for(T, head_dim, dtype=torch.float64):
    torch.manual_seed(0)
    m = VariantLM(VariantConfig(d_model=8 * head_dim, n_heads=8, max_seq_len=32)).to(dtype)
    return m.position_inputs(0, T)


def reference(attn, x, pos):
    """Per query head h: softmax(q_h k_{g(h)}^T / sqrt(d) + causal) v_{g(h)}, written as loops."""
    from lib.llm.model import apply_rope

    B, T, _ = x.shape
    H, KV, hd = attn.n_heads, attn.n_kv_heads, attn.head_dim
    q = apply_rope(attn.q_proj(x).view(B, T, H, hd).transpose(1, 2), pos["cos"], pos["sin"])
    k = apply_rope(attn.k_proj(x).view(B, T, KV, hd).transpose(1, 2), pos["cos"], pos["sin"])
    v = attn.v_proj(x).view(B, T, KV, hd).transpose(1, 2)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    heads = []
    for h in range(H):
        g = kv_head_of(h, H, KV)
        s = (q[:, h] @ k[:, g].transpose(-1, -2)) / hd ** 0.5
        heads.append(s.masked_fill(~causal, float("-inf")).softmax(-1) @ v[:, g])
    return attn.o_proj(torch.stack(heads, 1).transpose(1, 2).reshape(B, T, H * hd))


@pytest.mark.parametrize("attention,n_kv", [("mha", None), ("gqa", 4), ("gqa", 2), ("mqa", None)])
def test_layer_equals_per_head_reference(attention, n_kv):
    a = layer(attention, n_kv)
    x = torch.randn(2, 10, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pos = pos_for(10, 8)
    torch.testing.assert_close(a(x, pos), reference(a, x, pos), rtol=1e-10, atol=1e-10)


def test_gqa_is_mha_with_repeated_kv_heads():
    x = torch.randn(2, 10, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pos = pos_for(10, 8)
    for attention, n_kv in (("gqa", 2), ("gqa", 4), ("mqa", None)):
        a = layer(attention, n_kv)
        m = expand_kv(a)
        assert m.n_kv_heads == 8 and m.cfg.attention == "mha"
        torch.testing.assert_close(m(x, pos), a(x, pos), rtol=1e-12, atol=1e-12)
        # the expanded rows of query head h are kv head kv_head_of(h)'s rows
        hd = a.head_dim
        for h in range(8):
            g = kv_head_of(h, 8, a.n_kv_heads)
            assert torch.equal(m.k_proj.weight[h * hd:(h + 1) * hd], a.k_proj.weight[g * hd:(g + 1) * hd])


def test_groups_equal_heads_is_mha_and_one_group_is_mqa():
    x = torch.randn(2, 10, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pos = pos_for(10, 8)
    mha = layer("mha")
    g8 = pool_kv(mha, 8)  # groups = heads: the identical layer
    assert g8.cfg.attention == "mha"
    assert torch.equal(g8(x, pos), mha(x, pos))
    g1 = pool_kv(mha, 1)  # one group: multi-query attention
    assert g1.cfg.attention == "mqa" and g1.n_kv_heads == 1
    torch.testing.assert_close(g1.k_proj.weight, mha.k_proj.weight.view(8, 8, 64).mean(0))
    g2 = pool_kv(mha, 2)  # pooling in steps equals pooling at once
    torch.testing.assert_close(pool_kv(g2, 1)(x, pos), g1(x, pos), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="divisor"):
        pool_kv(mha, 3)


def test_kv_head_of_validation():
    assert [kv_head_of(h, 8, 2) for h in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [kv_head_of(h, 4, 4) for h in range(4)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="divisible"):
        kv_head_of(0, 8, 3)
    with pytest.raises(ValueError, match="query_head"):
        kv_head_of(8, 8, 2)


def test_sdpa_gqa_agrees_with_torch_multihead_attention():
    """MHA without positions equals torch.nn.MultiheadAttention with the same projections."""
    torch.manual_seed(0)
    cfg = VariantConfig(d_model=32, n_heads=4, attention="mha", position="none", max_seq_len=16)
    a = VariantAttention(cfg).double()
    ref = torch.nn.MultiheadAttention(32, 4, bias=False, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        ref.out_proj.weight.copy_(a.o_proj.weight)
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    mask = ~torch.ones(7, 7, dtype=torch.bool).tril()
    expect, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(a(x, {"mask": None, "cos": None, "sin": None}), expect)


@pytest.mark.parametrize("position", ["rope", "alibi", "none"])
def test_mla_absorbed_equals_explicit(position):
    torch.manual_seed(0)
    m = VariantLM(VariantConfig(vocab_size=61, d_model=64, n_heads=4, attention="mla", position=position,
                                max_seq_len=32)).double().eval()
    for p in m.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, 0, 0.2)
    ids = torch.randint(0, 61, (2, 12), generator=torch.Generator().manual_seed(3))
    explicit = m(ids).logits
    set_absorbed(m)
    assert all(l.self_attn.absorbed for l in m.layers)
    torch.testing.assert_close(m(ids).logits, explicit, rtol=1e-10, atol=1e-10)
    cache = m.new_cache(2)  # absorbed decoding from the latent cache
    parts = [m(ids[:, :5], cache=cache).logits] + [m(ids[:, t:t + 1], cache=cache).logits
                                                   for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(parts, 1), explicit, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="no MLA"):
        set_absorbed(VariantLM(VariantConfig(vocab_size=61, d_model=64)))


def test_cache_bytes_measured_equal_formula_and_order():
    measured = {}
    for kind in ("mha", "gqa", "mqa", "mla"):
        cfg = VariantConfig(vocab_size=61, d_model=64, n_layers=3, n_heads=8, attention=kind,
                            max_seq_len=32)
        m = VariantLM(cfg).eval()
        cache = m.new_cache(2)
        m(torch.randint(0, 61, (2, 9)), cache=cache)
        m(torch.randint(0, 61, (2, 1)), cache=cache)
        per_token = cache.nbytes() / (2 * 10)
        assert per_token == cfg.n_layers * cfg.kv_floats_per_token * 4
        measured[kind] = per_token
        assert attention_parameters(m) > 0
    assert measured["mha"] > measured["gqa"] > measured["mla"] > measured["mqa"]
    assert isinstance(VariantLM(VariantConfig(attention="mla")).layers[0].self_attn, LatentAttention)
