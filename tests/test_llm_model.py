"""Tests of lib.llm.config / lib.llm.model: validation, building blocks, cross-checks with torch and HF."""
import pytest
import torch
import torch.nn.functional as F

from lib.llm.config import LMConfig
from helpers import hf_twin
from lib.llm.model import (MoE, RMSNorm, SwiGLU, TinyLM, active_parameters_per_token, apply_rope,
                           count_parameters, moe_load_balancing_loss, rope_cos_sin)



SMALL = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=48)


def small(**kw):
    torch.manual_seed(0)
    return TinyLM(LMConfig(**{**SMALL, **kw})).eval()


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("kw, msg", [
    (dict(d_model=30, n_heads=4), "divisible by n_heads"),
    (dict(n_heads=4, n_kv_heads=3), "divisible by n_kv_heads"),
    (dict(d_model=12, n_heads=4), "even for RoPE"),
    (dict(n_experts=2, top_k=3), "top_k"),
    (dict(n_experts=-1), "n_experts"),
    (dict(vocab_size=0), "vocab_size"),
    (dict(n_kv_heads=0), "n_kv_heads"),
])
def test_config_rejects_bad_combinations(kw, msg):
    with pytest.raises(ValueError, match=msg):
        LMConfig(**{**SMALL, **kw})


def test_config_types_defaults_and_roundtrip():
    with pytest.raises(TypeError):
        LMConfig(d_model=32.0)
    c = LMConfig(d_model=128, n_heads=4, n_kv_heads=None)
    assert c.n_kv_heads == 4 and c.attention_kind == "MHA" and c.d_ff == 352 and c.head_dim == 32
    assert LMConfig(n_kv_heads=1).attention_kind == "MQA" and LMConfig().attention_kind == "GQA"
    assert LMConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown"):
        LMConfig.from_dict({"width": 3})


# ----------------------------------------------------------------------------- blocks
def test_rmsnorm_equals_torch():
    torch.manual_seed(0)
    ours = RMSNorm(16, eps=1e-5)
    ref = torch.nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        w = torch.randn(16)
        ours.weight.copy_(w)
        ref.weight.copy_(w)
    x = torch.randn(3, 5, 16) * 3
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=1e-5)


def test_rope_is_a_rotation_with_relative_dot_products():
    torch.manual_seed(0)
    hd = 8
    q, k = torch.randn(hd), torch.randn(hd)
    cos, sin = rope_cos_sin(torch.arange(20), hd)
    rq, rk = apply_rope(q.expand(20, hd), cos, sin), apply_rope(k.expand(20, hd), cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(20), atol=1e-5, rtol=1e-5)  # norms kept
    d1 = rq[7] @ rk[3]     # relative offset 4
    d2 = rq[15] @ rk[11]   # same offset, other place
    assert abs(float(d1 - d2)) < 1e-4
    torch.testing.assert_close(apply_rope(q[None], *rope_cos_sin(torch.zeros(1), hd)), q[None])  # position 0
    with pytest.raises(ValueError):
        rope_cos_sin(torch.arange(3), 7)


def test_moe_one_expert_top1_equals_dense_ffn():
    cfg = LMConfig(**{**SMALL, "n_experts": 1, "top_k": 1})
    torch.manual_seed(0)
    moe = MoE(cfg)
    dense = SwiGLU(cfg.d_model, cfg.d_ff)
    dense.load_state_dict(moe.experts[0].state_dict())
    x = torch.randn(2, 7, cfg.d_model)
    torch.testing.assert_close(moe(x), dense(x), atol=1e-6, rtol=0)


def test_moe_routing_by_hand():
    cfg = LMConfig(**{**SMALL, "n_experts": 4, "top_k": 2})
    torch.manual_seed(1)
    moe = MoE(cfg)
    x = torch.randn(5, cfg.d_model)
    out = moe(x)
    probs = (x @ moe.gate.weight.T).softmax(-1)
    for n in range(5):
        top = probs[n].argsort(descending=True)[:2]
        w = probs[n, top] / probs[n, top].sum()
        want = sum(w[j] * moe.experts[int(e)](x[n]) for j, e in enumerate(top))
        torch.testing.assert_close(out[n], want, atol=1e-6, rtol=1e-5)
    assert moe.last_topk.shape == (5, 2) and moe.last_router_logits.shape == (5, 4)


