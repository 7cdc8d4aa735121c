"""Tests of lib.peft.methods and lib.peft.adapters: every method's trainable count equals its
formula, is unchanged at initialisation where the method promises it, and memory is measured."""
import pytest
import torch

from lib.llm.config import LMConfig
from lib.llm.model import TinyLM
from lib.peft.adapters import BottleneckAdapter, inject_adapters
from lib.peft.methods import (DEFAULTS, METHODS, block_parameters, count_trainable, freeze_lower,
                              held_bytes, make_method, memory_after_step, trainable_formula)

SMALL = dict(vocab_size=97, d_model=32, n_layers=4, n_heads=4, n_kv_heads=2, max_seq_len=64)


def small(**kw):
    torch.manual_seed(0)
    return TinyLM(LMConfig(**{**SMALL, **kw})).eval()


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_trainable_counts_equal_formulas(method, tie):
    base = small(tie_embeddings=tie)
    m = make_method(method, base)
    assert count_trainable(m) == trainable_formula(method, base.config)
    assert count_trainable(base) == base.num_parameters()           # base left as it was
    if method == "full":
        assert count_trainable(m) == base.num_parameters()


def test_block_parameters_and_partial_by_hand():
    cfg = small().config
    d, hd, ff = 32, 8, cfg.d_ff
    assert block_parameters(cfg) == d * 4 * hd + 2 * d * 2 * hd + 4 * hd * d + 3 * d * ff + 2 * d
    m = freeze_lower(small(), 2)
    assert count_trainable(m) == 2 * block_parameters(cfg) + d
    with pytest.raises(ValueError, match="n_frozen"):
        freeze_lower(small(), 4)


@pytest.mark.parametrize("method", ["full", "partial", "lora", "adapter"])
def test_unchanged_output_at_initialisation(method):
    base = small()
    ids = torch.randint(0, 97, (2, 10))
    torch.testing.assert_close(make_method(method, base)(ids).logits, base(ids).logits, atol=0, rtol=0)


def test_adapter_formula_identity_and_validation():
    a = BottleneckAdapter(10, 3)
    h = torch.randn(4, 10)
    assert torch.equal(a(h), h)
    with torch.no_grad():
        a.up.weight.normal_()
    expected = h + (torch.nn.functional.gelu(h @ a.down.weight.T + a.down.bias) @ a.up.weight.T + a.up.bias)
    torch.testing.assert_close(a(h), expected)
    assert sum(p.numel() for p in a.parameters()) == 2 * 10 * 3 + 3 + 10
    with pytest.raises(ValueError):
        BottleneckAdapter(10, 0)
    m = small()
    names = inject_adapters(m, 4)
    assert len(names) == 2 * 4 and all(n.endswith(("o_proj", "down_proj")) for n in names)
    with pytest.raises(ValueError, match="no linear"):
        inject_adapters(small(), 4, after=("wq",))


def test_make_method_validation():
    with pytest.raises(ValueError, match="method"):
        make_method("bitfit", small())
    with pytest.raises(ValueError, match="unknown options"):
        make_method("lora", small(), rank=4)
    with pytest.raises(TypeError):
        make_method("lora", "model")
    with pytest.raises(ValueError):
        trainable_formula("lora", small(n_experts=2).config)
    assert set(DEFAULTS) == set(METHODS)


def test_memory_after_a_real_step():
    base = small()
    ids = torch.randint(0, 97, (2, 8))
    loss = lambda m: m(ids, targets=ids.roll(-1, 1)).loss  # noqa: E731
    mem = {k: memory_after_step(make_method(k, base), loss) for k in METHODS}
    for k, v in mem.items():
        n = trainable_formula(k, base.config)
        assert v["grads"] == 4 * n and v["optimizer"] == 8 * n          # float32 grad, Adam m and v
        assert v["total"] == v["weights"] + v["grads"] + v["optimizer"]
    full = 4 * base.num_parameters()
    assert mem["full"]["weights"] == full
    assert mem["lora"]["weights"] == full + 4 * trainable_formula("lora", base.config)
    assert mem["qlora"]["weights"] < mem["lora"]["weights"]            # 4-bit block weights
    assert min(mem, key=lambda k: mem[k]["total"]) == "qlora"
    assert held_bytes(base)["grads"] == 0
    with pytest.raises(ValueError, match="no trainable"):
        m = small()
        for p in m.parameters():
            p.requires_grad_(False)
        memory_after_step(m, loss)
