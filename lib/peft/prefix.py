"""Prefix tuning and prompt tuning: trainable virtual tokens in front of a frozen model.

Book: seed-12.

* **Prefix tuning** (Li & Liang, 2021) learns, for every layer, ``P`` key vectors and ``P`` value
  vectors that every real token can attend to. Under grouped-query attention a layer's keys and
  values have ``n_kv_heads × head_dim`` numbers per position (not ``d_model``), so the prefix has
  ``n_layers · 2 · P · n_kv_heads · head_dim`` parameters. They enter through the model's own
  KV-cache path: :class:`PrefixCache` holds them as "already cached" positions, so
  :class:`lib.llm.model.TinyLM` needs no change (real tokens sit at positions ``P, P+1, …``, as
  in Hugging Face PEFT, which passes the prefix as ``past_key_values``).
* **Prompt tuning** (Lester et al., 2021) learns only ``P`` input embeddings (``P · d_model``
  parameters) prepended to the token embeddings.

Both wrappers behave like a ``TinyLM`` towards the book's training loop and generator
(``forward(ids, attention_mask=, cache=, targets=)``, ``config``, ``device``, ``new_cache``).
Initialised from the keys/values (or embeddings) of real text, each is exactly the frozen model
reading that text first: the check that the wiring is right before any training.

Main entry points: :class:`PrefixCache`, :class:`PrefixTuning`, :class:`PromptTuning`,
:func:`prefix_attention`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.llm.model import IGNORE_INDEX, LMOutput, TinyLM, apply_rope


def _check_base(model) -> TinyLM:
    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM base model, got {type(model).__name__}")
    return model


def _check_n(n_virtual) -> int:
    if isinstance(n_virtual, bool) or not isinstance(n_virtual, int) or n_virtual < 1:
        raise ValueError(f"n_virtual must be an int >= 1, got {n_virtual!r}")
    return n_virtual


def _loss(logits, targets):
    if targets is None:
        return None
    if targets.shape != logits.shape[:2]:
        raise ValueError(
            f"targets must have shape {tuple(logits.shape[:2])}, got {tuple(targets.shape)}"
        )
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1).long(),
        ignore_index=IGNORE_INDEX,
    )


def _ones_before(mask, n, batch):
    if mask is None:
        return None
    return torch.cat([torch.ones(batch, n, dtype=mask.dtype, device=mask.device), mask], dim=1)


class PrefixCache:
    """A KV cache that starts with ``P`` learned positions per layer and grows by concatenation.

    Duck-types :class:`lib.llm.model.KVCache` (``length``, ``batch_size``, ``update``,
    ``advance``). Concatenation (not in-place writes) keeps the prefix differentiable.
    keys, values: (n_layers, n_kv_heads, P, head_dim), shared by the ``batch_size`` rows.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, batch_size: int):
        if keys.shape != values.shape or keys.dim() != 4:
            raise ValueError(
                f"keys and values must share one (n_layers, n_kv_heads, P, head_dim) shape, "
                f"got {tuple(keys.shape)} and {tuple(values.shape)}"
            )
        self.k = [keys[i].unsqueeze(0).expand(batch_size, -1, -1, -1) for i in range(keys.shape[0])]
        self.v = [
            values[i].unsqueeze(0).expand(batch_size, -1, -1, -1) for i in range(keys.shape[0])
        ]
        self.n_prefix = self.length = keys.shape[2]
        self.batch_size = batch_size

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self.k[layer] = torch.cat([self.k[layer], k], dim=2)
        self.v[layer] = torch.cat([self.v[layer], v], dim=2)
        return self.k[layer], self.v[layer]

    def advance(self, n: int) -> None:
        self.length += n


