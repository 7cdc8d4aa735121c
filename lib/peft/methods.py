"""The fine-tuning methods side by side: build each one on a base model, count what it trains
(and check the count against its closed-form formula), and measure the memory it holds.

Book: seed-9.

:func:`make_method` turns a frozen copy of a :class:`~lib.llm.model.TinyLM` into one of
:data:`METHODS` — full fine-tuning, partial fine-tuning (embedding and lower layers frozen),
LoRA, QLoRA-style LoRA on a 4-bit base, bottleneck adapters, prefix tuning, prompt tuning — and
:func:`trainable_formula` gives the number of trainable parameters each must have, from the
model's sizes alone. :func:`memory_after_step` measures the bytes held after one real AdamW step:
weights (trainable and frozen, 4-bit ones at their packed size), gradients and optimizer state.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn

from lib.llm.config import LMConfig
from lib.llm.model import TinyLM
from lib.llm.quant import QuantLinear

from .adapters import inject_adapters
from .lora import inject_lora
from .prefix import PrefixTuning, PromptTuning

#: The compared methods, from most to fewest trainable parameters (for the defaults).
METHODS = ("full", "partial", "lora", "qlora", "adapter", "prefix", "prompt")

#: Default hyper-parameters of each method (see :func:`make_method`).
DEFAULTS = {
    "full": {},
    "partial": {"n_frozen": 3},
    "lora": {"r": 8, "alpha": 16.0, "targets": ("q_proj", "v_proj")},
    "qlora": {
        "r": 8,
        "alpha": 16.0,
        "targets": ("q_proj", "v_proj"),
        "scheme": "nf4",
        "block_size": 64,
    },
    "adapter": {"bottleneck": 16},
    "prefix": {"n_virtual": 32},
    "prompt": {"n_virtual": 32},
}


def count_trainable(model: nn.Module) -> int:
    """Trainable parameters (``requires_grad``), a tied tensor counted once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def freeze_lower(model: TinyLM, n_frozen: int) -> TinyLM:
    """Partial fine-tuning: freeze the token embedding (tied to the LM head) and the lowest
    ``n_frozen`` decoder layers; the upper layers and the final norm stay trainable."""
    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM, got {type(model).__name__}")
    L = model.config.n_layers
    if isinstance(n_frozen, bool) or not isinstance(n_frozen, int) or not 0 <= n_frozen < L:
        raise ValueError(f"n_frozen must be an int in [0, {L - 1}], got {n_frozen!r}")
    for p in model.parameters():
        p.requires_grad_(True)
    model.embed_tokens.weight.requires_grad_(False)
    for layer in model.layers[:n_frozen]:
        for p in layer.parameters():
            p.requires_grad_(False)
    return model


def _linear_shapes(cfg: LMConfig) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear layer of a dense decoder block."""
    d, hd, ff = cfg.d_model, cfg.head_dim, cfg.d_ff
    return {
        "q_proj": (d, cfg.n_heads * hd),
        "k_proj": (d, cfg.n_kv_heads * hd),
        "v_proj": (d, cfg.n_kv_heads * hd),
        "o_proj": (cfg.n_heads * hd, d),
        "gate_proj": (d, ff),
        "up_proj": (d, ff),
        "down_proj": (ff, d),
    }


def block_parameters(cfg: LMConfig) -> int:
    """Parameters of one dense decoder block: its seven linear layers and two norms."""
    return sum(i * o for i, o in _linear_shapes(cfg).values()) + 2 * cfg.d_model


def trainable_formula(method: str, cfg: LMConfig, **kw) -> int:
    """Closed-form trainable-parameter count of ``method`` on a dense model with config ``cfg``.

    full: ``V d (+ V d untied) + L · block + d``; partial: ``(L - n_frozen) · block + d``
    (+ ``V d`` for an untied head); lora / qlora: ``L · Σ_targets r (in + out)``; adapter:
    ``L · 2 · (2 d m + m + d)``; prefix: ``L · 2 · P · n_kv_heads · head_dim``; prompt: ``P · d``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(cfg, LMConfig) or cfg.is_moe:
        raise ValueError("trainable_formula needs the LMConfig of a dense model")
    p = {**DEFAULTS[method], **kw}
    L, d, V = cfg.n_layers, cfg.d_model, cfg.vocab_size
    head = 0 if cfg.tie_embeddings else V * d
    if method == "full":
        return V * d + head + L * block_parameters(cfg) + d
    if method == "partial":
        return (L - p["n_frozen"]) * block_parameters(cfg) + d + head
    if method in ("lora", "qlora"):
        shapes = _linear_shapes(cfg)
        return L * sum(p["r"] * sum(shapes[t]) for t in p["targets"])
    if method == "adapter":
        m = p["bottleneck"]
        return L * 2 * (2 * d * m + m + d)
    if method == "prefix":
        return L * 2 * p["n_virtual"] * cfg.n_kv_heads * cfg.head_dim
    return p["n_virtual"] * d


