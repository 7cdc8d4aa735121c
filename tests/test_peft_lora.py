"""Tests of lib.peft.lora: the LoRA layer, injection, merge / unmerge, QLoRA-style base."""
import copy

import pytest
import torch
import torch.nn as nn

from lib.llm.config import LMConfig
from lib.llm.model import TinyLM
from lib.llm.quant import QuantLinear
from lib.peft.lora import (LoRALinear, inject_lora, lora_layers, lora_state_dict, merge_lora,
                           unmerge_lora)
from lib.peft.methods import count_trainable, trainable_formula

SMALL = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=48)


def small(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    return TinyLM(LMConfig(**{**SMALL, **kw})).to(dtype).eval()


def _randomize_B(model, scale=0.1):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in lora_layers(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g, dtype=m.lora_B.dtype) * scale)


def test_layer_formula_init_and_delta():
    torch.manual_seed(0)
    base = nn.Linear(20, 12, bias=False)
    layer = LoRALinear(copy.deepcopy(base), r=4, alpha=8)
    assert layer.scaling == 2.0 and layer.lora_A.shape == (4, 20) and layer.lora_B.shape == (12, 4)
    assert torch.all(layer.lora_B == 0) and layer.lora_A.abs().max() > 0
    x = torch.randn(3, 7, 20)
    torch.testing.assert_close(layer(x), base(x))      # B = 0: unchanged at initialisation
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = x @ base.weight.T + 2.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.delta_weight(), 2.0 * layer.lora_B @ layer.lora_A)
    assert not layer.base.weight.requires_grad
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 4 * (20 + 12)


def test_layer_validation():
    lin = nn.Linear(4, 4, bias=False)
    for kw, err in [({"r": 0}, ValueError), ({"r": 2.5}, ValueError), ({"alpha": 0}, ValueError),
                    ({"dropout": 1.0}, ValueError)]:
        with pytest.raises(err):
            LoRALinear(lin, **kw)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1))


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj"),
                                     ("gate_proj", "up_proj", "down_proj")])
def test_inject_counts_and_unchanged_output(targets):
    m = small()
    ids = torch.randint(0, 97, (2, 11))
    ref = m(ids).logits
    names = inject_lora(m, r=3, alpha=6, targets=targets)
    assert len(names) == 2 * len(targets) and set(lora_layers(m)) == set(names)
    assert count_trainable(m) == trainable_formula("lora", m.config, r=3, targets=targets)
    torch.testing.assert_close(m(ids).logits, ref, atol=0, rtol=0)
    assert set(lora_state_dict(m)) == {f"{n}.lora_{k}" for n in names for k in "AB"}


def test_inject_validation():
    m = small()
    with pytest.raises(ValueError, match="targets"):
        inject_lora(m, targets=("wq",))
    inject_lora(m)
    with pytest.raises(ValueError, match="already"):
        inject_lora(m)
    with pytest.raises(ValueError, match="no LoRA"):
        merge_lora(small())
    with pytest.raises(TypeError):
        inject_lora("model")


def test_merge_unmerge_float64_exact_and_float32_close():
    ids = torch.randint(0, 97, (2, 13))
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        m = small(dtype)
        w0 = m.layers[0].self_attn.q_proj.weight.detach().clone()
        inject_lora(m, r=4, alpha=8, targets=("q_proj", "v_proj", "down_proj"))
        _randomize_B(m)
        un = m(ids).logits.detach()
        assert merge_lora(m) == 6
        merged = m(ids).logits
        scale = float(un.abs().max())
        assert (merged - un).abs().max() <= rtol * scale
        with pytest.raises(RuntimeError, match="already"):
            merge_lora(m)
        unmerge_lora(m)
        torch.testing.assert_close(m(ids).logits, un, atol=rtol * scale, rtol=0)
        w1 = m.layers[0].self_attn.q_proj.base.weight
        assert (w1 - w0).abs().max() <= 10 * torch.finfo(dtype).eps * w0.abs().max()


def test_training_moves_only_lora_and_base_untouched():
    from lib.align.sft import SFTConfig, sft_train

    base = small()
    m = copy.deepcopy(base)
    inject_lora(m, r=2, alpha=4)
    frozen = {k: v.clone() for k, v in m.state_dict().items() if "lora_" not in k}
    ex = [([1, 2, 3], [4, 5]), ([6, 7], [8, 9, 10])]
    h = sft_train(m, ex, 0, SFTConfig(steps=30, batch_size=2, lr=1e-2, warmup_steps=0))
    assert h["loss"][-1] < h["loss"][0]
    after = m.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())
    assert any(m.lora_B.abs().max() > 0 for m in lora_layers(m).values())


def test_qlora_style_base_is_4bit_and_frozen():
    m = small()
    ids = torch.randint(0, 97, (2, 9))
    ref = m(ids).logits
    inject_lora(m, r=2, alpha=4, quantize="nf4", block_size=16)
    lay = m.layers[0].self_attn.q_proj
    assert isinstance(lay, LoRALinear) and isinstance(lay.base, QuantLinear)
    assert isinstance(m.layers[0].mlp.up_proj, QuantLinear)     # every block linear is 4-bit
    assert count_trainable(m) == trainable_formula("qlora", m.config, r=2)
    out = m(ids).logits
    assert 0 < (out - ref).abs().max() < 0.1 * ref.abs().max()  # quantization error, not garbage
    with pytest.raises(TypeError, match="4-bit"):
        lay.merge()
