"""Tests of lib.peft.prefix: prefix tuning through the KV-cache path, prompt tuning, attention maps."""
import pytest
import torch

from lib.llm.config import LMConfig
from lib.llm.generate import generate
from lib.llm.model import TinyLM
from lib.peft.methods import count_trainable, trainable_formula
from lib.peft.prefix import PrefixCache, PrefixTuning, PromptTuning, prefix_attention

SMALL = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)


def small(**kw):
    torch.manual_seed(0)
    return TinyLM(LMConfig(**{**SMALL, **kw})).eval()


@pytest.mark.parametrize("cls", [PrefixTuning, PromptTuning])
@pytest.mark.parametrize("kv", [2, 4, 1])
def test_init_from_text_equals_reading_the_text_first(cls, kv):
    base = small(n_kv_heads=kv)
    ctx = torch.randint(0, 97, (1, 5))
    ids = torch.randint(0, 97, (3, 9))
    m = cls(base, n_virtual=5)
    m.init_from_text(ctx[0])
    ref = base(torch.cat([ctx.expand(3, -1), ids], 1)).logits[:, 5:]
    torch.testing.assert_close(m(ids).logits, ref, atol=1e-5, rtol=1e-5)
    name = "prefix" if cls is PrefixTuning else "prompt"
    assert count_trainable(m) == trainable_formula(name, base.config, n_virtual=5)
    if cls is PrefixTuning:   # width n_kv_heads x head_dim per layer, not d_model
        assert m.prefix_keys.shape == (2, kv, 5, base.config.head_dim)


@pytest.mark.parametrize("cls", [PrefixTuning, PromptTuning])
def test_generate_with_cache_and_padding_equals_full_recompute(cls):
    base = small()
    m = cls(base, n_virtual=4, init_std=0.5)
    ids = torch.randint(0, 97, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[0, :2] = 0
    a = generate(m, ids, 6, attention_mask=mask)
    b = generate(m, ids, 6, attention_mask=mask, use_cache=False)
    assert torch.equal(a, b)
    # a left-padded row gives what the same row alone gives
    alone = generate(m, ids[:1, 2:], 6)
    assert torch.equal(a[0, 2:], alone[0])


@pytest.mark.parametrize("cls", [PrefixTuning, PromptTuning])
def test_gradients_reach_only_the_virtual_tokens(cls):
    from lib.align.sft import SFTConfig, sft_train

    base = small()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    m = cls(base, n_virtual=3)
    ids = torch.randint(0, 97, (2, 6))
    out = m(ids, targets=ids.roll(-1, 1))
    out.loss.backward()
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == (["prefix_keys", "prefix_values"] if cls is PrefixTuning else ["prompt"])
    assert all(p.grad is None for n, p in m.named_parameters() if not p.requires_grad)
    ex = [([1, 2, 3], [4, 5]), ([6, 7], [8, 9, 10])]
    h = sft_train(m, ex, 0, SFTConfig(steps=40, batch_size=2, lr=5e-2, warmup_steps=0))
    assert h["loss"][-1] < h["loss"][0]
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())


def test_prefix_cache_and_attention_maps():
    base = small()
    m = PrefixTuning(base, n_virtual=4, init_std=0.5)
    ids = torch.randint(0, 97, (2, 6))
    maps = prefix_attention(m, ids)
    assert maps.shape == (2, 2, 4, 6, 10)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 4, 6))
    assert torch.all(maps[..., 0, 5:] == 0)            # first query: prefix + itself only
    assert torch.all(maps[..., :4] > 0)                # every query sees every prefix slot
    # the maps reproduce the attention output of layer 0
    att = base.layers[0].self_attn
    captured = {}
    h = att.register_forward_hook(lambda mod, a, o: captured.update(x=a, out=o))
    m(ids)
    h.remove()
    x, cos, sin = captured["x"][:3]
    v = att.v_proj(x).view(2, 6, 2, 8).transpose(1, 2)
    v = torch.cat([m.prefix_values[0].unsqueeze(0).expand(2, -1, -1, -1), v], 2).repeat_interleave(2, 1)
    o = (maps[0] @ v).transpose(1, 2).reshape(2, 6, 32)
    torch.testing.assert_close(att.o_proj(o), captured["out"], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        PrefixCache(torch.zeros(2, 2, 3, 8), torch.zeros(2, 2, 4, 8), 1)


def test_validation():
    base = small()
    with pytest.raises(TypeError, match="TinyLM"):
        PrefixTuning("x")
    with pytest.raises(ValueError, match="n_virtual"):
        PromptTuning(base, n_virtual=0)
    m = PromptTuning(base, n_virtual=3)
    with pytest.raises(ValueError, match="3 token ids"):
        m.init_from_text([1, 2])
    with pytest.raises(TypeError, match="PrefixTuning"):
        prefix_attention(m, torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="new_cache"):
        PrefixTuning(base, 2)(torch.zeros(1, 2, dtype=torch.long), cache=base.new_cache(1))
