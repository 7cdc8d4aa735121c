"""The book's tiny decoder-only language model: Llama-style, with an optional mixture of experts.

Architecture (pre-norm, no biases)::

    ids (B, T) --embed_tokens--> x (B, T, d)
    repeat n_layers:   x = x + Attention(RMSNorm(x))        # RoPE, MHA / GQA / MQA via n_kv_heads
                       x = x + FFN(RMSNorm(x))              # SwiGLU, or a top-k routed MoE of SwiGLUs
    RMSNorm -> lm_head -> logits (B, T, vocab)              # lm_head optionally tied to embed_tokens

Parameter names follow Hugging Face's ``LlamaForCausalLM`` (without its ``model.`` prefix), so
converting weights is a renaming (see :mod:`lib.llm.export`); the MoE follows Mixtral's routing
(softmax over experts, top-k, renormalised weights).

Main entry points: :class:`TinyLM` (``forward`` returns an :class:`LMOutput`), :class:`KVCache`,
the building blocks :class:`RMSNorm`, :func:`rope_cos_sin`, :func:`apply_rope`,
:class:`Attention`, :class:`SwiGLU`, :class:`MoE`, and the helpers :func:`count_parameters`,
:func:`moe_load_balancing_loss`.

Book: seed-2, seed-3, seed-6, seed-8.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import LMConfig

IGNORE_INDEX = -100


def _sdpa_supports_gqa() -> bool:
    try:
        z = torch.zeros(1, 2, 1, 2)
        F.scaled_dot_product_attention(z, z[:, :1], z[:, :1], enable_gqa=True)
        return True
    except (TypeError, RuntimeError):  # pragma: no cover - torch < 2.5
        return False


#: ``scaled_dot_product_attention(..., enable_gqa=True)`` shares kv heads without copying them (torch >= 2.5).
_SDPA_GQA = _sdpa_supports_gqa()


# ----------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    """Root-mean-square norm: ``x / sqrt(mean(x**2) + eps) * weight`` over the last axis.

    Computed in float32 and cast back (as Llama does). Equals ``torch.nn.RMSNorm(dim, eps)``.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float = 10000.0):
    """RoPE tables for integer ``positions`` (any shape S): ``cos, sin`` of shape ``S + (head_dim,)``.

    Frequencies ``theta ** (-2i / head_dim)`` for ``i < head_dim / 2``, laid out twice
    (``[f0..f_{h/2-1}, f0..f_{h/2-1}]``) to pair coordinate ``i`` with ``i + head_dim / 2``
    (the "rotate-half" convention of Llama / Hugging Face).
    """
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float().unsqueeze(-1) * inv_freq.to(positions.device)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last axis (halves)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate query/key vectors ``x`` (..., T, head_dim) by their positions' angles.

    ``cos``/``sin`` broadcast against ``x`` (e.g. (B, 1, T, head_dim) for x (B, H, T, head_dim)).
    Each pair (x_i, x_{i+h/2}) is rotated by angle ``pos * f_i``: the dot product of a rotated
    query and key depends only on their relative position.
    """
    return x * cos + rotate_half(x) * sin


class KVCache:
    """Pre-allocated key/value cache for incremental decoding.

    Holds ``k, v`` of shape (n_layers, B, n_kv_heads, max_len, head_dim); ``length`` counts the
    positions already stored. Each layer calls :meth:`update`; the model calls :meth:`advance`
    after a forward pass. Make one with :meth:`TinyLM.new_cache`.
    """

    def __init__(self, n_layers: int, batch_size: int, n_kv_heads: int, max_len: int, head_dim: int,
                 dtype=torch.float32, device=None):
        shape = (n_layers, batch_size, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self.max_len = max_len
        self.batch_size = batch_size

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store new keys/values (B, n_kv, T, hd) after the cached ones; return all (B, n_kv, L+T, hd)."""
        t0, t1 = self.length, self.length + k.shape[2]
        if t1 > self.max_len:
            raise ValueError(f"KV cache full: {t1} positions > max_len {self.max_len}")
        self.k[layer, :, :, t0:t1] = k
        self.v[layer, :, :, t0:t1] = v
        return self.k[layer, :, :, :t1], self.v[layer, :, :, :t1]

    def advance(self, n: int) -> None:
        self.length += n

    def nbytes(self) -> int:
        """Bytes held by the positions stored so far (keys and values, all layers)."""
        per_pos = self.k[:, :, :, :1].numel() * self.k.element_size() * 2
        return per_pos * self.length


