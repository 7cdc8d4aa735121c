"""Number formats and weight quantization: float formats bit by bit, affine integer
quantization (symmetric / asymmetric, per tensor / channel / group), block-wise 4-bit absmax int4
and NF4, a frozen quantized linear layer, and whole-model weight round trips.

Book: seed-11, seed-105. seed-11 uses the QLoRA-style part (a 4-bit frozen base with a trainable
low-rank update); seed-105 uses all of it (number formats, integer quantization, the quantized
tiny LM's loss and size per format).

The recipe (Dettmers et al., 2023, *QLoRA*): flatten the tensor, cut it into blocks of
``block_size`` values, divide each block by its absolute maximum (its *scale*, kept in
float32) so that every value lies in [-1, 1], and replace each value by the index (0..15) of the
nearest of 16 levels, its *code*. Two codes share one byte. Dequantization is
``levels[code] * scale``. The two level sets (:func:`codebook`):

* ``"int4"`` — evenly spaced ``k / 7`` for ``k = -8..7`` (the two's-complement int4 range;
  ``-8/7`` lies outside [-1, 1] and is never chosen by absmax scaling, so 15 levels are used).
* ``"nf4"`` — *NormalFloat4*: levels at quantiles of a standard normal, denser near zero where
  most weights of a trained network lie; exact 0 and ±1 are levels (QLoRA's construction,
  computed here from the normal inverse CDF rather than copied).

Guarantees (tested): ``dequantize(quantize(x))`` differs from ``x`` by at most half the widest
gap between neighbouring levels times the block's scale (:func:`max_abs_error_bound`); the
block's largest-magnitude entry and zeros are reproduced exactly; quantizing a dequantized tensor
gives the same codes and scales (idempotent); storage is half a byte per value plus four bytes
per block. Main entry points: :func:`quantize_4bit`, :func:`dequantize_4bit`,
:class:`QuantizedTensor`, :class:`QuantLinear`, :func:`quantize_linears`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SCHEMES = ("int4", "nf4")

# ----------------------------------------------------------------------------- level sets


def _nf4_levels() -> torch.Tensor:
    """QLoRA's NF4 levels: 8 positive normal quantiles, 7 negative ones and 0, scaled to [-1, 1].

    The extreme quantile is taken at ``offset = 0.5 * (1/32 + 1/30)`` (averaging the choices for
    15 and 16 levels per side) so that the outermost level is finite; the positive side has one
    level more than the negative side so that 0 is a level exactly.
    """
    normal = torch.distributions.Normal(
        torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    )
    offset = 0.5 * (1 / 32 + 1 / 30)
    pos = normal.icdf(torch.linspace(1 - offset, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(1 - offset, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (levels / levels.abs().max()).float()


_LEVELS = {"int4": torch.arange(-8, 8, dtype=torch.float32) / 7.0, "nf4": _nf4_levels()}


def codebook(scheme: str = "nf4") -> torch.Tensor:
    """The 16 sorted levels (float32) a code indexes, for ``scheme`` ``"int4"`` or ``"nf4"``."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return _LEVELS[scheme].clone()


def max_half_gap(scheme: str = "nf4") -> float:
    """Half the widest gap between neighbouring levels inside [-1, 1]: the worst rounding error of a
    value scaled into [-1, 1]."""
    lv = codebook(scheme)
    lv = lv[(lv >= -1) & (lv <= 1)]
    return float((lv[1:] - lv[:-1]).max() / 2)


# ------------------------------------------------------------------------ quantize / dequantize


@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
    """A tensor stored as 4-bit codes (two per byte) and one float32 scale per block.

    codes: uint8 (ceil(numel / 2),) — code of value ``2i`` in the low nibble, ``2i+1`` in the high.
    scales: float32 (n_blocks,) — each block's absolute maximum. shape: the original shape.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    shape: tuple
    block_size: int
    scheme: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes held: the packed codes plus the scales."""
        return self.codes.numel() * self.codes.element_size() + self.scales.numel() * 4

    def unpacked_codes(self) -> torch.Tensor:
        """Codes 0..15 (int64) of every value, flat, in the original order."""
        lo, hi = self.codes & 0x0F, self.codes >> 4
        return torch.stack([lo, hi], dim=1).reshape(-1)[: self.numel].long()