class PrefixTuning(nn.Module):
    """A frozen :class:`TinyLM` with ``n_virtual`` trainable key/value positions in every layer.

    Parameters ``prefix_keys`` and ``prefix_values``: (n_layers, n_kv_heads, n_virtual, head_dim),
    drawn N(0, init_std²) unless :meth:`init_from_text` sets them from real tokens.
    """

    def __init__(self, base: TinyLM, n_virtual: int = 8, init_std: float = 0.02):
        super().__init__()
        self.base = _check_base(base)
        self.n_virtual = _check_n(n_virtual)
        for p in base.parameters():
            p.requires_grad_(False)
        cfg = base.config
        shape = (cfg.n_layers, cfg.n_kv_heads, n_virtual, cfg.head_dim)
        w = base.embed_tokens.weight
        self.prefix_keys = nn.Parameter(
            torch.randn(shape, dtype=w.dtype, device=w.device) * init_std
        )
        self.prefix_values = nn.Parameter(
            torch.randn(shape, dtype=w.dtype, device=w.device) * init_std
        )

    config = property(lambda self: self.base.config)
    device = property(lambda self: self.base.device)

    @torch.no_grad()
    def init_from_text(self, ids) -> None:
        """Set the prefix to the keys/values the frozen model computes for ``ids`` (n_virtual
        token ids): the model then reads exactly as if those tokens preceded every input."""
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(1, -1)
        if ids.shape[1] != self.n_virtual:
            raise ValueError(f"need {self.n_virtual} token ids, got {ids.shape[1]}")
        cache = self.base.new_cache(1, self.n_virtual)
        self.base(ids, cache=cache)
        self.prefix_keys.copy_(cache.k[:, 0])
        self.prefix_values.copy_(cache.v[:, 0])

    def new_cache(self, batch_size: int, max_len: int | None = None) -> PrefixCache:
        """A :class:`PrefixCache` holding the prefix (``max_len`` is not needed: it grows)."""
        return PrefixCache(self.prefix_keys, self.prefix_values, batch_size)

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        cache: PrefixCache | None = None,
        targets: torch.Tensor | None = None,
    ) -> LMOutput:
        """Like ``TinyLM.forward``; ``attention_mask`` (B, tokens so far) excludes the prefix."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a (batch, seq_len) tensor")
        B = input_ids.shape[0]
        if cache is None:
            cache = self.new_cache(B)
        elif not isinstance(cache, PrefixCache):
            raise TypeError("cache must come from PrefixTuning.new_cache")
        out = self.base(
            input_ids, cache=cache, attention_mask=_ones_before(attention_mask, self.n_virtual, B)
        )
        return LMOutput(logits=out.logits, loss=_loss(out.logits, targets), cache=cache)


class PromptTuning(nn.Module):
    """A frozen :class:`TinyLM` reading ``n_virtual`` trainable embeddings before the tokens.

    Parameter ``prompt``: (n_virtual, d_model), N(0, init_std²) unless :meth:`init_from_text`.
    Logits of the virtual positions are dropped: ``forward`` returns (B, T, vocab).
    """

    def __init__(self, base: TinyLM, n_virtual: int = 8, init_std: float = 0.02):
        super().__init__()
        self.base = _check_base(base)
        self.n_virtual = _check_n(n_virtual)
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.embed_tokens.weight
        self.prompt = nn.Parameter(
            torch.randn(n_virtual, w.shape[1], dtype=w.dtype, device=w.device) * init_std
        )

    config = property(lambda self: self.base.config)
    device = property(lambda self: self.base.device)

    @torch.no_grad()
    def init_from_text(self, ids) -> None:
        """Set the prompt to the embeddings of ``ids`` (PEFT's ``TEXT`` initialisation)."""
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(-1)
        if ids.numel() != self.n_virtual:
            raise ValueError(f"need {self.n_virtual} token ids, got {ids.numel()}")
        self.prompt.copy_(self.base.embed_tokens(ids))

    def new_cache(self, batch_size: int, max_len: int | None = None):
        cfg = self.base.config
        max_len = cfg.max_seq_len - self.n_virtual if max_len is None else max_len
        return self.base.new_cache(batch_size, max_len + self.n_virtual)

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        cache=None,
        targets: torch.Tensor | None = None,
    ) -> LMOutput:
        """Like ``TinyLM.forward``; ``attention_mask`` (B, tokens so far) excludes the prompt."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a (batch, seq_len) tensor")
        B, P = input_ids.shape[0], self.n_virtual
        mask = _ones_before(attention_mask, P, B)
        if cache is not None and cache.length > 0:  # the prompt is already in the cache
            out = self.base(input_ids, attention_mask=mask, cache=cache)
            logits = out.logits
        else:
            self.base._check_ids(input_ids)
            emb = self.base.embed_tokens(input_ids.long())
            x = torch.cat([self.prompt.unsqueeze(0).expand(B, -1, -1).to(emb.dtype), emb], dim=1)
            out = self.base(inputs_embeds=x, attention_mask=mask, cache=cache)
            logits = out.logits[:, P:]
        return LMOutput(logits=logits, loss=_loss(logits, targets), cache=cache)


@torch.no_grad()
def prefix_attention(model: PrefixTuning, input_ids: torch.Tensor) -> torch.Tensor:
    """Attention probabilities of every layer and head over prefix + tokens.

    Returns (n_layers, B, n_heads, T, P + T): row ``t`` is how query ``t`` spreads its attention
    over the ``P`` prefix positions and the causal past. Recomputed from each attention module's
    input (captured by hooks), with the same RoPE positions as the forward pass.
    """
    if not isinstance(model, PrefixTuning):
        raise TypeError(f"expected a PrefixTuning model, got {type(model).__name__}")
    inputs = {}
    hooks = [
        layer.self_attn.register_forward_hook(
            lambda mod, args, out, i=i: inputs.__setitem__(i, args)
        )
        for i, layer in enumerate(model.base.layers)
    ]
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    P, T = model.n_virtual, input_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=input_ids.device).tril()
    allowed = torch.cat([torch.ones(T, P, dtype=torch.bool, device=input_ids.device), causal], 1)
    maps = []
    for i, layer in enumerate(model.base.layers):
        att = layer.self_attn
        x, cos, sin = inputs[i][:3]
        B = x.shape[0]
        q = att.q_proj(x).view(B, T, att.n_heads, att.head_dim).transpose(1, 2)
        k = att.k_proj(x).view(B, T, att.n_kv_heads, att.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k = torch.cat([model.prefix_keys[i].unsqueeze(0).expand(B, -1, -1, -1), k], dim=2)
        k = k.repeat_interleave(att.n_heads // att.n_kv_heads, dim=1)
        scores = (q @ k.transpose(-1, -2)) / att.head_dim**0.5
        maps.append(scores.masked_fill(~allowed, float("-inf")).softmax(-1))
    return torch.stack(maps)


__all__ = ["PrefixCache", "PrefixTuning", "PromptTuning", "prefix_attention"]