class Attention(nn.Module):
    """Causal self-attention with RoPE; ``n_kv_heads`` < ``n_heads`` shares keys/values (GQA/MQA)."""

    def __init__(self, cfg: LMConfig, layer_idx: int = 0):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.layer_idx = layer_idx
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, mask=None, cache: KVCache | None = None):
        """x (B, T, d); cos/sin (B, 1, T, hd); mask None (causal) / 'none' / bool (B|1, 1, T, L)."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        kw = {}
        if self.n_kv_heads != self.n_heads:  # GQA/MQA: kv head j serves query heads j*rep ... (j+1)*rep-1
            if _SDPA_GQA:
                kw["enable_gqa"] = True
            else:  # pragma: no cover - torch < 2.5
                rep = self.n_heads // self.n_kv_heads
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, **kw)
        elif isinstance(mask, str):  # 'none': a single new query attends to everything cached
            out = F.scaled_dot_product_attention(q, k, v, **kw)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


def explicit_attention_mask(mask: torch.Tensor, batch: int, seq_len: int, past: int = 0
                            ) -> torch.Tensor:
    """Validate an explicit 4-D attention mask of shape (batch|1, 1, seq_len, past + seq_len):
    boolean (True = query may attend to key) or additive float (0 = attend, negative = not).

    Every query row must allow at least one key (an all-masked row gives NaN in softmax).
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        raise ValueError("an explicit attention mask must be a 4-D tensor")
    L = past + seq_len
    if mask.shape[0] not in (1, batch) or mask.shape[1] != 1 or mask.shape[2:] != (seq_len, L):
        raise ValueError(f"4-D attention_mask must have shape ({batch} or 1, 1, {seq_len}, {L}), "
                         f"got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        ok = mask.any(-1)
    elif mask.is_floating_point():
        if bool((mask > 0).any()) or bool(torch.isnan(mask).any()):
            raise ValueError("an additive attention mask holds 0 (attend) or negative values only")
        ok = (mask == 0).any(-1)
    else:
        raise TypeError(f"4-D attention_mask must be bool or floating point, got {mask.dtype}")
    if not bool(ok.all()):
        raise ValueError("4-D attention_mask has a query row that attends to nothing "
                         "(let padding positions attend to themselves)")
    return mask


class SwiGLU(nn.Module):
    """Gated feed-forward ``down(silu(gate(x)) * up(x))`` (d -> d_ff -> d)."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def moe_load_balancing_loss(router_logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Switch/Mixtral load-balancing loss of one layer's router logits (N, E).

    ``E * sum_e f_e * P_e`` with ``f_e`` the fraction of the N tokens that picked expert ``e``
    among their top-k (so ``sum_e f_e = top_k``) and ``P_e`` the mean router probability of
    ``e``. Equals ``top_k`` for perfectly uniform routing; grows as routing collapses.
    """
    if router_logits.dim() != 2:
        raise ValueError(f"router_logits must be (N, E), got shape {tuple(router_logits.shape)}")
    n_experts = router_logits.shape[-1]
    probs = router_logits.float().softmax(-1)
    top = probs.topk(top_k, dim=-1).indices
    counts = F.one_hot(top, n_experts).sum(dim=(0, 1)).float()
    f = counts / router_logits.shape[0]
    return n_experts * (f * probs.mean(0)).sum()


class MoE(nn.Module):
    """Mixture of SwiGLU experts with a top-k softmax router (Mixtral semantics).

    ``p = softmax(gate(x))``; each token goes to its ``top_k`` experts, weighted by their
    probabilities renormalised to sum to 1. After each forward, ``last_router_logits`` (N, E)
    and ``last_topk`` (N, top_k) hold the (detached) routing of the last batch for statistics.
    """

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.n_experts, self.top_k = cfg.n_experts, cfg.top_k
        self.gate = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList([SwiGLU(cfg.d_model, cfg.d_ff) for _ in range(cfg.n_experts)])
        self.last_router_logits: torch.Tensor | None = None
        self.last_topk: torch.Tensor | None = None

    def route(self, x2d: torch.Tensor):
        """Router logits (N, E), top-k expert ids (N, k) and their renormalised weights (N, k)."""
        logits = self.gate(x2d)
        probs = logits.float().softmax(-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        w = (w / w.sum(-1, keepdim=True)).to(x2d.dtype)
        return logits, idx, w

    def forward(self, x):
        shape = x.shape
        x2d = x.reshape(-1, shape[-1])
        logits, idx, w = self.route(x2d)
        out = torch.zeros_like(x2d)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            out.index_add_(0, tok, expert(x2d[tok]) * w[tok, slot, None])
        self.last_router_logits, self.last_topk = logits, idx.detach()
        return out.view(shape)


class DecoderBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))``, then ``x + ffn(norm(x))``."""

    def __init__(self, cfg: LMConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MoE(cfg) if cfg.is_moe else SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x, cos, sin, mask=None, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


# ----------------------------------------------------------------------------- the model


@dataclasses.dataclass
class LMOutput:
    """What :meth:`TinyLM.forward` returns.

    logits (B, T, V); loss: mean next-token cross-entropy when ``targets`` were given (plus
    ``moe_aux_weight * aux_loss`` for an MoE, see ``lm_loss``); lm_loss: the cross-entropy alone;
    aux_loss: mean load-balancing loss over MoE layers (None for dense); router_logits: one
    (B*T, E) tensor per MoE layer; hidden_states: the residual stream after the embedding and
    after every block (``n_layers + 1`` tensors (B, T, d)) when requested, plus the final
    normed states in ``last_hidden_state``.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    router_logits: tuple | None = None
    hidden_states: tuple | None = None
    last_hidden_state: torch.Tensor | None = None
    cache: KVCache | None = None