def _check_block(block_size) -> int:
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or block_size < 2
        or block_size % 2
    ):
        raise ValueError(f"block_size must be an even int >= 2, got {block_size!r}")
    return block_size


def quantize_4bit(x: torch.Tensor, block_size: int = 64, scheme: str = "nf4") -> QuantizedTensor:
    """Quantize a float tensor block-wise to 4-bit codes (see the module docstring)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    block_size = _check_block(block_size)
    levels = codebook(scheme).to(x.device)
    flat = x.detach().reshape(-1).float()
    n = flat.numel()
    n_blocks = -(-n // block_size)
    padded = torch.zeros(n_blocks * block_size, device=x.device)
    padded[:n] = flat
    blocks = padded.view(n_blocks, block_size)
    scales = blocks.abs().amax(dim=1)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    normed = (blocks / safe[:, None]).reshape(-1)
    mids = (levels[1:] + levels[:-1]) / 2  # nearest level = number of midpoints below
    codes = torch.bucketize(normed, mids).to(torch.uint8)[:n]
    if n % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    packed = codes[0::2] | (codes[1::2] << 4)
    return QuantizedTensor(
        packed.contiguous(), scales.contiguous(), tuple(x.shape), block_size, scheme
    )


def dequantize_4bit(q: QuantizedTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``levels[code] * scale`` of every value, reshaped to the original shape."""
    if not isinstance(q, QuantizedTensor):
        raise TypeError(f"expected a QuantizedTensor, got {type(q).__name__}")
    levels = codebook(q.scheme).to(q.codes.device)
    vals = levels[q.unpacked_codes()]
    scale = q.scales.repeat_interleave(q.block_size)[: q.numel]
    return (vals * scale).reshape(q.shape).to(dtype)


def max_abs_error_bound(q: QuantizedTensor) -> torch.Tensor:
    """Per-value bound on ``|x - dequantize(quantize(x))|``: its block's scale times
    :func:`max_half_gap` (flat, length numel)."""
    if not isinstance(q, QuantizedTensor):
        raise TypeError(f"expected a QuantizedTensor, got {type(q).__name__}")
    return q.scales.repeat_interleave(q.block_size)[: q.numel] * max_half_gap(q.scheme)


# ----------------------------------------------------------------- a frozen 4-bit linear layer


class QuantLinear(nn.Module):
    """A bias-free linear layer whose weight is held as 4-bit codes (buffers, never trained).

    ``forward(x) = x @ dequantize(W).T``: the weight is dequantized on every call (as QLoRA does),
    so only the 4-bit form stays in memory between calls.
    """

    def __init__(self, q: QuantizedTensor):
        super().__init__()
        if not isinstance(q, QuantizedTensor) or len(q.shape) != 2:
            raise ValueError("QuantLinear needs a QuantizedTensor of a 2-D (out, in) weight")
        self.out_features, self.in_features = q.shape
        self.block_size, self.scheme = q.block_size, q.scheme
        self.register_buffer("codes", q.codes)
        self.register_buffer("scales", q.scales)

    @classmethod
    def from_linear(cls, linear: nn.Linear, block_size: int = 64, scheme: str = "nf4"):
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
        if linear.bias is not None:
            raise ValueError(
                "QuantLinear supports bias-free layers only (the book's model has none)"
            )
        return cls(quantize_4bit(linear.weight, block_size, scheme))

    def quantized(self) -> QuantizedTensor:
        return QuantizedTensor(
            self.codes,
            self.scales,
            (self.out_features, self.in_features),
            self.block_size,
            self.scheme,
        )

    def weight_dequantized(self, dtype=torch.float32) -> torch.Tensor:
        return dequantize_4bit(self.quantized(), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_dequantized(x.dtype))

    def nbytes(self) -> int:
        return self.quantized().nbytes

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scheme={self.scheme}, block_size={self.block_size}"
        )


