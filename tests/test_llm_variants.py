"""lib.llm.variants: the configurable decoder equals TinyLM by default, every switch combination
runs (full forward == cached incremental decoding), equal-parameter FFNs, validation, training."""
import itertools

import pytest
import torch
from helpers import small_lm

from lib.llm.attention_variants import set_absorbed
from lib.llm.variants import (ATTENTIONS, FFNS, NORMS, PLACEMENTS, POSITIONS, VariantConfig, VariantLM,
                              VariantTrainConfig, ffn_hidden, from_tinylm, train_variant)


def small(**kw):
    base = dict(vocab_size=97, d_model=32, n_heads=4, max_seq_len=64)
    base.update(kw)
    torch.manual_seed(0)
    return VariantLM(VariantConfig(**base)).eval()


def test_default_variant_is_tinylm():
    m = small_lm()
    v = from_tinylm(m)
    assert (v.config.position, v.config.attention, v.config.norm, v.config.placement, v.config.ffn) == \
        ("rope", "gqa", "rms", "pre", "swiglu")
    ids = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(1))
    assert torch.equal(m(ids).logits, v(ids).logits)
    assert v.num_parameters() == m.num_parameters()
    for kv in (4, 1):  # MHA and MQA TinyLMs map too
        m2 = small_lm(n_kv_heads=kv)
        assert torch.equal(m2(ids).logits, from_tinylm(m2)(ids).logits)


def test_default_variant_loads_tinylm_state_dict_directly():
    m = small_lm()
    cfg = VariantConfig(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64,
                        max_seq_len=64)
    v = VariantLM(cfg).eval()
    v.load_state_dict(m.state_dict())
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(2))
    assert torch.equal(m(ids).logits, v(ids).logits)


@pytest.mark.parametrize("position,attention", list(itertools.product(POSITIONS, ATTENTIONS)))
def test_cached_decoding_equals_full_forward(position, attention):
    ids = torch.randint(0, 97, (2, 15), generator=torch.Generator().manual_seed(3))
    for norm, placement, ffn in [("rms", "pre", "swiglu"), ("layer", "post", "gelu")]:
        m = small(position=position, attention=attention, norm=norm, placement=placement, ffn=ffn)
        full = m(ids).logits
        cache = m.new_cache(2)
        parts = [m(ids[:, :9], cache=cache).logits]
        parts += [m(ids[:, t:t + 1], cache=cache).logits for t in range(9, 15)]
        torch.testing.assert_close(torch.cat(parts, 1), full, atol=2e-5, rtol=1e-5)
        if attention == "mla":
            set_absorbed(m)
            torch.testing.assert_close(m(ids).logits, full, atol=2e-5, rtol=1e-5)


def test_all_switches_build_and_learned_positions_matter():
    for norm, placement, ffn in itertools.product(NORMS, PLACEMENTS, FFNS):
        m = small(norm=norm, placement=placement, ffn=ffn)
        assert isinstance(m.norm, torch.nn.Identity) == (placement == "post")
        assert isinstance(m.layers[0].input_layernorm, torch.nn.LayerNorm) == (norm == "layer")
    m = small(position="learned")
    assert m.embed_positions.weight.shape == (64, 32)
    # no position signal: the first token's logits do not depend on where it is, only on what
    # precedes it; with learned positions, shifting a repeated token changes the output
    ids = torch.full((1, 4), 5)
    nope = small(position="none")(ids).logits
    torch.testing.assert_close(nope[0, 0], nope[0, 3], atol=1e-5, rtol=1e-5)
    learned = m(ids).logits
    assert (learned[0, 0] - learned[0, 3]).abs().max() > 1e-4


def test_ffn_widths_give_equal_parameters():
    d = 96  # a multiple of 3: exact parity
    assert ffn_hidden(d, "gelu") == ffn_hidden(d, "relu") == 4 * d
    assert 3 * d * ffn_hidden(d, "swiglu") == 2 * d * 4 * d
    counts = {f: small(d_model=d, ffn=f).num_parameters() for f in FFNS}
    assert len(set(counts.values())) == 1, counts
    d = 64  # otherwise within one hidden unit
    c64 = {f: small(d_model=d, ffn=f).num_parameters() for f in FFNS}
    assert abs(c64["swiglu"] - c64["gelu"]) <= 3 * d * 2  # 2 layers, one unit of 3 d each
    with pytest.raises(ValueError, match="ffn must be one of"):
        ffn_hidden(64, "tanh")


