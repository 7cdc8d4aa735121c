"""Configuration of the book's tiny decoder-only language model (Llama-style, optional MoE).

One frozen dataclass, :class:`LMConfig`, describes every size and switch of
:class:`lib.llm.model.TinyLM`. It is validated on construction: impossible combinations
(heads that do not divide the width, an odd head dimension for RoPE, ``top_k`` larger than
the number of experts, ...) raise ``ValueError`` with a message that says what was expected.

Book: seed-3, seed-8.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any


def _default_d_ff(d_model: int, multiple_of: int = 32) -> int:
    """Llama's SwiGLU width: 2/3 of 4*d_model (same parameter count as a 4x GELU MLP), rounded up."""
    hidden = int(2 * 4 * d_model / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Sizes and switches of :class:`~lib.llm.model.TinyLM`.

    Attributes
    ----------
    vocab_size: number of token ids (embedding rows, logits per position).
    d_model: width of the residual stream.
    n_layers: number of decoder blocks.
    n_heads: query heads; ``head_dim = d_model // n_heads`` (must be even for RoPE).
    n_kv_heads: key/value heads. ``n_kv_heads == n_heads`` is multi-head attention (MHA),
        ``1`` is multi-query attention (MQA), anything in between is grouped-query (GQA).
        ``None`` means ``n_heads``.
    d_ff: hidden width of the SwiGLU feed-forward (of each expert for MoE);
        ``None`` means Llama's rule ``~8/3 * d_model`` rounded up to a multiple of 32.
    max_seq_len: longest sequence (prompt + generation) the model accepts.
    rope_theta: RoPE base frequency.
    norm_eps: RMSNorm epsilon.
    tie_embeddings: LM head shares the token-embedding matrix.
    n_experts: 0 for a dense FFN, otherwise the number of experts of the MoE FFN.
    top_k: experts per token (MoE only).
    moe_aux_weight: weight of the load-balancing loss added by the training loop.
    init_std: standard deviation of the normal weight initialisation.
    """

    vocab_size: int = 512
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = 2
    d_ff: int | None = None
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    n_experts: int = 0
    top_k: int = 2
    moe_aux_weight: float = 0.01
    init_std: float = 0.02

    def __post_init__(self):
        ints = ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len", "n_experts", "top_k")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"LMConfig.{name} must be an int, got {type(v).__name__} ({v!r})")
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"LMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", _default_d_ff(self.d_model))
        if isinstance(self.n_kv_heads, bool) or not isinstance(self.n_kv_heads, int) or self.n_kv_heads < 1:
            raise ValueError(f"LMConfig.n_kv_heads must be a positive int, got {self.n_kv_heads!r}")
        if isinstance(self.d_ff, bool) or not isinstance(self.d_ff, int) or self.d_ff < 1:
            raise ValueError(f"LMConfig.d_ff must be a positive int, got {self.d_ff!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads}); "
                             "each key/value head serves a whole group of query heads")
        if self.head_dim % 2:
            raise ValueError(f"head_dim = d_model / n_heads = {self.head_dim} must be even for RoPE "
                             "(it rotates pairs of coordinates)")
        if self.n_experts < 0:
            raise ValueError(f"n_experts must be 0 (dense) or positive, got {self.n_experts}")
        if self.n_experts > 0 and not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k must be in [1, n_experts={self.n_experts}], got {self.top_k}")
        if not self.rope_theta > 0 or not self.norm_eps > 0 or not self.init_std > 0:
            raise ValueError("rope_theta, norm_eps and init_std must be positive")
        if self.moe_aux_weight < 0:
            raise ValueError(f"moe_aux_weight must be >= 0, got {self.moe_aux_weight}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def attention_kind(self) -> str:
        """'MHA', 'GQA' or 'MQA' from ``n_kv_heads``."""
        if self.n_kv_heads == self.n_heads:
            return "MHA"
        return "MQA" if self.n_kv_heads == 1 else "GQA"

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LMConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown LMConfig fields: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def replace(self, **changes) -> "LMConfig":
        return dataclasses.replace(self, **changes)


__all__ = ["LMConfig"]