def test_load_balancing_loss_values_and_hf():
    n_e = 4
    uniform = torch.zeros(12, n_e)  # ties: top-k picks the first experts, but P is uniform -> loss = top_k
    assert abs(float(moe_load_balancing_loss(uniform, 2)) - 2.0) < 1e-6
    collapsed = torch.tensor([[10.0, 0, 0, 0]]).repeat(8, 1)
    assert float(moe_load_balancing_loss(collapsed, 1)) > 3.9
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func
    torch.manual_seed(0)
    logits = torch.randn(30, n_e)
    ref = load_balancing_loss_func((logits,), n_e, top_k=2)
    torch.testing.assert_close(moe_load_balancing_loss(logits, 2), ref, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError):
        moe_load_balancing_loss(torch.zeros(2, 3, 4), 1)


# ----------------------------------------------------------------------------- the model
def test_forward_shapes_loss_and_param_counts():
    for kw in ({}, {"n_experts": 4, "top_k": 2}, {"tie_embeddings": False}):
        m = small(**kw)
        ids = torch.randint(0, 97, (2, 11))
        out = m(ids, targets=ids, output_hidden_states=True)
        assert out.logits.shape == (2, 11, 97) and len(out.hidden_states) == 3
        parts = count_parameters(m)
        assert sum(parts.values()) == sum(p.numel() for p in m.parameters()) == m.num_parameters()
        assert (parts["lm_head"] == 0) == m.config.tie_embeddings
        if kw.get("n_experts"):
            assert out.aux_loss is not None and len(out.router_logits) == 2
            assert torch.allclose(out.loss, out.lm_loss + m.config.moe_aux_weight * out.aux_loss)
            assert active_parameters_per_token(m) == m.num_parameters() - 2 * 2 * 3 * 32 * m.config.d_ff
        else:
            assert out.aux_loss is None and torch.equal(out.loss, out.lm_loss)
            assert active_parameters_per_token(m) == m.num_parameters()
    # ignore_index
    m = small()
    ids = torch.randint(0, 97, (1, 6))
    tgt = ids.clone()
    tgt[0, :3] = -100
    want = F.cross_entropy(m(ids).logits[0, 3:], ids[0, 3:])
    torch.testing.assert_close(m(ids, targets=tgt).loss, want)


def test_causality_and_inputs_embeds():
    m = small()
    ids = torch.randint(0, 97, (1, 10))
    a = m(ids).logits
    ids2 = ids.clone()
    ids2[0, 7] = (ids2[0, 7] + 1) % 97
    b = m(ids2).logits
    torch.testing.assert_close(a[:, :7], b[:, :7])           # the past does not see the future
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    torch.testing.assert_close(m(inputs_embeds=m.embed_tokens(ids)).logits, a)


