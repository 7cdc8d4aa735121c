"""Tests of lib.llm.quant: NF4 / int4 levels, block-wise quantize / dequantize guarantees, QuantLinear."""
import pytest
import torch
import torch.nn as nn

from lib.llm.quant import (QuantizedTensor, QuantLinear, codebook, dequantize_4bit, max_abs_error_bound,
                           max_half_gap, quantize_4bit, quantize_linears)

# QLoRA's published NF4 table (Dettmers et al. 2023, appendix E; bitsandbytes), 7 decimals.
NF4_PUBLISHED = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                 -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def test_nf4_levels_equal_the_published_table():
    torch.testing.assert_close(codebook("nf4"), torch.tensor(NF4_PUBLISHED), atol=1e-6, rtol=0)
    lv = codebook("int4")
    assert lv.numel() == 16 and torch.all(lv[1:] > lv[:-1]) and lv[8] == 0 and lv[-1] == 1
    assert max_half_gap("int4") == pytest.approx(1 / 14)
    gaps = [b - a for a, b in zip(NF4_PUBLISHED, NF4_PUBLISHED[1:])]
    assert max_half_gap("nf4") == pytest.approx(max(gaps) / 2, rel=1e-6)  # between -1 and the next


@pytest.mark.parametrize("scheme", ["nf4", "int4"])
@pytest.mark.parametrize("shape, block", [((64, 48), 64), ((7, 13), 16), ((101,), 2), ((3, 5, 9), 32)])
def test_roundtrip_error_bound_exact_extremes_and_idempotence(scheme, shape, block):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * torch.rand(shape, generator=g) * 3
    x.view(-1)[::5] = 0.0
    q = quantize_4bit(x, block, scheme)
    d = dequantize_4bit(q)
    assert d.shape == x.shape and d.dtype == torch.float32
    err = (x - d).abs().reshape(-1)
    assert torch.all(err <= max_abs_error_bound(q) * (1 + 1e-6) + 1e-12)
    # zeros and each block's absmax entry are exact
    assert torch.all(d.reshape(-1)[::5] == 0)
    flat = x.reshape(-1)
    for b in range(q.scales.numel()):
        blk = flat[b * block:(b + 1) * block]
        i = b * block + int(blk.abs().argmax())
        assert d.reshape(-1)[i] == pytest.approx(float(flat[i]), rel=1e-6)
    # idempotent: quantizing the dequantized tensor gives the same codes and scales
    q2 = quantize_4bit(d, block, scheme)
    assert torch.equal(q2.codes, q.codes) and torch.allclose(q2.scales, q.scales, rtol=1e-6)
    # storage: half a byte per value (rounded up) + 4 bytes per block
    n = x.numel()
    assert q.nbytes == (n + 1) // 2 + 4 * (-(-n // block))
    assert int(q.unpacked_codes().max()) <= 15


def test_nf4_beats_int4_on_normal_weights_and_int4_on_uniform():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(256, 256, generator=g)
    u = torch.rand(256, 256, generator=g) * 2 - 1
    mse = lambda x, s: float(((x - dequantize_4bit(quantize_4bit(x, 64, s))) ** 2).mean())  # noqa: E731
    assert mse(w, "nf4") < mse(w, "int4")
    assert mse(u, "int4") < mse(u, "nf4")


def test_all_zero_block_and_validation():
    z = torch.zeros(10)
    assert torch.equal(dequantize_4bit(quantize_4bit(z, 4)), z)
    with pytest.raises(TypeError, match="floating-point"):
        quantize_4bit(torch.arange(8), 4)
    with pytest.raises(TypeError, match="torch.Tensor"):
        quantize_4bit([1.0, 2.0], 4)
    with pytest.raises(ValueError, match="even int"):
        quantize_4bit(torch.randn(8), 3)
    with pytest.raises(ValueError, match="scheme"):
        quantize_4bit(torch.randn(8), 4, "fp4")
    with pytest.raises(ValueError, match="NaN"):
        quantize_4bit(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="empty"):
        quantize_4bit(torch.zeros(0), 2)
    with pytest.raises(TypeError, match="QuantizedTensor"):
        dequantize_4bit(torch.zeros(3))


def test_quant_linear_and_quantize_linears():
    torch.manual_seed(0)
    lin = nn.Linear(48, 20, bias=False)
    ql = QuantLinear.from_linear(lin, 16, "nf4")
    x = torch.randn(5, 48)
    w = ql.weight_dequantized()
    torch.testing.assert_close(ql(x), x @ w.T)
    assert (w - lin.weight).abs().max() <= ql.scales.max() * max_half_gap("nf4") + 1e-7
    assert ql.nbytes() == 48 * 20 // 2 + 4 * (48 * 20 // 16)
    assert list(ql.parameters()) == []
    with pytest.raises(ValueError, match="bias-free"):
        QuantLinear.from_linear(nn.Linear(4, 4), 2)
    with pytest.raises(TypeError):
        QuantLinear.from_linear(nn.Conv1d(2, 2, 1))
    net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False))
    names = quantize_linears(net, 8, "int4", skip=("2",))
    assert names == ["0"] and isinstance(net[0], QuantLinear) and isinstance(net[2], nn.Linear)
    assert isinstance(QuantizedTensor, type)