def test_kv_floats_formula():
    c = VariantConfig(d_model=64, n_heads=4)
    assert (c.attention, c.n_kv_heads, c.kv_floats_per_token) == ("gqa", 2, 2 * 2 * 16)
    assert VariantConfig(attention="mha").kv_floats_per_token == 2 * 64
    assert VariantConfig(attention="mqa").kv_floats_per_token == 2 * 16
    mla = VariantConfig(attention="mla")
    assert (mla.kv_rank, mla.rope_dims, mla.kv_floats_per_token) == (32, 8, 40)
    assert VariantConfig(attention="mla", position="alibi").kv_floats_per_token == 32


@pytest.mark.parametrize("kw,msg", [
    (dict(position="sinusoid"), "position must be one of"),
    (dict(attention="mqa", n_kv_heads=2), "means n_kv_heads=1"),
    (dict(attention="gqa", n_kv_heads=3), "divisible by n_kv_heads"),
    (dict(attention="mla", n_kv_heads=2), "no n_kv_heads"),
    (dict(kv_rank=8), "attention='mla' only"),
    (dict(attention="mla", rope_dims=3), "rope_dims must be even"),
    (dict(d_model=30), "divisible by n_heads"),
    (dict(norm="batch"), "norm must be one of"),
    (dict(placement="sandwich"), "placement must be one of"),
    (dict(rope_scale=0.0), "rope_scale"),
    (dict(n_layers=0), "n_layers"),
])
def test_config_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        VariantConfig(**kw)


def test_forward_validation():
    m = small()
    with pytest.raises(ValueError, match="integer tensor"):
        m(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="token ids"):
        m(torch.full((1, 3), 97))
    with pytest.raises(ValueError, match="too long"):
        m(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(TypeError, match="VariantConfig"):
        VariantLM(dict(d_model=32))


def test_train_variant_learns_and_is_deterministic():
    g = torch.Generator().manual_seed(0)
    period = torch.randint(0, 50, (7,), generator=g)
    train = period.repeat(400)
    val = period.repeat(60)
    cfg = VariantTrainConfig(model=VariantConfig(vocab_size=50, d_model=32, n_heads=4, max_seq_len=32),
                             steps=30, batch_size=8, seq_len=16, warmup_steps=3, eval_windows=8, seed=1)
    a = train_variant(cfg, train, val)
    b = train_variant(cfg, train, val)
    assert a.val_loss == b.val_loss
    assert a.val_loss < 0.5 * a.log.series("loss")[0]  # a periodic sequence is learned
    assert len(a.log.updates) == 30 and a.log.eval_returns == [a.val_loss]
    with pytest.raises(ValueError, match="seq_len"):
        VariantTrainConfig(model=cfg.model, seq_len=64)
    with pytest.raises(ValueError, match="vocab_size"):
        train_variant(cfg, train + 50, val)


@pytest.mark.parametrize("sweep", ["variant-positions", "variant-attention"])
def test_shipped_sweep_reloads_and_reproduces_its_metrics(sweep):
    """Each shipped seed-0 model reloads (SHA-256 checked) and reproduces the validation losses
    its sweep recorded on a small subset (a few windows at 64 and 256 tokens)."""
    import json

    from lib.llm.checkpoint import CHECKPOINT_DIR
    from lib.llm.pretrain import corpus_token_ids
    from lib.llm.variants import SWEEPS, check_losses, load_variant

    meta = json.loads((CHECKPOINT_DIR / sweep / "meta.json").read_text())
    assert set(meta["models"]) == set(SWEEPS[sweep]) == set(meta["metrics"])
    assert meta["command"].startswith("python -m lib.llm.variants --sweep " + sweep)
    val = corpus_token_ids("val")
    for name in meta["models"]:
        m = load_variant(sweep, name)
        assert m.config == SWEEPS[sweep][name]
        got = check_losses(m, val)
        want = meta["metrics"][name][0]["check"]
        assert got.keys() == want.keys()
        for k in got:
            assert got[k] == pytest.approx(want[k], rel=1e-4), (name, k)
        assert len(meta["metrics"][name]) == len(meta["seeds"])
    with pytest.raises(ValueError, match="no model"):
        load_variant(sweep, "transformer-xl")
