"""Tests of lib.llm.prune: masks equal torch.nn.utils.prune's, exact sparsity, structured units,
the recovery fine-tune keeps the masks."""
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as tprune

from helpers import small_lm
from lib.llm import prune as P


def _torch_mask(weight, fn, *args, **kw):
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    fn(lin, "weight", *args, **kw)
    return lin.weight_mask.bool()


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_magnitude_mask_equals_l1_unstructured(amount):
    w = torch.randn(24, 40, generator=torch.Generator().manual_seed(0))
    mine = P.magnitude_mask(w, amount)
    assert torch.equal(mine, _torch_mask(w, tprune.l1_unstructured, amount=amount))
    assert int((~mine).sum()) == round(amount * w.numel())


@pytest.mark.parametrize("amount", [0.2, 0.55, 0.8])
def test_global_masks_equal_global_unstructured_and_layer_masks_per_tensor(amount):
    torch.manual_seed(1)
    lins = [nn.Linear(16, 8, bias=False), nn.Linear(8, 32, bias=False), nn.Linear(32, 4, bias=False)]
    with torch.no_grad():
        lins[1].weight.mul_(5)  # a layer of large weights loses less under global pruning
    ws = {str(i): lin.weight.detach().clone() for i, lin in enumerate(lins)}
    mine = P.magnitude_masks(ws, amount, "global")
    tprune.global_unstructured([(lin, "weight") for lin in lins],
                               pruning_method=tprune.L1Unstructured, amount=amount)
    for i, lin in enumerate(lins):
        assert torch.equal(mine[str(i)], lin.weight_mask.bool())
    total = sum(w.numel() for w in ws.values())
    assert sum(int((~m).sum()) for m in mine.values()) == round(amount * total)
    assert (~mine["1"]).float().mean() < (~mine["0"]).float().mean()
    per_layer = P.magnitude_masks(ws, amount, "layer")
    for n, w in ws.items():
        assert torch.equal(per_layer[n], P.magnitude_mask(w, amount))


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("amount", [0.25, 0.5, 0.8])
def test_structured_mask_equals_ln_structured(dim, n, amount):
    w = torch.randn(20, 12, generator=torch.Generator().manual_seed(2))
    mine = P.structured_mask(w, amount, dim=dim, n=n)
    assert torch.equal(mine, _torch_mask(w, tprune.ln_structured, amount=amount, n=n, dim=dim))
    kept = mine.any(dim=1 - dim)
    assert int((~kept).sum()) == round(amount * w.shape[dim])


def test_head_and_channel_masks_are_structured_and_match_ln_structured():
    model = small_lm(n_layers=2, n_heads=4, n_kv_heads=2, d_model=32, d_ff=64)
    masks = P.head_masks(model, 0.5, "layer")
    hd = model.config.head_dim
    for i, layer in enumerate(model.layers):
        o = masks[f"layers.{i}.self_attn.o_proj.weight"]
        q = masks[f"layers.{i}.self_attn.q_proj.weight"]
        heads = o[0].view(4, hd)
        assert torch.all(heads.all(1) | ~heads.any(1)) and int(heads.all(1).sum()) == 2
        assert torch.equal(q[:, 0], o[0]) and torch.all(o == o[:1])
        # the heads kept are those ln_structured keeps on o_proj viewed as (heads, d * hd)
        w = layer.self_attn.o_proj.weight.detach().view(-1, 4, hd).permute(1, 0, 2).reshape(4, -1)
        assert torch.equal(P.structured_mask(w, 0.5, dim=0)[:, 0], heads.all(1))
    ch = P.ffn_channel_masks(model, 0.25, "layer")
    for i, layer in enumerate(model.layers):
        down = ch[f"layers.{i}.mlp.down_proj.weight"]
        ref = _torch_mask(layer.mlp.down_proj.weight.detach(), tprune.ln_structured, amount=0.25,
                          n=2, dim=1)
        assert torch.equal(down, ref)
        assert torch.equal(ch[f"layers.{i}.mlp.gate_proj.weight"][:, 0], down[0])
        assert torch.equal(ch[f"layers.{i}.mlp.up_proj.weight"][:, 0], down[0])
    g = P.ffn_channel_masks(model, 0.25, "global")
    removed = sum(int((~g[f"layers.{i}.mlp.down_proj.weight"][0]).sum()) for i in range(2))
    assert removed == round(0.25 * 2 * 64)


def test_removing_a_head_removes_its_output_and_sparsity_is_exact():
    model = small_lm()
    ids = torch.randint(0, model.config.vocab_size, (2, 10))
    masks = P.head_masks(model, 1.0, "global")  # every head: attention adds nothing
    net = P.pruned(model, masks)
    assert net is not model and P.sparsity(model) == 0
    x = net.embed_tokens(ids)
    cos, sin = net.rope_cos[:10][None, None], net.rope_sin[:10][None, None]
    with torch.no_grad():
        att = net.layers[0].self_attn(net.layers[0].input_layernorm(x), cos, sin)
    assert float(att.abs().max()) == 0
    ws = P.prunable_weights(model)
    n = sum(w.numel() for w in ws.values())
    um = P.magnitude_masks(ws, 0.6, "global")
    assert P.sparsity(P.pruned(model, um)) == round(0.6 * n) / n


def test_recovery_keeps_masks_and_lowers_the_training_loss():
    torch.manual_seed(0)
    model = small_lm(vocab_size=50, max_seq_len=64)
    tokens = torch.arange(3000) % 50  # a periodic sequence the model can learn
    masks = P.magnitude_masks(P.prunable_weights(model), 0.5, "global")
    cfg = P.RecoveryConfig(seed=0, steps=15, batch_size=4, seq_len=16, lr=1e-2, eval_windows=8)
    run = P.train_recovery(cfg, model, masks, tokens, tokens)
    n = sum(m.numel() for m in masks.values())
    assert P.sparsity(run.model) == round(0.5 * n) / n
    assert run.log.eval_returns[-1] < run.log.eval_returns[0]
    assert len(run.log.updates) == 15 and run.log.eval_steps == [0, 15]
    assert P.sparsity(model) == 0  # the original is untouched


def test_errors():
    model = small_lm()
    with pytest.raises(ValueError, match="amount"):
        P.magnitude_mask(torch.randn(3, 3), 1.5)
    with pytest.raises(ValueError, match="scope"):
        P.magnitude_masks({"a": torch.randn(3)}, 0.5, "block")
    with pytest.raises(ValueError, match="two axes"):
        P.structured_mask(torch.randn(5), 0.5)
    with pytest.raises(ValueError, match="dim"):
        P.structured_mask(torch.randn(5, 2), 0.5, dim=2)
    with pytest.raises(KeyError, match="no parameter"):
        P.apply_masks(model, {"nope": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="bool"):
        P.apply_masks(model, {"layers.0.mlp.up_proj.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no decoder-block"):
        P.prunable_weights(nn.Linear(3, 3))
    with pytest.raises(TypeError, match="TinyLM"):
        P.head_masks(nn.Linear(3, 3), 0.5)
    with pytest.raises(ValueError, match="steps"):
        P.RecoveryConfig(steps=0)
    with pytest.raises(TypeError, match="RecoveryConfig"):
        P.train_recovery({}, model, {}, torch.arange(100), torch.arange(100))