def make_method(method: str, base: TinyLM, **kw) -> nn.Module:
    """A model ready to fine-tune with ``method``: a deep copy of ``base`` (left untouched) with
    the method's trainable parameters. ``kw`` overrides :data:`DEFAULTS`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(base, TinyLM):
        raise TypeError(f"base must be a TinyLM, got {type(base).__name__}")
    unknown = set(kw) - set(DEFAULTS[method])
    if unknown:
        raise ValueError(
            f"unknown options {sorted(unknown)} for {method}; known: {sorted(DEFAULTS[method])}"
        )
    p = {**DEFAULTS[method], **kw}
    model = copy.deepcopy(base)
    for q in model.parameters():
        q.requires_grad_(True)
    if method == "partial":
        freeze_lower(model, p["n_frozen"])
    elif method == "lora":
        inject_lora(model, p["r"], p["alpha"], p["targets"])
    elif method == "qlora":
        inject_lora(
            model,
            p["r"],
            p["alpha"],
            p["targets"],
            quantize=p["scheme"],
            block_size=p["block_size"],
        )
    elif method == "adapter":
        inject_adapters(model, p["bottleneck"])
    elif method == "prefix":
        model = PrefixTuning(model, p["n_virtual"])
    elif method == "prompt":
        model = PromptTuning(model, p["n_virtual"])
    return model


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def held_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """Bytes held now: ``weights`` (every parameter, plus the packed 4-bit buffers of
    :class:`~lib.llm.quant.QuantLinear` layers), ``grads`` (gradients present), ``optimizer``
    (the optimizer's state tensors) and their ``total``."""
    params = list({id(p): p for p in model.parameters()}.values())
    weights = _bytes(params) + sum(
        m.nbytes() for m in model.modules() if isinstance(m, QuantLinear)
    )
    grads = _bytes(p.grad for p in params if p.grad is not None)
    opt = 0
    if optimizer is not None:
        opt = _bytes(
            v
            for st in optimizer.state.values()
            for v in st.values()
            if isinstance(v, torch.Tensor) and v.dim() > 0
        )
    return {"weights": weights, "grads": grads, "optimizer": opt, "total": weights + grads + opt}


def memory_after_step(
    model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor], lr: float = 1e-3
) -> dict[str, int]:
    """:func:`held_bytes` after one real AdamW step of ``loss_fn(model)`` on a copy of ``model``
    (the model itself is not changed). Gradients are kept (not set to None) as a training loop
    holds them between backward and step."""
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a callable taking the model and returning a scalar loss")
    m = copy.deepcopy(model)
    params = [p for p in m.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr)
    loss = loss_fn(m)
    loss.backward()
    opt.step()
    return held_bytes(m, opt)


__all__ = [
    "METHODS",
    "DEFAULTS",
    "count_trainable",
    "freeze_lower",
    "block_parameters",
    "trainable_formula",
    "make_method",
    "held_bytes",
    "memory_after_step",
]
