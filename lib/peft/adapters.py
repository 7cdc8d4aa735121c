"""Bottleneck adapters (Houlsby et al., 2019): small trainable MLPs inside a frozen model.

Book: seed-9 (one of the compared fine-tuning methods).

An adapter maps a sublayer's output ``h`` (width d) to ``h + up(act(down(h)))`` with ``down``:
d -> m and ``up``: m -> d (both with bias), m << d. ``up`` starts at zero, so every adapter is the
identity at initialisation and the model's output is unchanged. Following Houlsby, one adapter
follows the attention output projection and one follows the feed-forward block of every layer,
before the residual addition: ``n_layers * 2 * (2 d m + m + d)`` trainable parameters.

Main entry points: :class:`BottleneckAdapter`, :class:`Adapted`, :func:`inject_adapters`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class BottleneckAdapter(nn.Module):
    """``h + up(gelu(down(h)))``; ``up`` zero-initialised (identity at initialisation)."""

    def __init__(self, d_model: int, bottleneck: int = 16):
        super().__init__()
        for name, v in (("d_model", d_model), ("bottleneck", bottleneck)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(F.gelu(self.down(h)))


class Adapted(nn.Module):
    """A frozen sublayer followed by an adapter: ``adapter(module(x))``."""

    def __init__(self, module: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.module, self.adapter = module, adapter

    def forward(self, x):
        return self.adapter(self.module(x))


def inject_adapters(
    model: nn.Module, bottleneck: int = 16, after: Sequence[str] = ("o_proj", "down_proj")
) -> list[str]:
    """Freeze ``model`` and put a :class:`BottleneckAdapter` after every sublayer whose name ends
    in one of ``after`` (default: attention output and feed-forward output). Returns their names."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    after = tuple(after)
    if not after:
        raise ValueError("after must name at least one sublayer")
    for p in model.parameters():
        p.requires_grad_(False)
    names = [
        n
        for n, m in model.named_modules()
        if n.rpartition(".")[2] in after and isinstance(m, nn.Linear)
    ]
    if not names:
        raise ValueError(f"no linear sublayer of the model is named like {after}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        mod = getattr(parent, child)
        w = mod.weight
        adapter = BottleneckAdapter(mod.out_features, bottleneck).to(device=w.device, dtype=w.dtype)
        setattr(parent, child, Adapted(mod, adapter))
    return names


__all__ = ["BottleneckAdapter", "Adapted", "inject_adapters"]
