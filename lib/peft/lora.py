"""LoRA: a frozen linear layer plus a trainable low-rank update ``(alpha / r) * B @ A``.

Book: seed-10, seed-11 (and the QLoRA-style variant: LoRA on a 4-bit frozen base,
:mod:`lib.llm.quant`).

For a frozen weight ``W`` (out × in) LoRA learns ``A`` (r × in) and ``B`` (out × r) and computes

    y = x W^T + (alpha / r) * (x A^T) B^T

``A`` starts Kaiming-uniform (as ``nn.Linear`` and PEFT initialise it) and ``B`` at zero, so the
update ``ΔW = (alpha / r) B A`` is zero at initialisation and the model's output is unchanged.
``merge`` adds ΔW into ``W`` (no extra cost at inference), ``unmerge`` takes it out again.
A layer has ``r * (in + out)`` trainable parameters instead of ``in * out``.

Main entry points: :class:`LoRALinear`, :func:`inject_lora` (wrap the target layers of a model
and freeze everything else), :func:`merge_lora` / :func:`unmerge_lora`, :func:`lora_layers`,
:func:`lora_state_dict`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from lib.llm.quant import QuantLinear, quantize_linears

#: Linear layers of a decoder block that LoRA can target (Hugging Face Llama names).
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * dropout(x) @ A.T @ B.T`` with ``base`` frozen.

    base: an ``nn.Linear`` without bias or a :class:`lib.llm.quant.QuantLinear` (QLoRA-style).
    r: rank >= 1; alpha: scaling numerator (``scaling = alpha / r``); dropout: on the LoRA input.
    """

    def __init__(self, base: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, (nn.Linear, QuantLinear)):
            raise TypeError(
                f"base must be an nn.Linear or a QuantLinear, got {type(base).__name__}"
            )
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"rank r must be an int >= 1, got {r!r}")
        if not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.r, self.alpha, self.scaling = r, float(alpha), float(alpha) / r
        ref = next(iter(base.parameters()), None)
        kw = {"dtype": ref.dtype, "device": ref.device} if ref is not None else {}
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """``ΔW = (alpha / r) * B @ A`` (out × in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

    def _check_mergeable(self):
        if not isinstance(self.base, nn.Linear):
            raise TypeError("cannot merge into a 4-bit base (QuantLinear): dequantize it first")

    @torch.no_grad()
    def merge(self) -> None:
        """``W <- W + ΔW``; the forward then skips the low-rank path (same output)."""
        self._check_mergeable()
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged")
        self.base.weight += self.delta_weight()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """``W <- W - ΔW`` (undoes :meth:`merge` up to rounding)."""
        self._check_mergeable()
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged")
        self.base.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def inject_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16.0,
    targets: Sequence[str] = ("q_proj", "v_proj"),
    dropout: float = 0.0,
    quantize: str | None = None,
    block_size: int = 64,
) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each linear layer whose name ends in one of
    ``targets`` in a :class:`LoRALinear` (in place). Returns the wrapped module names.

    quantize: ``None`` (LoRA) or ``"nf4"`` / ``"int4"`` (QLoRA-style: every linear layer except
    the LM head is first replaced by a 4-bit :class:`~lib.llm.quant.QuantLinear`).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    targets = tuple(targets)
    if not targets or not set(targets) <= set(TARGETS):
        raise ValueError(f"targets must be a non-empty subset of {TARGETS}, got {targets}")
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("model already has LoRA layers")
    for p in model.parameters():
        p.requires_grad_(False)
    if quantize is not None:
        quantize_linears(model, block_size=block_size, scheme=quantize)
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, QuantLinear)) and n.rpartition(".")[2] in targets
    ]
    if not names:
        raise ValueError(f"no linear layer of the model is named like {targets}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """``{module name: LoRALinear}`` of a model."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer of ``model``; return how many."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers")
    for m in layers.values():
        m.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Unmerge every LoRA layer of ``model``; return how many."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers")
    for m in layers.values():
        m.unmerge()
    return len(layers)


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA factors (``<module>.lora_A`` / ``.lora_B``): what an adapter file stores."""
    return {
        f"{n}.{k}": getattr(m, k).detach().clone()
        for n, m in lora_layers(model).items()
        for k in ("lora_A", "lora_B")
    }


__all__ = [
    "TARGETS",
    "LoRALinear",
    "inject_lora",
    "lora_layers",
    "merge_lora",
    "unmerge_lora",
    "lora_state_dict",
]
