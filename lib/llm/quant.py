"""Block-wise 4-bit weight quantization: absmax int4 and NF4, quantize / dequantize, a frozen
quantized linear layer.

Book: seed-11 (the QLoRA-style variant of LoRA: a 4-bit frozen base with a trainable low-rank
update); written generic so that Part 10's quantization section uses the same code.

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
]