def quantize_linears(
    model: nn.Module,
    block_size: int = 64,
    scheme: str = "nf4",
    skip: tuple[str, ...] = ("lm_head",),
) -> list[str]:
    """Replace every ``nn.Linear`` of ``model`` (except names ending in ``skip``) by a
    :class:`QuantLinear`, in place; return the replaced module names."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    _check_block(block_size)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    names = [
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.endswith(skip)
    ]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantLinear.from_linear(getattr(parent, child), block_size, scheme))
    return names


# ============================================================== number formats (seed-105)
#
# A float format stores a sign bit, E exponent bits and M mantissa (fraction) bits. A *normal*
# number is (-1)^s * 2^(e - bias) * (1 + m / 2^M) with bias = 2^(E-1) - 1; exponent field 0 holds
# the subnormals (-1)^s * 2^(1 - bias) * (m / 2^M), and the all-ones field holds inf and NaN.
# torch.finfo knows each real dtype: ``eps`` = 2^-M (the step just above 1), ``tiny`` = the
# smallest normal, ``max``. TF32 (the tensor cores' 19-bit format: fp32's 8 exponent bits and
# fp16's 10 mantissa bits) is no torch dtype; it is emulated here by rounding an fp32 mantissa.

_FLOAT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
                 "fp8_e4m3": getattr(torch, "float8_e4m3fn", None)}
#: Integer formats: bits of a two's-complement integer (int4 has no ``torch.iinfo``).
_INT_BITS = {"int8": 8, "int4": 4}
FORMATS = ("fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "int8", "int4")


def _check_format(name: str) -> str:
    if name not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {name!r}")
    if name in _FLOAT_DTYPES and _FLOAT_DTYPES[name] is None:  # pragma: no cover - old torch
        raise ValueError(f"this torch has no dtype for {name}")
    return name


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """Smallest and largest integer of a ``bits``-bit two's-complement (or unsigned) integer."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an int in [2, 16], got {bits!r}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def format_info(name: str) -> dict:
    """Bit layout, range and precision of a number format, read from the real dtype.

    Keys: ``name, kind`` ("float" / "int"), ``bits, sign_bits, exponent_bits, mantissa_bits``,
    ``max`` (largest finite value), ``smallest_normal`` (floats; 1 for ints), ``smallest_subnormal``
    (floats; 1 for ints), ``eps`` (the step just above 1: 2^-M for floats, 1 for ints),
    ``decimal_digits`` (about log10(2^(M+1))), ``dtype`` (the torch dtype or None).
    """
    _check_format(name)
    if name in _INT_BITS:
        b = _INT_BITS[name]
        lo, hi = int_range(b)
        if name == "int8":
            ii = torch.iinfo(torch.int8)
            lo, hi, b = ii.min, ii.max, ii.bits
        return {"name": name, "kind": "int", "bits": b, "sign_bits": 1, "exponent_bits": 0,
                "mantissa_bits": b - 1, "max": float(hi), "min": float(lo),
                "smallest_normal": 1.0, "smallest_subnormal": 1.0, "eps": 1.0,
                "decimal_digits": math.log10(hi - lo + 1),
                "dtype": torch.int8 if name == "int8" else getattr(torch, "int4", None)}
    fi = torch.finfo(torch.float32 if name == "tf32" else _FLOAT_DTYPES[name])
    bits = 19 if name == "tf32" else fi.bits
    mant = 10 if name == "tf32" else int(round(-math.log2(fi.eps)))
    exp = bits - 1 - mant
    tiny = float(fi.tiny)
    mx = float(fi.max)
    if name == "tf32":  # fp32's exponent range, 10 mantissa bits
        mx = float((2 - 2.0 ** -mant) * 2.0 ** 127)
    return {"name": name, "kind": "float", "bits": bits, "sign_bits": 1, "exponent_bits": exp,
            "mantissa_bits": mant, "max": mx, "min": -mx, "smallest_normal": tiny,
            "smallest_subnormal": tiny * 2.0 ** -mant, "eps": 2.0 ** -mant,
            "decimal_digits": (mant + 1) * math.log10(2),
            "dtype": None if name == "tf32" else _FLOAT_DTYPES[name]}