# ------------------------------------------------- number formats and affine quantization (seed-105)
import math  # noqa: E402
import warnings  # noqa: E402

from lib.llm import quant as Q  # noqa: E402
from helpers import small_lm  # noqa: E402


def _torch_quantize(fn, *args):
    """torch's (deprecated in 2.13) eager quantization, its warning filtered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        return fn(*args).int_repr()


@pytest.mark.parametrize("name, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                         ("fp16", torch.float16)])
def test_format_info_reads_the_dtypes(name, dtype):
    info, fi = Q.format_info(name), torch.finfo(dtype)
    assert info["bits"] == fi.bits == info["sign_bits"] + info["exponent_bits"] + info["mantissa_bits"]
    assert info["eps"] == fi.eps and info["max"] == fi.max and info["smallest_normal"] == fi.tiny
    assert info["smallest_subnormal"] == float(fi.smallest_normal) * fi.eps
    # the largest value is (2 - eps) * 2^(2^(E-1) - 1) and the exponent bias follows from E
    E = info["exponent_bits"]
    assert info["max"] == (2 - info["eps"]) * 2.0 ** (2 ** (E - 1) - 1)
    assert {"fp32": (8, 23), "bf16": (8, 7), "fp16": (5, 10)}[name] == (E, info["mantissa_bits"])


def test_int_formats_and_ranges():
    assert Q.int_range(8) == (torch.iinfo(torch.int8).min, torch.iinfo(torch.int8).max)
    assert Q.int_range(16) == (torch.iinfo(torch.int16).min, torch.iinfo(torch.int16).max)
    assert Q.int_range(8, signed=False) == (0, torch.iinfo(torch.uint8).max)
    assert Q.int_range(4) == (-8, 7)
    assert Q.format_info("int4")["max"] == 7 and Q.format_info("int8")["min"] == -128
    tf = Q.format_info("tf32")
    assert (tf["bits"], tf["exponent_bits"], tf["mantissa_bits"]) == (19, 8, 10)
    with pytest.raises(ValueError, match="format"):
        Q.format_info("fp64")
    with pytest.raises(ValueError, match="bits"):
        Q.int_range(1)


@pytest.mark.parametrize("name", ["fp32", "tf32", "bf16", "fp16", "fp8_e4m3"])
def test_rounding_error_is_at_most_half_a_step_and_bits_decode(name):
    info = Q.format_info(name)
    g = torch.Generator().manual_seed(1)
    # normal-range values: relative error <= eps / 2 (round to nearest)
    hi = min(info["max"] / 4, 1e6)
    x = torch.exp(torch.empty(4000, dtype=torch.float64).uniform_(
        math.log(info["smallest_normal"] * 4), math.log(hi), generator=g))
    x = x * torch.where(torch.rand(4000, generator=g) < 0.5, -1.0, 1.0)
    r = Q.round_to_format(x, name)
    rel = (r.double() - x).abs() / x.abs()
    # (float64 -> float32 -> format rounds twice: at most 2^-24 more than half a step)
    assert float(rel.max()) <= info["eps"] / 2 + 2.0 ** -24
    assert float(rel.max()) > info["eps"] / 8  # and the bound is nearly attained
    x = x.float()
    r = Q.round_to_format(x, name)
    if name in ("fp32", "bf16", "fp16"):  # exact equality with the dtype's own rounding
        assert torch.equal(r, x.to(info["dtype"]).float())
    assert torch.equal(Q.round_to_format(r, name), r)  # idempotent
    for v in x[:50].tolist() + [1.0, -2.5, 0.0, info["smallest_normal"]]:
        b = Q.float_bits(v, name)
        assert b["decoded"] == b["stored"]
        assert len(b["sign"] + b["exponent"] + b["mantissa"]) == info["bits"]
    sub = Q.float_bits(info["smallest_subnormal"], name)  # exponent field 0: a subnormal
    assert set(sub["exponent"]) == {"0"} and sub["decoded"] == info["smallest_subnormal"]


def test_tf32_rounding_equals_rounding_bits_by_hand():
    x = torch.tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, -(1 + 2 ** -11)])
    # ties to even: 1 + 2^-11 -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9, above the tie rounds up
    assert Q.round_to_format(x, "tf32").tolist() == [1.0, 1 + 2 ** -9, 1 + 2 ** -10, -1.0]
    assert Q.round_to_format(torch.tensor([3.0e38]), "int8").item() == 127


def test_round_to_format_and_float_bits_reject_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        Q.round_to_format(torch.arange(3), "fp16")
    with pytest.raises(ValueError, match="float format"):
        Q.float_bits(1.0, "int8")
    with pytest.raises(ValueError, match="finite range"):
        Q.float_bits(1e6, "fp16")


@pytest.mark.parametrize("symmetric", [True, False])
def test_affine_codes_equal_torch_quantize_per_tensor_and_per_channel(symmetric):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(24, 40, generator=g) * torch.linspace(0.1, 3, 24)[:, None] + 0.3
    dt = torch.qint8 if symmetric else torch.quint8
    q = Q.quantize_affine(x, 8, symmetric=symmetric, granularity="tensor")
    ref = _torch_quantize(torch.quantize_per_tensor, x, float(q.scale[0]), int(q.zero_point[0]), dt)
    assert torch.equal(ref.int(), q.codes)
    for axis in (0, 1):
        q = Q.quantize_affine(x, 8, symmetric=symmetric, granularity="channel", axis=axis)
        ref = _torch_quantize(torch.quantize_per_channel, x, q.scale.double(),
                              q.zero_point.long(), axis, dt)
        assert torch.equal(ref.int(), q.codes)
        assert q.scale.numel() == x.shape[axis]


@pytest.mark.parametrize("bits", [8, 4, 3])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_affine_roundtrip_error_at_most_half_a_step(bits, symmetric, granularity):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 96, generator=g) * torch.rand(16, 1, generator=g) * 2
    x[3] = x[3].abs()  # one-sided rows, where asymmetric quantization helps
    q = Q.quantize_affine(x, bits, symmetric=symmetric, granularity=granularity, group_size=32)
    lo, hi = Q.affine_code_range(bits, symmetric)
    assert int(q.codes.min()) >= lo and int(q.codes.max()) <= hi
    d = Q.dequantize_affine(q)
    err = (d - x).abs()
    bound = Q.affine_error_bound(q)
    assert d.shape == x.shape and bound.shape == x.shape
    assert torch.all(err <= bound * (1 + 1e-5) + 1e-7)
    assert float((err / bound).max()) > 0.8  # the half-step bound is nearly reached
    n_groups = {"tensor": 1, "channel": 16, "group": 16 * 96 // 32}[granularity]
    assert q.scale.numel() == n_groups
    zp_bits = 0 if symmetric else n_groups * bits
    assert q.nbytes == math.ceil((x.numel() * bits + zp_bits) / 8) + 4 * n_groups
    # zero is exact; finer groups never have a larger worst error
    assert torch.all(Q.dequantize_affine(Q.quantize_affine(
        torch.zeros(4, 32), bits, symmetric=symmetric)) == 0)


def test_asymmetric_beats_symmetric_on_one_sided_values():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(8, 64, generator=g)  # all >= 0, like a ReLU's output
    sym = Q.quantize_affine(x, 4, symmetric=True, granularity="tensor")
    asym = Q.quantize_affine(x, 4, symmetric=False, granularity="tensor")
    assert float(asym.scale[0]) < 0.6 * float(sym.scale[0])  # 15 steps instead of 7 over [0, max]


def test_int4_per_group_equals_the_qlora_style_int4_blocks():
    x = torch.randn(12, 128, generator=torch.Generator().manual_seed(5))
    a = Q.dequantize_affine(Q.quantize_affine(x, 4, symmetric=True, granularity="group",
                                              group_size=64))
    b = dequantize_4bit(quantize_4bit(x, 64, "int4"))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_quantize_affine_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        Q.quantize_affine(torch.arange(4), 8)
    with pytest.raises(ValueError, match="multiple of group_size"):
        Q.quantize_affine(torch.randn(2, 10), 8, granularity="group", group_size=4)
    with pytest.raises(ValueError, match="granularity"):
        Q.quantize_affine(torch.randn(2, 10), 8, granularity="row")
    with pytest.raises(ValueError, match="axis"):
        Q.quantize_affine(torch.randn(2, 10), 8, axis=2)
    with pytest.raises(ValueError, match="bits"):
        Q.quantize_affine(torch.randn(2, 10), 1)
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize_affine(torch.tensor([1.0, float("inf")]), 8)
    with pytest.raises(TypeError, match="AffineQuantized"):
        Q.dequantize_affine(torch.zeros(2))


def test_quantize_model_weights_sizes_and_losses():
    torch.manual_seed(0)
    model = small_lm()
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    with torch.no_grad():
        base = model(ids).logits
    n_mat = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    n_vec = sum(p.numel() for p in model.parameters() if p.dim() < 2)
    sizes = {}
    for fmt in Q.WEIGHT_FORMATS:
        qm, nb = Q.quantize_model_weights(model, fmt, group_size=16)
        sizes[fmt] = nb
        assert qm is not model
        if model.config.tie_embeddings:
            assert qm.lm_head.weight is qm.embed_tokens.weight
        with torch.no_grad():
            diff = float((qm(ids).logits - base).abs().max())
        assert (diff == 0) == (fmt == "fp32")
    assert sizes["fp32"] == 4 * (n_mat + n_vec)
    assert sizes["bf16"] == sizes["fp16"] == 2 * n_mat + 4 * n_vec
    assert sizes["int8-channel"] < sizes["bf16"] < sizes["fp32"]
    assert sizes["int4-channel"] < sizes["int4-group"] == sizes["nf4"] < sizes["int8-channel"]
    with pytest.raises(ValueError, match="fmt"):
        Q.quantize_model_weights(model, "int2")