def test_input_validation():
    m = small()
    with pytest.raises(TypeError, match="integer"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="token ids"):
        m(torch.tensor([[0, 97]]))
    with pytest.raises(ValueError, match="token ids"):
        m(torch.tensor([[-1, 3]]))
    with pytest.raises(ValueError, match="too long"):
        m(torch.zeros(1, 49, dtype=torch.long))
    with pytest.raises(ValueError, match="batch, seq_len"):
        m(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one"):
        m()
    with pytest.raises(ValueError, match="inputs_embeds"):
        m(inputs_embeds=torch.zeros(1, 3, 7))
    with pytest.raises(ValueError, match="targets"):
        m(torch.zeros(1, 4, dtype=torch.long), targets=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        m(torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3))
    with pytest.raises(TypeError):
        TinyLM({"d_model": 3})


def test_kv_cache_matches_full_forward():
    for kw in ({}, {"n_experts": 3, "top_k": 2}, {"n_kv_heads": 1}, {"n_kv_heads": 4}):
        m = small(**kw)
        ids = torch.randint(0, 97, (2, 15))
        full = m(ids).logits
        cache = m.new_cache(2)
        parts = [m(ids[:, :6], cache=cache).logits, m(ids[:, 6:9], cache=cache).logits]
        parts += [m(ids[:, t:t + 1], cache=cache).logits for t in range(9, 15)]
        torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
        assert cache.length == 15 and cache.nbytes() > 0
    with pytest.raises(ValueError, match="too long"):
        m(torch.zeros(2, 40, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="batch size"):
        m(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_left_padding_with_attention_mask():
    m = small()
    torch.manual_seed(3)
    a = torch.randint(0, 97, (1, 5))
    b = torch.randint(0, 97, (1, 8))
    pad = torch.zeros(1, 3, dtype=torch.long)
    batch = torch.cat([torch.cat([pad, a], 1), b])
    mask = torch.cat([torch.cat([torch.zeros(1, 3), torch.ones(1, 5)], 1), torch.ones(1, 8)]).long()
    out = m(batch, attention_mask=mask).logits
    torch.testing.assert_close(out[0, 3:], m(a).logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], m(b).logits[0], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- cross-checks with HF
@pytest.mark.parametrize("kw", [{}, {"tie_embeddings": False}, {"n_kv_heads": 4}, {"n_kv_heads": 1}])
def test_logits_equal_hf_llama(kw):
    m = small(**kw)
    hf = hf_twin(m)
    ids = torch.randint(0, 97, (3, 40))
    with torch.no_grad():
        torch.testing.assert_close(m(ids).logits, hf(ids).logits, atol=1e-5, rtol=0)
        # padded batch too
        mask = torch.ones(3, 40, dtype=torch.long)
        mask[0, :5] = 0
        ours = m(ids, attention_mask=mask).logits
        theirs = hf(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits
        torch.testing.assert_close(ours[:, 5:], theirs[:, 5:], atol=1e-5, rtol=0)


def test_logits_equal_hf_mixtral():
    from transformers import MixtralConfig, MixtralForCausalLM
    from lib.llm.export import from_hf_state_dict, hf_config_dict, to_hf_state_dict
    m = small(n_experts=4, top_k=2)
    d = hf_config_dict(m.config)
    hf = MixtralForCausalLM(MixtralConfig(**{k: v for k, v in d.items() if k not in ("architectures", "model_type")}))
    hf.load_state_dict(to_hf_state_dict(m), strict=False)
    hf.tie_weights()
    hf.eval()
    ids = torch.randint(0, 97, (2, 30))
    with torch.no_grad():
        torch.testing.assert_close(m(ids).logits, hf(ids).logits, atol=1e-5, rtol=0)
    back = from_hf_state_dict({k: v for k, v in hf.state_dict().items()}, m.config)
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, m(ids).logits, atol=0, rtol=0)


def test_position_ids_are_validated():
    # regression: a negative position wrapped to the last one, >= max_seq_len raised a bare IndexError
    m = small()
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"position_ids must lie in \[0, max_seq_len"):
        m(ids, position_ids=torch.tensor([[-1, 0, 1]]))
    with pytest.raises(ValueError, match="position_ids must lie in"):
        m(ids, position_ids=torch.tensor([[0, 1, m.config.max_seq_len]]))
    with pytest.raises(TypeError, match="position_ids must be integers"):
        m(ids, position_ids=torch.tensor([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="shape"):
        m(ids, position_ids=torch.tensor([[0, 1]]))
    explicit = m(ids, position_ids=torch.arange(3)[None]).logits
    assert torch.equal(explicit, m(ids).logits)


def test_export_hf_rejects_a_non_model_before_writing(tmp_path):
    from lib.llm.export import export_hf

    with pytest.raises(TypeError, match="expects a TinyLM"):
        export_hf("not a model", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        export_hf(small(), tmp_path / "out2", tokenizer_dir=tmp_path)
    assert not (tmp_path / "out2").exists()


def test_init_weights_scheme_and_validation():
    from lib.llm.model import init_weights

    torch.manual_seed(0)
    block = torch.nn.ModuleDict({"o_proj": torch.nn.Linear(256, 256), "q_proj": torch.nn.Linear(256, 256),
                                 "norm": torch.nn.LayerNorm(256)})
    init_weights(block, 0.02, n_layers=8)
    assert torch.all(block["o_proj"].bias == 0) and torch.all(block["norm"].weight == 1)
    assert torch.all(block["norm"].bias == 0)
    assert abs(block["q_proj"].weight.std().item() - 0.02) < 0.002
    assert abs(block["o_proj"].weight.std().item() - 0.02 / 4) < 0.0005  # 1/sqrt(2 * 8)
    with pytest.raises(ValueError, match="std > 0"):
        init_weights(block, 0.0, 4)
    with pytest.raises(TypeError, match="nn.Module"):
        init_weights("not a model", 0.02, 4)