def _round_fp32_mantissa(x: torch.Tensor, keep: int) -> torch.Tensor:
    """Round float32 values to ``keep`` mantissa bits (round half to even), as bit operations."""
    drop = 23 - keep
    bits = x.float().contiguous().view(torch.int32).long() & 0xFFFFFFFF
    lsb = (bits >> drop) & 1
    bits = (bits + (1 << (drop - 1)) - 1 + lsb) & ~((1 << drop) - 1)
    bits = torch.where(bits >= 2 ** 31, bits - 2 ** 32, bits)
    return bits.to(torch.int32).view(torch.float32)


def round_to_format(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` rounded to the nearest value of format ``name`` and returned as float32.

    Floats round to nearest, ties to even (values beyond ``max`` become inf, except fp8_e4m3,
    which has no inf and gives NaN); ints round half to even and clamp to their range.
    """
    _check_format(name)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    x = x.float()
    if name == "tf32":
        return _round_fp32_mantissa(x, 10)
    if name in _INT_BITS:
        lo, hi = int_range(_INT_BITS[name])
        return torch.round(x).clamp(lo, hi)
    return x.to(_FLOAT_DTYPES[name]).float()


def float_bits(value: float, name: str) -> dict:
    """The bit fields of ``value`` stored in float format ``name`` and the value they decode to.

    Returns ``{"sign", "exponent", "mantissa"}`` as bit strings, ``"decoded"`` (the value rebuilt
    from the fields with the formula in the comment above) and ``"stored"`` (the value the dtype
    holds, which ``decoded`` must equal).
    """
    _check_format(name)
    info = format_info(name)
    if info["kind"] != "float":
        raise ValueError(f"float_bits needs a float format, got {name!r}")
    E, M = info["exponent_bits"], info["mantissa_bits"]
    stored = round_to_format(torch.tensor([float(value)]), name)
    if not torch.isfinite(stored).all():
        raise ValueError(f"{value!r} is outside the finite range of {name}")
    if name in ("fp32", "tf32"):
        raw = int(stored.view(torch.int32)) & 0xFFFFFFFF
        raw >>= 23 - M
    else:
        dt = _FLOAT_DTYPES[name]
        it = {16: torch.int16, 8: torch.int8}[info["bits"]]
        raw = int(stored.to(dt).view(it)) & ((1 << info["bits"]) - 1)
    sign, exp, man = raw >> (E + M), (raw >> M) & ((1 << E) - 1), raw & ((1 << M) - 1)
    bias = 2 ** (E - 1) - 1
    if exp == 0:
        mag = 2.0 ** (1 - bias) * (man / 2 ** M)
    else:
        mag = 2.0 ** (exp - bias) * (1 + man / 2 ** M)
    return {"sign": format(sign, "b"), "exponent": format(exp, f"0{E}b"),
            "mantissa": format(man, f"0{M}b"), "decoded": -mag if sign else mag,
            "stored": float(stored)}


# ======================================================= affine integer quantization (seed-105)
#
# An integer code q stands for the real value  scale * (q - zero_point).
# * symmetric: zero_point = 0, scale = absmax / (2^(b-1) - 1), codes in [-(2^(b-1)-1), 2^(b-1)-1]
#   (the -2^(b-1) code stays unused, so +x and -x get opposite codes);
# * asymmetric: the range [min(x, 0), max(x, 0)] is mapped onto the unsigned codes [0, 2^b - 1];
#   zero_point = round(-min / scale) is the code of the real 0, which is represented exactly.
# quantize: q = clamp(round(x / scale) + zero_point, qmin, qmax)  (round half to even, as torch).
# One scale (and zero point) per tensor, per output channel (a row of a weight matrix), or per
# group of ``group_size`` consecutive values along the last axis (the rows cut into pieces).
# Guarantee: every value inside the calibrated range is rounded by at most half a step
# (scale / 2); :func:`affine_error_bound` gives that bound per value.

GRANULARITIES = ("tensor", "channel", "group")


@dataclasses.dataclass(frozen=True)
class AffineQuantized:
    """A tensor as integer codes with one scale and zero point per group of values.

    codes: int32, the original shape. scale: float32 (n_groups,); zero_point: int32 (n_groups,).
    ``granularity`` says how values map to groups (see :func:`quantize_affine`).
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    bits: int
    symmetric: bool
    granularity: str
    group_size: int | None
    axis: int
    shape: tuple

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Storage: ``bits`` per code (packed), a float32 scale per group and, when asymmetric,
        a ``bits``-bit zero point per group."""
        code_bits = self.numel * self.bits
        zp_bits = 0 if self.symmetric else self.zero_point.numel() * self.bits
        return math.ceil((code_bits + zp_bits) / 8) + 4 * self.scale.numel()


def affine_code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """Codes used by :func:`quantize_affine`: symmetric ``(-(2^(b-1)-1), 2^(b-1)-1)``,
    asymmetric ``(0, 2^b - 1)``."""
    lo, hi = int_range(bits, signed=symmetric)
    return (lo + 1, hi) if symmetric else (lo, hi)


def _grouped(x: torch.Tensor, granularity: str, group_size, axis: int) -> torch.Tensor:
    """A 2-D view (n_groups, values per group) of ``x``."""
    if granularity == "tensor":
        return x.reshape(1, -1)
    if granularity == "channel":
        return x.movedim(axis, 0).reshape(x.shape[axis], -1)
    if x.shape[-1] % group_size:
        raise ValueError(f"the last axis ({x.shape[-1]}) must be a multiple of group_size "
                         f"({group_size}) for per-group quantization")
    return x.reshape(-1, group_size)


def _ungrouped(g: torch.Tensor, shape: tuple, granularity: str, axis: int) -> torch.Tensor:
    if granularity == "channel":
        moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
        return g.reshape(moved).movedim(0, axis)
    return g.reshape(shape)


def quantize_affine(x: torch.Tensor, bits: int = 8, *, symmetric: bool = True,
                    granularity: str = "channel", group_size: int = 64,
                    axis: int = 0) -> AffineQuantized:
    """Quantize ``x`` to ``bits``-bit integer codes (see the comment block above).

    granularity: ``"tensor"`` (one scale), ``"channel"`` (one per index of ``axis``, the output
    rows of a weight by default) or ``"group"`` (one per ``group_size`` consecutive values of
    the last axis, which must divide it).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0 or x.dim() == 0:
        raise ValueError("x must be a non-empty tensor with at least one axis")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {symmetric!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if isinstance(axis, bool) or not isinstance(axis, int) or not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis must be an int in [{-x.dim()}, {x.dim() - 1}], got {axis!r}")
    axis = axis % x.dim()
    qmin, qmax = affine_code_range(bits, symmetric)
    g = _grouped(x.detach().float(), granularity, group_size, axis)
    if symmetric:
        scale = g.abs().amax(dim=1) / qmax
        zp = torch.zeros(len(g), dtype=torch.int32)
    else:
        lo = g.amin(dim=1).clamp(max=0.0)
        hi = g.amax(dim=1).clamp(min=0.0)
        scale = (hi - lo) / (qmax - qmin)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    if not symmetric:
        zp = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).to(torch.int32)
    codes = (torch.round(g / scale[:, None]) + zp[:, None]).clamp(qmin, qmax).to(torch.int32)
    return AffineQuantized(_ungrouped(codes, tuple(x.shape), granularity, axis),
                           scale.contiguous(), zp, int(bits), symmetric, granularity,
                           group_size if granularity == "group" else None, axis,
                           tuple(x.shape))


def dequantize_affine(q: AffineQuantized) -> torch.Tensor:
    """``scale * (code - zero_point)`` for every value (float32, the original shape)."""
    if not isinstance(q, AffineQuantized):
        raise TypeError(f"expected an AffineQuantized, got {type(q).__name__}")
    g = _grouped(q.codes, q.granularity, q.group_size, q.axis).float()
    vals = (g - q.zero_point[:, None].float()) * q.scale[:, None]
    return _ungrouped(vals, q.shape, q.granularity, q.axis)


def affine_error_bound(q: AffineQuantized) -> torch.Tensor:
    """Half a step (``scale / 2``) of each value's group, shaped like the tensor: the largest
    rounding error of a value inside the calibrated range."""
    if not isinstance(q, AffineQuantized):
        raise TypeError(f"expected an AffineQuantized, got {type(q).__name__}")
    g = _grouped(q.codes, q.granularity, q.group_size, q.axis)
    half = (q.scale / 2)[:, None].expand(g.shape)
    return _ungrouped(half, q.shape, q.granularity, q.axis)


# ============================================== whole-model weight round trips (seed-105)

#: The weight formats of the tiny LM's table: float casts, int8 per output channel
#: (symmetric), int4 per output channel and per group (symmetric), and NF4 in blocks of the
#: group's size. The default
#: group of 32 divides every width of the tiny LM (its d_ff = 352 is no multiple of 64).
WEIGHT_FORMATS = ("fp32", "bf16", "fp16", "int8-channel", "int4-channel", "int4-group", "nf4")


def weight_roundtrip(w: torch.Tensor, fmt: str, group_size: int = 32):
    """``(w_hat, nbytes)``: the weight after storing it in ``fmt`` and reading it back (float32),
    and the bytes the stored form takes (codes, scales and zero points included)."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"fmt must be one of {WEIGHT_FORMATS}, got {fmt!r}")
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError("w must be a floating-point torch.Tensor")
    w = w.detach().float()
    if fmt in ("fp32", "bf16", "fp16"):
        info = format_info(fmt)
        return round_to_format(w, fmt), w.numel() * info["bits"] // 8
    if fmt in ("int8-channel", "int4-channel"):
        q = quantize_affine(w, int(fmt[3]), symmetric=True, granularity="channel")
        return dequantize_affine(q), q.nbytes
    if fmt == "int4-group":
        q = quantize_affine(w, 4, symmetric=True, granularity="group", group_size=group_size)
        return dequantize_affine(q), q.nbytes
    q4 = quantize_4bit(w, group_size, "nf4")
    return dequantize_4bit(q4), q4.nbytes


def quantize_model_weights(model: nn.Module, fmt: str, group_size: int = 32):
    """``(copy, nbytes)``: a deep copy of ``model`` whose matrices (every parameter with two or
    more axes: linear weights and the embedding) went through :func:`weight_roundtrip`, and the
    bytes of all its parameters in that form (vectors such as norm gains stay float32). Tied
    parameters are counted once. The copy computes in float32 (weight-only quantization)."""
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"fmt must be one of {WEIGHT_FORMATS}, got {fmt!r}")
    out = copy.deepcopy(model)
    total = 0
    with torch.no_grad():
        for _, p in out.named_parameters():  # unique parameters: a tied head once
            if p.dim() >= 2:
                w_hat, nb = weight_roundtrip(p, fmt, group_size)
                p.copy_(w_hat)
                total += nb
            else:
                total += p.numel() * 4
    return out, total


__all__ = [
    "SCHEMES",
    "codebook",
    "max_half_gap",
    "QuantizedTensor",
    "quantize_4bit",
    "dequantize_4bit",
    "max_abs_error_bound",
    "QuantLinear",
    "quantize_linears",
    "FORMATS",
    "int_range",
    "format_info",
    "round_to_format",
    "float_bits",
    "GRANULARITIES",
    "AffineQuantized",
    "affine_code_range",
    "quantize_affine",
    "dequantize_affine",
    "affine_error_bound",
    "WEIGHT_FORMATS",
    "weight_roundtrip",
    "quantize_model_weights",
]
