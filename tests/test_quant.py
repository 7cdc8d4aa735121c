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
