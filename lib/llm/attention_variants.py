"""Attention variants that differ in what they cache: MHA, GQA, MQA and MLA.

* MHA/GQA/MQA are one layer, :class:`lib.llm.variants.VariantAttention`, with ``n_kv_heads``
  key/value heads (``n_heads``, a divisor, 1). Query head ``h`` reads kv head
  :func:`kv_head_of` ``= h // (n_heads / n_kv_heads)``. :func:`expand_kv` writes a GQA layer as
  the MHA layer whose kv heads repeat within each group (same outputs: GQA *is* MHA with tied
  kv heads); :func:`pool_kv` makes a GQA/MQA layer from an MHA one by averaging the kv heads of
  each group (Ainslie et al., 2023's conversion).
* MLA (DeepSeek-V2, 2024), :class:`LatentAttention`: the cache holds one normalised latent
  ``c = norm(W_dkv x)`` of ``kv_rank`` numbers per token and one RoPE key ``k_r`` of
  ``rope_dims`` numbers shared by all heads. Head ``h``'s content key and value are
  up-projections ``W_uk^h c`` and ``W_uv^h c``; its query has a content part and a RoPE part.
  Because ``q_h . (W_uk^h c) = (W_uk^h^T q_h) . c``, attention can run on the latents directly
  (the *absorbed* form, used for decoding): ``W_uk`` moves into the query and ``W_uv`` into the
  output projection. ``absorbed=True`` computes that form; it equals the explicit one.
* :class:`LatentCache` stores ``c`` and ``k_r``; its :meth:`~LatentCache.nbytes` is measured,
  and :attr:`lib.llm.variants.VariantConfig.kv_floats_per_token` is the formula.

Book: seed-111.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import RMSNorm, apply_rope


def kv_head_of(query_head: int, n_heads: int, n_kv_heads: int) -> int:
    """The key/value head that query head ``query_head`` reads under grouped-query attention."""
    for name, v in (("n_heads", n_heads), ("n_kv_heads", n_kv_heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv_heads})")
    if isinstance(query_head, bool) or not isinstance(query_head, int) or not 0 <= query_head < n_heads:
        raise ValueError(f"query_head must be an int in [0, {n_heads}), got {query_head!r}")
    return query_head // (n_heads // n_kv_heads)


def _kv_attention(attn):
    from .variants import VariantAttention

    if not isinstance(attn, VariantAttention):
        raise TypeError(f"expected a VariantAttention (MHA/GQA/MQA), got {type(attn).__name__}")
    return attn


def _with_kv_heads(attn, n_kv: int, k_w: torch.Tensor, v_w: torch.Tensor):
    from .variants import VariantAttention

    kind = "mha" if n_kv == attn.n_heads else ("mqa" if n_kv == 1 else "gqa")
    cfg = attn.cfg.replace(attention=kind, n_kv_heads=n_kv if kind == "gqa" else None)
    new = VariantAttention(cfg, attn.layer_idx).to(attn.q_proj.weight)
    with torch.no_grad():
        new.q_proj.weight.copy_(attn.q_proj.weight)
        new.o_proj.weight.copy_(attn.o_proj.weight)
        new.k_proj.weight.copy_(k_w)
        new.v_proj.weight.copy_(v_w)
    return new


def expand_kv(attn):
    """The MHA layer equal to a GQA/MQA layer: each kv head's weights repeated for every query
    head of its group (outputs identical)."""
    attn = _kv_attention(attn)
    rep, hd = attn.n_heads // attn.n_kv_heads, attn.head_dim

    def rep_rows(w):
        return w.view(attn.n_kv_heads, hd, -1).repeat_interleave(rep, dim=0).reshape(attn.n_heads * hd, -1)

    return _with_kv_heads(attn, attn.n_heads, rep_rows(attn.k_proj.weight), rep_rows(attn.v_proj.weight))


def pool_kv(attn, n_kv_heads: int):
    """A layer with ``n_kv_heads`` kv heads from ``attn``'s: each new head is the mean of the
    ``attn.n_kv_heads / n_kv_heads`` consecutive heads it replaces (``n_kv_heads`` equal to
    ``attn``'s returns an identical copy; 1 gives MQA)."""
    attn = _kv_attention(attn)
    if isinstance(n_kv_heads, bool) or not isinstance(n_kv_heads, int) or n_kv_heads < 1 \
            or attn.n_kv_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads must be a positive divisor of {attn.n_kv_heads}, got {n_kv_heads!r}")
    g, hd = attn.n_kv_heads // n_kv_heads, attn.head_dim

    def pool(w):
        return w.view(n_kv_heads, g, hd, -1).mean(1).reshape(n_kv_heads * hd, -1)

    return _with_kv_heads(attn, n_kv_heads, pool(attn.k_proj.weight), pool(attn.v_proj.weight))


class LatentCache:
    """Cache of MLA: latents ``c`` (n_layers, B, max_len, kv_rank) and shared RoPE keys
    (n_layers, B, max_len, rope_dims). Same protocol as :class:`lib.llm.model.KVCache`."""

    def __init__(self, n_layers: int, batch_size: int, max_len: int, kv_rank: int, rope_dims: int,
                 dtype=torch.float32, device=None):
        self.c = torch.zeros((n_layers, batch_size, max_len, kv_rank), dtype=dtype, device=device)
        self.kr = torch.zeros((n_layers, batch_size, max_len, rope_dims), dtype=dtype, device=device)
        self.length, self.max_len, self.batch_size = 0, max_len, batch_size

    def update(self, layer: int, c: torch.Tensor, kr: torch.Tensor):
        """Store new latents (B, T, r) and RoPE keys (B, T, dr); return all stored so far."""
        t0, t1 = self.length, self.length + c.shape[1]
        if t1 > self.max_len:
            raise ValueError(f"cache full: {t1} positions > max_len {self.max_len}")
        self.c[layer, :, t0:t1] = c
        self.kr[layer, :, t0:t1] = kr
        return self.c[layer, :, :t1], self.kr[layer, :, :t1]

    def advance(self, n: int) -> None:
        self.length += n

    def nbytes(self) -> int:
        """Bytes held by the positions stored so far (latents and RoPE keys, all layers)."""
        per_pos = (self.c[:, :, :1].numel() * self.c.element_size()
                   + self.kr[:, :, :1].numel() * self.kr.element_size())
        return per_pos * self.length


class LatentAttention(nn.Module):
    """Multi-head latent attention (see the module docstring). ``absorbed`` switches between the
    explicit computation (up-project every cached latent) and the absorbed one."""

    def __init__(self, cfg, layer_idx: int = 0):
        super().__init__()
        self.cfg, self.layer_idx = cfg, layer_idx
        H, hd, r = cfg.n_heads, cfg.head_dim, cfg.kv_rank
        self.n_heads, self.head_dim, self.kv_rank = H, hd, r
        self.rope_dims = cfg.rope_dims if cfg.position == "rope" else 0
        self.absorbed = False
        self.q_proj = nn.Linear(cfg.d_model, H * hd, bias=False)
        self.kv_down = nn.Linear(cfg.d_model, r, bias=False)
        self.kv_norm = RMSNorm(r, cfg.norm_eps)
        self.k_up = nn.Linear(r, H * hd, bias=False)
        self.v_up = nn.Linear(r, H * hd, bias=False)
        if self.rope_dims:
            self.q_rope = nn.Linear(cfg.d_model, H * self.rope_dims, bias=False)
            self.k_rope = nn.Linear(cfg.d_model, self.rope_dims, bias=False)
        self.o_proj = nn.Linear(H * hd, cfg.d_model, bias=False)
        self.scale = 1.0 / math.sqrt(hd + self.rope_dims)

    def _additive_mask(self, mask, T, L, device, dtype):
        if mask is None:  # plain causal, no cache
            mask = torch.ones(T, L, dtype=torch.bool, device=device).tril(L - T)[None, None]
        if mask.dtype == torch.bool:
            return torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, float("-inf"))
        return mask.to(dtype)

    def forward(self, x, pos: dict, cache=None):
        B, T, _ = x.shape
        H, hd, dr = self.n_heads, self.head_dim, self.rope_dims
        qc = self.q_proj(x).view(B, T, H, hd).transpose(1, 2)                      # (B, H, T, hd)
        c = self.kv_norm(self.kv_down(x))                                          # (B, T, r)
        if dr:
            qr = apply_rope(self.q_rope(x).view(B, T, H, dr).transpose(1, 2), pos["cos"], pos["sin"])
            kr = apply_rope(self.k_rope(x)[:, None], pos["cos"], pos["sin"])[:, 0]  # (B, T, dr)
        else:
            qr = kr = x.new_zeros(B, T, 0)
        if cache is not None:
            c, kr = cache.update(self.layer_idx, c, kr)
        L = c.shape[1]
        mask = self._additive_mask(pos["mask"], T, L, x.device, x.dtype)
        if self.absorbed:
            wk = self.k_up.weight.view(H, hd, self.kv_rank)                          # W_uk^h
            q_lat = torch.einsum("bhtd,hdr->bhtr", qc, wk)                          # W_uk^h^T q
            s = torch.einsum("bhtr,blr->bhtl", q_lat, c)
            if dr:
                s = s + torch.einsum("bhtd,bld->bhtl", qr, kr)
            p = (s * self.scale + mask).softmax(-1)
            o_lat = torch.einsum("bhtl,blr->bhtr", p, c)                            # (B, H, T, r)
            wv = self.v_up.weight.view(H, hd, self.kv_rank)
            wo = self.o_proj.weight.view(-1, H, hd)                                 # (d, H, hd)
            w_ov = torch.einsum("ehd,hdr->ehr", wo, wv)                             # W_o^h W_uv^h
            return torch.einsum("bhtr,ehr->bte", o_lat, w_ov)
        k = self.k_up(c).view(B, L, H, hd).transpose(1, 2)
        v = self.v_up(c).view(B, L, H, hd).transpose(1, 2)
        if dr:
            qc = torch.cat([qc, qr], dim=-1)
            k = torch.cat([k, kr[:, None].expand(B, H, L, dr)], dim=-1)
        out = F.scaled_dot_product_attention(qc, k, v, attn_mask=mask, scale=self.scale)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, H * hd))


def set_absorbed(model, absorbed: bool = True) -> None:
    """Switch every MLA layer of a :class:`~lib.llm.variants.VariantLM` to the absorbed (or
    explicit) computation."""
    layers = [m for m in model.modules() if isinstance(m, LatentAttention)]
    if not layers:
        raise ValueError("the model has no MLA layer (attention='mla')")
    for m in layers:
        m.absorbed = bool(absorbed)


def attention_parameters(model) -> int:
    """Parameters of all attention layers of a :class:`~lib.llm.variants.VariantLM`."""
    return sum(p.numel() for layer in model.layers for p in layer.self_attn.parameters())


__all__ = ["kv_head_of", "expand_kv", "pool_kv", "LatentCache", "LatentAttention", "set_absorbed",
           "attention_parameters"]
