"""Tests of lib.llm.vlm (the tiny vision-language model): patches, examples, forward pass, attention
maps, training and the shipped checkpoint."""
import numpy as np
import pytest
import torch

from lib.data.shapes import QUESTIONS, make_shapes
from lib.llm.tokenizer import load_tokenizer
from lib.llm.vlm import (TinyVLM, VLMConfig, attention_maps, chance_levels, default_config, evaluate_vlm,
                         heldout_set, load_vlm, make_examples, patchify, train_vlm, VLMTrainConfig)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_patchify_numpy_torch_and_conv():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 12, 3)).astype(np.float32)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    assert np.array_equal(p[0, 1], x[0, 0:4, 4:8, :].reshape(-1))     # second patch: top row, second column
    assert np.array_equal(p[1, 3], x[1, 4:8, 0:4, :].reshape(-1))     # fourth patch: second row, first column
    assert np.allclose(patchify(torch.tensor(x), 4).numpy(), p)
    # a linear layer on patches == a strided convolution (the usual ViT implementation)
    lin = torch.nn.Linear(48, 5)
    conv = torch.nn.Conv2d(3, 5, 4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(lin.weight.view(5, 4, 4, 3).permute(0, 3, 1, 2))
        conv.bias.copy_(lin.bias)
        a = lin(patchify(torch.tensor(x), 4))
        b = conv(torch.tensor(x).permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError):
        patchify(x, 5)
    with pytest.raises(ValueError):
        patchify(x[0], 4)
    with pytest.raises(ValueError):
        patchify(x, 0)


def test_examples_alignment(tok):
    ds = make_shapes(6, seed=0)
    ex = make_examples(ds, tok, per_image=4)
    assert len(ex["input_ids"]) == 24
    for r in range(24):
        ids, tgt = ex["input_ids"][r], ex["targets"][r]
        assert ids[0] == tok.image_id
        L = int(ex["prompt_len"][r])
        mask = tgt != -100
        # targets are the next tokens over the answer (+ eos)
        assert torch.equal(tgt[mask], ids[1:][mask[:-1]])
        i, k = int(ex["image_index"][r]), ex["kinds"][int(ex["kind"][r])]
        assert tok.decode(tgt[mask].tolist(), skip_special_tokens=True) == " " + ds.answer(i, k)
        assert tok.decode(ids[:L].tolist()).endswith("\nA:")
    with pytest.raises(ValueError):
        make_examples(ds, tok, kinds=["size"])


def test_forward_shapes_and_validation(tok):
    cfg = default_config(tok.vocab_size)
    model = TinyVLM(cfg)
    ds = make_shapes(3, seed=0)
    ex = make_examples(ds, tok)
    trace = {}
    out = model(torch.as_tensor(ds.images), ex["input_ids"], tok.image_id, targets=ex["targets"], trace=trace)
    N, T = cfg.n_patches, ex["input_ids"].shape[1]
    assert trace["patches"] == (3, N, 48) and trace["image_tokens"] == (3, N, cfg.lm.d_model)
    assert out.logits.shape == (3, N + T - 1, tok.vocab_size)
    assert abs(float(out.loss.detach()) - np.log(tok.vocab_size)) < 1.0   # near-uniform at initialisation
    n = model.num_parameters()
    assert n["total"] == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError):
        model(torch.zeros(3, 16, 16, 3), ex["input_ids"], tok.image_id)
    with pytest.raises(TypeError):
        model(np.zeros((3, 24, 24, 3)), ex["input_ids"], tok.image_id)
    with pytest.raises(ValueError):
        model(torch.as_tensor(ds.images), ex["input_ids"][:, 1:], tok.image_id)
    with pytest.raises(ValueError):
        VLMConfig(lm=cfg.lm, image_size=22)
    with pytest.raises(TypeError):
        TinyVLM(cfg.lm)


def test_attention_maps_reproduce_the_forward_pass(tok):
    torch.manual_seed(0)
    model = TinyVLM(default_config(tok.vocab_size)).eval()
    ds = make_shapes(2, seed=3)
    ex = make_examples(ds, tok)
    imgs = torch.as_tensor(ds.images)
    ids = ex["input_ids"][:, :int(ex["prompt_len"].min())]
    maps = attention_maps(model, imgs, ids, tok.image_id)
    L = model.config.n_patches + ids.shape[1] - 1
    assert maps.shape == (model.config.lm.n_layers, 2, model.config.lm.n_heads, L, L)
    assert torch.allclose(maps.sum(-1), torch.ones(()), atol=1e-5)
    assert float(maps.triu(1).abs().max()) == 0.0          # causal
    # recompute layer 0's attention output with these weights and compare with the module
    lm = model.lm
    x = model.embed(imgs, ids, tok.image_id)
    layer = lm.layers[0]
    h = layer.input_layernorm(x)
    att = layer.self_attn
    v = att.v_proj(h).view(2, L, att.n_kv_heads, att.head_dim).transpose(1, 2)
    v = v.repeat_interleave(att.n_heads // att.n_kv_heads, dim=1)
    mine = att.o_proj((maps[0] @ v).transpose(1, 2).reshape(2, L, -1))
    ref = att(h, lm.rope_cos[:L][None, None], lm.rope_sin[:L][None, None])
    assert torch.allclose(mine, ref, atol=1e-5)


def test_training_smoke(tok):
    torch.manual_seed(0)
    train, test = make_shapes(300, seed=0), make_shapes(20, seed=1)
    model = TinyVLM(default_config(tok.vocab_size))
    ex = make_examples(train, tok, kinds=["colour"], per_image=1)
    run = train_vlm(model, train, ex, tok.image_id, VLMTrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=5))
    loss = run.log.series("loss")
    assert len(loss) == 40 and np.mean(loss[-5:]) < 0.4 * np.mean(loss[:3]) and run.model is model
    res = evaluate_vlm(model, test, make_examples(test, tok, kinds=["colour"], seed=1), tok)
    assert 0 <= res["accuracy"] <= 1 and set(res["per_kind"]) == {"colour"}
    with pytest.raises(ValueError, match="VLMTrainConfig.steps must be an integer >= 1"):
        VLMTrainConfig(steps=0)
    with pytest.raises(ValueError, match="VLMTrainConfig.beta2"):
        VLMTrainConfig(beta2=1.0)
    with pytest.raises(TypeError, match="VLMTrainConfig"):
        train_vlm(model, train, ex, tok.image_id, {"steps": 3})


def test_shipped_checkpoint_reproduces_its_accuracy(tok):
    model, meta = load_vlm()
    test, ex = heldout_set(tok, meta["recipe"]["n_test"], meta["recipe"]["test_seed"])
    res = evaluate_vlm(model, test, ex, tok)
    assert abs(res["accuracy"] - meta["heldout_accuracy"]) < 0.01, (res["accuracy"], meta["heldout_accuracy"])
    chance = chance_levels(make_shapes(meta["recipe"]["n_train"], seed=meta["recipe"]["seed"]))
    assert chance == pytest.approx(meta["chance_per_kind"], abs=1e-4)
    for k in QUESTIONS:
        assert res["per_kind"][k] >= chance[k] + 0.3, (k, res["per_kind"][k], chance[k])
    assert meta["command"].startswith("python -m lib.llm.vlm")
    assert meta["parameters"]["total"] == sum(p.numel() for p in model.parameters())