def init_weights(model: nn.Module, std: float, n_layers: int) -> None:
    """The book's initialisation of a decoder, in ``named_parameters`` order (so one seed gives one model):
    matrices normal(0, ``std``), the residual output projections (``o_proj``, ``down_proj``) normal(0,
    ``std / sqrt(2 n_layers)``) as GPT-2 scales them; vectors: norm gains 1, biases 0."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not std > 0 or not int(n_layers) >= 1:
        raise ValueError(f"need std > 0 and n_layers >= 1, got std={std}, n_layers={n_layers}")
    for name, p in model.named_parameters():
        if p.dim() == 1:
            nn.init.zeros_(p) if name.endswith(".bias") else nn.init.ones_(p)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * n_layers))
        else:
            nn.init.normal_(p, 0.0, std)


class TinyLM(nn.Module):
    """Decoder-only LM (see the module docstring). ``TinyLM(LMConfig(...))``."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        if not isinstance(cfg, LMConfig):
            raise TypeError(f"expected an LMConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList([DecoderBlock(cfg, i) for i in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_cos_sin(torch.arange(cfg.max_seq_len), cfg.head_dim, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights; residual output projections scaled by 1/sqrt(2 n_layers)."""
        init_weights(self, self.config.init_std, self.config.n_layers)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    def num_parameters(self) -> int:
        """Unique parameters (a tied LM head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        cfg = self.config
        max_len = cfg.max_seq_len if max_len is None else max_len
        if not 1 <= max_len <= cfg.max_seq_len:
            raise ValueError(f"cache max_len must be in [1, {cfg.max_seq_len}], got {max_len}")
        w = self.embed_tokens.weight
        return KVCache(cfg.n_layers, batch_size, cfg.n_kv_heads, max_len, cfg.head_dim, w.dtype, w.device)

    def _check_ids(self, input_ids):
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise TypeError(f"input_ids must be an integer tensor (torch.long), got {input_ids.dtype}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(input_ids.shape)}; "
                             "use ids.unsqueeze(0) for a single sequence")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size - 1}], got range "
                             f"[{int(input_ids.min())}, {int(input_ids.max())}]")

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor | None = None, *, inputs_embeds: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                cache: KVCache | None = None, targets: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> LMOutput:
        """Logits for every position.

        input_ids (B, T) integer ids, or inputs_embeds (B, T, d_model) (e.g. image tokens
        prepended to text embeddings); exactly one of the two.
        attention_mask (B, L) with 1 for real tokens and 0 for padding, L = cached + T
        positions (optional; positions then count real tokens only, for left padding); or an
        explicit 4-D mask (B|1, 1, T, L), boolean (True = may attend) or additive float, used
        as given (e.g. the block-diagonal mask of packed samples, :mod:`lib.sft.packing`).
        position_ids (B, T) optional explicit positions.
        cache: a :class:`KVCache`; new keys/values are appended and ``cache.length`` advances.
        targets (B, T): the next token of each position (``IGNORE_INDEX`` = -100 to skip).
        """
        cfg = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            self._check_ids(input_ids)
            x = self.embed_tokens(input_ids.long())
        else:
            if not isinstance(inputs_embeds, torch.Tensor) or inputs_embeds.dim() != 3 \
                    or inputs_embeds.shape[-1] != cfg.d_model:
                raise ValueError(f"inputs_embeds must be a tensor (batch, seq_len, {cfg.d_model}), got "
                                 f"{getattr(inputs_embeds, 'shape', type(inputs_embeds).__name__)}")
            if not inputs_embeds.is_floating_point():
                raise TypeError(f"inputs_embeds must be floating point, got {inputs_embeds.dtype}")
            x = inputs_embeds
        B, T = x.shape[:2]
        if T == 0:
            raise ValueError("empty sequence: seq_len must be >= 1")
        past = 0 if cache is None else cache.length
        if cache is not None and cache.batch_size != B:
            raise ValueError(f"cache was made for batch size {cache.batch_size}, got {B}")
        if past + T > cfg.max_seq_len:
            raise ValueError(f"sequence too long: {past} cached + {T} new positions > max_seq_len "
                             f"{cfg.max_seq_len}")

        mask = None  # None: plain causal (no past), 'none': no mask needed
        if attention_mask is not None and attention_mask.dim() == 4:
            mask = explicit_attention_mask(attention_mask, B, T, past).to(x.device)
            if not mask.dtype == torch.bool:
                mask = mask.to(x.dtype)
        elif attention_mask is not None:
            if attention_mask.shape != (B, past + T):
                raise ValueError(f"attention_mask must have shape (batch, cached + seq_len) = {(B, past + T)}, "
                                 f"got {tuple(attention_mask.shape)}")
            am = attention_mask.to(device=x.device).bool()
            if position_ids is None:
                position_ids = (am.long().cumsum(-1) - 1).clamp_min(0)[:, past:]
            q_pos = torch.arange(past, past + T, device=x.device)
            k_pos = torch.arange(past + T, device=x.device)
            allowed = (k_pos[None, :] <= q_pos[:, None])[None] & am[:, None, :]
            allowed = allowed | (k_pos[None, :] == q_pos[:, None])[None]  # never an all-masked row
            mask = allowed[:, None]
        elif past > 0:
            if T == 1:
                mask = "none"
            else:
                q_pos = torch.arange(past, past + T, device=x.device)
                mask = (torch.arange(past + T, device=x.device)[None, :] <= q_pos[:, None])[None, None]
        if position_ids is None:
            cos = self.rope_cos[past:past + T][None, None]
            sin = self.rope_sin[past:past + T][None, None]
        else:
            if not isinstance(position_ids, torch.Tensor) or position_ids.shape != (B, T):
                raise ValueError(f"position_ids must be a tensor of shape {(B, T)}, got "
                                 f"{getattr(position_ids, 'shape', type(position_ids).__name__)}")
            if position_ids.is_floating_point() or position_ids.dtype == torch.bool:
                raise TypeError(f"position_ids must be integers, got {position_ids.dtype}")
            lo, hi = int(position_ids.min()), int(position_ids.max())
            if lo < 0 or hi >= cfg.max_seq_len:
                raise ValueError(f"position_ids must lie in [0, max_seq_len={cfg.max_seq_len}), "
                                 f"got values in [{lo}, {hi}]")
            cos = self.rope_cos[position_ids][:, None]
            sin = self.rope_sin[position_ids][:, None]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)

        hidden = [x] if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache)
            if output_hidden_states:
                hidden.append(x)
        if cache is not None:
            cache.advance(T)
        h = self.norm(x)
        logits = self.lm_head(h)

        router_logits = aux = None
        if cfg.is_moe:
            router_logits = tuple(layer.mlp.last_router_logits for layer in self.layers)
            aux = torch.stack([moe_load_balancing_loss(r, cfg.top_k) for r in router_logits]).mean()
        loss = lm = None
        if targets is not None:
            if targets.shape != (B, T):
                raise ValueError(f"targets must have shape {(B, T)}, got {tuple(targets.shape)}")
            lm = F.cross_entropy(logits.reshape(-1, cfg.vocab_size).float(), targets.reshape(-1).long(),
                                 ignore_index=IGNORE_INDEX)
            loss = lm if aux is None else lm + cfg.moe_aux_weight * aux
        return LMOutput(logits=logits, loss=loss, lm_loss=lm, aux_loss=aux, router_logits=router_logits,
                        hidden_states=tuple(hidden) if hidden is not None else None,
                        last_hidden_state=h, cache=cache)


# ----------------------------------------------------------------------------- accounting


def count_parameters(model: TinyLM) -> dict[str, int]:
    """Parameters per component; the values add up to ``model.num_parameters()``.

    Keys: ``embedding``, ``attention`` (q/k/v/o of all layers), ``norms`` (all RMSNorm
    weights), ``ffn`` (SwiGLU or all experts), ``router`` (MoE gates; 0 for dense),
    ``lm_head`` (0 when tied to the embedding).
    """
    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM, got {type(model).__name__}")
    out = dict(embedding=0, attention=0, norms=0, ffn=0, router=0, lm_head=0)
    seen = set()
    for name, p in model.named_parameters():  # named_parameters skips the tied duplicate
        if id(p) in seen:
            continue
        seen.add(id(p))
        if name.startswith("embed_tokens"):
            out["embedding"] += p.numel()
        elif name.startswith("lm_head"):
            out["lm_head"] += p.numel()
        elif ".self_attn." in name:
            out["attention"] += p.numel()
        elif "layernorm" in name or name.startswith("norm"):
            out["norms"] += p.numel()
        elif name.endswith("mlp.gate.weight"):
            out["router"] += p.numel()
        elif ".mlp." in name:
            out["ffn"] += p.numel()
        else:  # pragma: no cover - every parameter has a home
            raise RuntimeError(f"unclassified parameter {name}")
    return out


def active_parameters_per_token(model: TinyLM) -> int:
    """Parameters one token's forward pass touches: all but the unused experts' weights."""
    cfg = model.config
    total = model.num_parameters()
    if not cfg.is_moe:
        return total
    per_expert = 3 * cfg.d_model * cfg.d_ff
    return total - cfg.n_layers * (cfg.n_experts - cfg.top_k) * per_expert


__all__ = ["IGNORE_INDEX", "RMSNorm", "rope_cos_sin", "rotate_half", "apply_rope", "KVCache", "Attention",
           "SwiGLU", "MoE", "moe_load_balancing_loss", "DecoderBlock", "LMOutput", "TinyLM",
           "count_parameters", "active_parameters_per_token"]
