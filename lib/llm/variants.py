"""One configurable small decoder for comparing the model's components with their alternatives.

:class:`VariantLM` is the book's :class:`~lib.llm.model.TinyLM` with every design choice made a
switch of :class:`VariantConfig`:

* ``position``: ``"rope"`` (rotary, as TinyLM), ``"alibi"`` (linear distance biases,
  :func:`lib.llm.positions.alibi_bias`), ``"learned"`` (an absolute position embedding added to
  the token embedding) or ``"none"`` (causal attention only);
* ``attention``: ``"mha"``, ``"gqa"``, ``"mqa"`` (the number of key/value heads) or ``"mla"``
  (multi-head latent attention: a low-rank latent cache plus decoupled RoPE dims,
  :class:`lib.llm.attention_variants.LatentAttention`);
* ``norm``: ``"rms"`` (RMSNorm) or ``"layer"`` (LayerNorm); ``placement``: ``"pre"`` or ``"post"``;
* ``ffn``: ``"swiglu"``, ``"gelu"`` or ``"relu"``, with equal-parameter hidden widths by default
  (:func:`ffn_hidden`: ``8/3 d`` for the three-matrix SwiGLU, ``4 d`` for the two-matrix MLPs).

Building blocks are imported from :mod:`lib.llm.model` (RMSNorm, RoPE, SwiGLU, KVCache, LMOutput),
not copied. Parameter names follow TinyLM's, so the default variant (rope, gqa, rms, pre, swiglu)
loads a TinyLM's state dict and gives identical logits (``tests/test_llm_variants.py``).
Training reuses :func:`lib.llm.train.train_lm`: :func:`train_variant` follows :mod:`lib.runs`.

    python -m lib.llm.variants --sweep variant-positions   # -> data/checkpoints/variant-positions
    python -m lib.llm.variants --sweep variant-attention   # -> data/checkpoints/variant-attention

Book: seed-103, seed-111, seed-113, seed-114, seed-115, seed-118, seed-120, seed-121.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import runs
from .model import (_SDPA_GQA, IGNORE_INDEX, KVCache, LMOutput, RMSNorm, SwiGLU, apply_rope, init_weights,
                    rope_cos_sin)

POSITIONS = ("rope", "alibi", "learned", "none")
ATTENTIONS = ("mha", "gqa", "mqa", "mla")
NORMS = ("rms", "layer")
PLACEMENTS = ("pre", "post")
FFNS = ("swiglu", "gelu", "relu")


def ffn_hidden(d_model: int, ffn: str) -> int:
    """Hidden width that gives every FFN the parameters of a ``4 d`` two-matrix MLP (``8 d^2``).

    ``"gelu"``/``"relu"``: ``4 d`` (two matrices). ``"swiglu"``: ``round(8 d / 3)`` (three
    matrices; ``3 d * 8d/3 = 8 d^2``, exact when ``d`` is a multiple of 3).
    """
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
        raise ValueError(f"d_model must be a positive int, got {d_model!r}")
    if ffn not in FFNS:
        raise ValueError(f"ffn must be one of {FFNS}, got {ffn!r}")
    return 4 * d_model if ffn != "swiglu" else round(8 * d_model / 3)


@dataclasses.dataclass(frozen=True)
class VariantConfig:
    """Sizes and switches of :class:`VariantLM` (validated on construction).

    vocab_size, d_model, n_layers, n_heads: as :class:`~lib.llm.config.LMConfig`
        (``head_dim = d_model // n_heads``, even when RoPE is used).
    attention: ``"mha"`` (n_kv_heads = n_heads), ``"gqa"`` (1 <= n_kv_heads <= n_heads, dividing
        it; default n_heads // 2), ``"mqa"`` (n_kv_heads = 1) or ``"mla"`` (latent KV).
    n_kv_heads: key/value heads; ``None`` picks the default of ``attention`` (see above).
    kv_rank: MLA only: width of the cached latent ``c_kv`` (DeepSeek-V2's ``d_c``); default
        ``2 * head_dim``.
    rope_dims: MLA only: per-head query dims (and the one shared key) that carry RoPE
        (``d_h^R``, even); default ``head_dim // 2``. Ignored unless position is "rope".
    position: ``"rope"``, ``"alibi"``, ``"learned"`` or ``"none"``.
    norm: ``"rms"`` or ``"layer"``; placement: ``"pre"`` (x + f(norm(x)), final norm) or
        ``"post"`` (norm(x + f(x)), no final norm, as the original Transformer).
    ffn: ``"swiglu"``, ``"gelu"`` or ``"relu"``; d_ff: hidden width, ``None`` for
        :func:`ffn_hidden` (equal parameters across the three).
    max_seq_len: longest sequence accepted (rows of the learned position table).
    rope_theta: RoPE base; rope_scale: positions are divided by it (position interpolation,
        1 = plain RoPE). norm_eps, tie_embeddings, init_std: as LMConfig.
    """

    vocab_size: int = 1024
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None
    attention: str = "gqa"
    kv_rank: int | None = None
    rope_dims: int | None = None
    position: str = "rope"
    norm: str = "rms"
    placement: str = "pre"
    ffn: str = "swiglu"
    d_ff: int | None = None
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    rope_scale: float = 1.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    init_std: float = 0.02

    def __post_init__(self):
        runs.check_int(self, "vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len")
        runs.check_choice(self, "attention", ATTENTIONS)
        runs.check_choice(self, "position", POSITIONS)
        runs.check_choice(self, "norm", NORMS)
        runs.check_choice(self, "placement", PLACEMENTS)
        runs.check_choice(self, "ffn", FFNS)
        runs.check_positive(self, "rope_theta", "rope_scale", "norm_eps", "init_std")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        h, kv = self.n_heads, self.n_kv_heads
        default_kv = {"mha": h, "mqa": 1, "gqa": max(1, h // 2), "mla": h}[self.attention]
        if kv is None:
            object.__setattr__(self, "n_kv_heads", default_kv)
        else:
            runs.check_int(self, "n_kv_heads")
            if self.attention in ("mha", "mqa") and kv != default_kv:
                raise ValueError(f"attention={self.attention!r} means n_kv_heads={default_kv}, got {kv}; "
                                 "use attention='gqa' for other groupings")
            if self.attention == "mla" and kv != h:
                raise ValueError("attention='mla' has no n_kv_heads (every head reads the shared latent); "
                                 f"leave it None, got {kv}")
            if h % kv:
                raise ValueError(f"n_heads ({h}) must be divisible by n_kv_heads ({kv}); each key/value "
                                 "head serves a whole group of query heads")
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", ffn_hidden(self.d_model, self.ffn))
        runs.check_int(self, "d_ff")
        if self.attention == "mla":
            if self.kv_rank is None:
                object.__setattr__(self, "kv_rank", 2 * self.head_dim)
            if self.rope_dims is None:
                object.__setattr__(self, "rope_dims", max(2, self.head_dim // 2 // 2 * 2))
            runs.check_int(self, "kv_rank", "rope_dims")
            if self.rope_dims % 2:
                raise ValueError(f"rope_dims must be even (RoPE rotates pairs), got {self.rope_dims}")
        elif self.kv_rank is not None or self.rope_dims is not None:
            raise ValueError("kv_rank and rope_dims apply to attention='mla' only")
        if self.position == "rope" and self.attention != "mla" and self.head_dim % 2:
            raise ValueError(f"head_dim = d_model / n_heads = {self.head_dim} must be even for RoPE")
        if not isinstance(self.tie_embeddings, bool):
            raise TypeError(f"tie_embeddings must be a bool, got {self.tie_embeddings!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def replace(self, **changes) -> "VariantConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def kv_floats_per_token(self) -> int:
        """Numbers the KV cache holds per token and layer (the formula the measured bytes match).

        MHA/GQA/MQA: ``2 * n_kv_heads * head_dim`` (a key and a value per kv head); MLA:
        ``kv_rank + rope_dims`` (the latent and the one shared RoPE key; ``kv_rank`` alone
        without RoPE).
        """
        if self.attention == "mla":
            return self.kv_rank + (self.rope_dims if self.position == "rope" else 0)
        return 2 * self.n_kv_heads * self.head_dim


def make_norm(cfg: VariantConfig) -> nn.Module:
    """``RMSNorm`` (lib.llm.model) or ``torch.nn.LayerNorm`` of width ``d_model``."""
    if cfg.norm == "rms":
        return RMSNorm(cfg.d_model, cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)


class MLP(nn.Module):
    """Two-matrix feed-forward ``down(act(up(x)))`` with ``act`` = GELU or ReLU (no biases)."""

    def __init__(self, d_model: int, d_ff: int, act: str):
        super().__init__()
        if act not in ("gelu", "relu"):
            raise ValueError(f"act must be 'gelu' or 'relu', got {act!r}")
        self.act = act
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        h = self.up_proj(x)
        return self.down_proj(F.gelu(h) if self.act == "gelu" else F.relu(h))


def make_ffn(cfg: VariantConfig) -> nn.Module:
    return SwiGLU(cfg.d_model, cfg.d_ff) if cfg.ffn == "swiglu" else MLP(cfg.d_model, cfg.d_ff, cfg.ffn)


class VariantAttention(nn.Module):
    """Causal attention with ``n_kv_heads`` key/value heads (MHA/GQA/MQA) and RoPE, an ALiBi
    bias, or no position signal. Same parameter names as :class:`lib.llm.model.Attention`."""

    def __init__(self, cfg: VariantConfig, layer_idx: int = 0):
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.layer_idx = layer_idx
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, pos: dict, cache: KVCache | None = None):
        """x (B, T, d); ``pos`` from :meth:`VariantLM.position_inputs` (cos/sin, bias)."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if pos.get("cos") is not None:
            q, k = apply_rope(q, pos["cos"], pos["sin"]), apply_rope(k, pos["cos"], pos["sin"])
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        kw = {}
        if self.n_kv_heads != self.n_heads:  # kv head j serves query heads j*rep ... (j+1)*rep-1
            if _SDPA_GQA:
                kw["enable_gqa"] = True
            else:  # pragma: no cover - torch < 2.5
                rep = self.n_heads // self.n_kv_heads
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if pos["mask"] is None:  # plain causal attention without a cache: as TinyLM computes it
            out = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, **kw)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=pos["mask"], **kw)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))


class VariantBlock(nn.Module):
    """Pre-norm ``x + f(norm(x))`` or post-norm ``norm(x + f(x))``, for attention then FFN."""

    def __init__(self, cfg: VariantConfig, layer_idx: int):
        super().__init__()
        from .attention_variants import LatentAttention

        self.pre = cfg.placement == "pre"
        self.input_layernorm = make_norm(cfg)
        self.self_attn = (LatentAttention(cfg, layer_idx) if cfg.attention == "mla"
                          else VariantAttention(cfg, layer_idx))
        self.post_attention_layernorm = make_norm(cfg)
        self.mlp = make_ffn(cfg)

    def forward(self, x, pos, cache=None):
        if self.pre:
            x = x + self.self_attn(self.input_layernorm(x), pos, cache)
            return x + self.mlp(self.post_attention_layernorm(x))
        x = self.input_layernorm(x + self.self_attn(x, pos, cache))
        return self.post_attention_layernorm(x + self.mlp(x))


class VariantLM(nn.Module):
    """Decoder-only LM assembled from :class:`VariantConfig` (see the module docstring).

    ``forward(input_ids, targets=None, cache=None)`` returns :class:`lib.llm.model.LMOutput`
    (logits, loss = lm_loss), so :func:`lib.llm.train.train_lm` and
    :func:`lib.llm.train.evaluate_loss` train and evaluate it unchanged.
    """

    def __init__(self, cfg: VariantConfig):
        super().__init__()
        if not isinstance(cfg, VariantConfig):
            raise TypeError(f"expected a VariantConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.position == "learned":
            self.embed_positions = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.layers = nn.ModuleList([VariantBlock(cfg, i) for i in range(cfg.n_layers)])
        self.norm = make_norm(cfg) if cfg.placement == "pre" else nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def reset_parameters(self) -> None:
        """TinyLM's scheme (:func:`lib.llm.model.init_weights`): normal(0, init_std) matrices, residual
        outputs scaled by 1/sqrt(2 n_layers); norm gains 1, norm biases 0."""
        init_weights(self, self.config.init_std, self.config.n_layers)

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    def num_parameters(self) -> int:
        """Unique parameters (a tied LM head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, batch_size: int, max_len: int | None = None):
        """An empty KV cache for incremental decoding: a :class:`~lib.llm.model.KVCache` with
        ``n_kv_heads`` heads, or an :class:`~lib.llm.attention_variants.LatentCache` for MLA."""
        cfg = self.config
        max_len = cfg.max_seq_len if max_len is None else max_len
        if not 1 <= max_len <= cfg.max_seq_len:
            raise ValueError(f"cache max_len must be in [1, {cfg.max_seq_len}], got {max_len}")
        w = self.embed_tokens.weight
        if cfg.attention == "mla":
            from .attention_variants import LatentCache

            rope = cfg.rope_dims if cfg.position == "rope" else 0
            return LatentCache(cfg.n_layers, batch_size, max_len, cfg.kv_rank, rope, w.dtype, w.device)
        return KVCache(cfg.n_layers, batch_size, cfg.n_kv_heads, max_len, cfg.head_dim, w.dtype, w.device)

    def position_inputs(self, past: int, T: int) -> dict:
        """What attention needs for queries at positions ``past .. past+T-1`` over keys
        ``0 .. past+T-1``: ``mask`` (boolean causal, or the causal ALiBi bias as a float mask)
        and RoPE's ``cos``/``sin`` (positions divided by ``rope_scale``) when position is rope.
        ``mask`` is None for plain causal attention without a cache (``is_causal``)."""
        from .positions import alibi_bias

        cfg, dev = self.config, self.device
        q_pos = torch.arange(past, past + T, device=dev)
        k_pos = torch.arange(past + T, device=dev)
        causal = k_pos[None, :] <= q_pos[:, None]
        out = {"mask": causal[None, None] if past else None, "cos": None, "sin": None}
        if cfg.position == "alibi":
            bias = alibi_bias(cfg.n_heads, past + T).to(dev)[:, past:]  # (H, T, L)
            out["mask"] = bias.masked_fill(~causal, float("-inf"))[None]
        elif cfg.position == "rope":
            rd = cfg.rope_dims if cfg.attention == "mla" else cfg.head_dim
            cos, sin = rope_cos_sin(q_pos.float() / cfg.rope_scale, rd, cfg.rope_theta)
            out["cos"], out["sin"] = cos[None, None], sin[None, None]
        return out

    def forward(self, input_ids: torch.Tensor, *, targets: torch.Tensor | None = None,
                cache=None) -> LMOutput:
        """Logits (B, T, V) for ``input_ids`` (B, T); ``loss`` = mean next-token cross-entropy
        when ``targets`` (B, T) are given (-100 skips a position); ``cache`` appends keys/values."""
        cfg = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(f"input_ids must be an integer tensor (batch, seq_len), got "
                             f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
        B, T = input_ids.shape
        if T == 0:
            raise ValueError("empty sequence: seq_len must be >= 1")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= cfg.vocab_size):
            raise ValueError(f"token ids must be in [0, {cfg.vocab_size - 1}]")
        past = 0 if cache is None else cache.length
        if past + T > cfg.max_seq_len:
            raise ValueError(f"sequence too long: {past} cached + {T} new positions > max_seq_len "
                             f"{cfg.max_seq_len}")
        x = self.embed_tokens(input_ids.long())
        if cfg.position == "learned":
            x = x + self.embed_positions(torch.arange(past, past + T, device=x.device))[None]
        pos = self.position_inputs(past, T)
        if pos["cos"] is not None:
            pos["cos"], pos["sin"] = pos["cos"].to(x.dtype), pos["sin"].to(x.dtype)
        for layer in self.layers:
            x = layer(x, pos, cache)
        if cache is not None:
            cache.advance(T)
        h = self.norm(x)
        logits = self.lm_head(h)
        loss = None
        if targets is not None:
            if targets.shape != (B, T):
                raise ValueError(f"targets must have shape {(B, T)}, got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size).float(), targets.reshape(-1).long(),
                                   ignore_index=IGNORE_INDEX)
        return LMOutput(logits=logits, loss=loss, lm_loss=loss, last_hidden_state=h, cache=cache)


def from_tinylm(model) -> VariantLM:
    """A :class:`VariantLM` with a :class:`~lib.llm.model.TinyLM`'s config and weights (dense
    TinyLMs only): the default variant is the book's model (same logits)."""
    from .model import TinyLM

    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM, got {type(model).__name__}")
    c = model.config
    if c.is_moe:
        raise ValueError("from_tinylm takes a dense TinyLM (n_experts = 0)")
    kind = {"MHA": "mha", "GQA": "gqa", "MQA": "mqa"}[c.attention_kind]
    vc = VariantConfig(vocab_size=c.vocab_size, d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads,
                       n_kv_heads=c.n_kv_heads if kind == "gqa" else None, attention=kind, d_ff=c.d_ff,
                       max_seq_len=c.max_seq_len, rope_theta=c.rope_theta, norm_eps=c.norm_eps,
                       tie_embeddings=c.tie_embeddings, init_std=c.init_std)
    v = VariantLM(vc).to(model.device)
    v.load_state_dict(model.state_dict())
    return v.train(model.training)


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass
class VariantTrainConfig:
    """A short pretraining run of one :class:`VariantLM` (see :func:`train_variant`).

    model: the architecture. steps (typ. 100-600), batch_size (16), seq_len (training window,
    64): AdamW with warmup + cosine (lr 3e-3, ``warmup_steps``), weight decay 0.1, clipping 1.0
    (:func:`lib.llm.train.train_lm`). eval_windows: validation windows of ``seq_len`` for the
    final loss. seed: model initialisation and batch order.
    """

    model: VariantConfig = dataclasses.field(default_factory=VariantConfig)
    steps: int = 300
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 3e-3
    warmup_steps: int = 20
    eval_windows: int = 64
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.model, VariantConfig):
            raise TypeError(f"VariantTrainConfig.model must be a VariantConfig, got {type(self.model).__name__}")
        runs.check_int(self, "steps", "batch_size", "seq_len", "eval_windows")
        runs.check_int(self, "warmup_steps", "seed", minimum=0)
        runs.check_positive(self, "lr")
        if self.warmup_steps > self.steps:
            raise ValueError(f"VariantTrainConfig.warmup_steps must be <= steps ({self.steps}), "
                             f"got {self.warmup_steps}")
        if self.seq_len > self.model.max_seq_len:
            raise ValueError(f"VariantTrainConfig.seq_len {self.seq_len} > model max_seq_len "
                             f"{self.model.max_seq_len}")


@dataclasses.dataclass
class VariantRun(runs.Run):
    """The trained model, its final validation loss (nats/token at ``seq_len``) and train_lm's
    history (``loss``, ``grad_norm`` per step...)."""

    model: VariantLM = None
    val_loss: float = float("nan")
    history: dict = dataclasses.field(default_factory=dict)


def train_variant(cfg: VariantTrainConfig, train_tokens: torch.Tensor, val_tokens: torch.Tensor,
                  *, progress: bool = False) -> VariantRun:
    """Initialise a :class:`VariantLM` from ``cfg.seed`` and pretrain it with
    :func:`lib.llm.train.train_lm` on random windows of ``train_tokens`` (1-D ids); the run's
    ``val_loss`` is the mean cross-entropy over ``cfg.eval_windows`` windows of ``val_tokens``.
    The log has one update row per step (loss, grad_norm, lr) and the final evaluation."""
    from .train import TrainConfig, train_lm

    if not isinstance(cfg, VariantTrainConfig):
        raise TypeError(f"expected a VariantTrainConfig, got {type(cfg).__name__}")
    for name, t in (("train_tokens", train_tokens), ("val_tokens", val_tokens)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.is_floating_point():
            raise ValueError(f"{name} must be a 1-D integer tensor of token ids")
        if t.numel() and int(t.max()) >= cfg.model.vocab_size:
            raise ValueError(f"{name} holds id {int(t.max())} >= vocab_size {cfg.model.vocab_size}")
    log = runs.TrainLog()
    with runs.Stopwatch(log):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = VariantLM(cfg.model)
        tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lr=cfg.lr,
                         warmup_steps=cfg.warmup_steps, eval_every=cfg.steps,
                         eval_windows=cfg.eval_windows, seed=cfg.seed, progress=progress)
        hist = train_lm(model, train_tokens, val_tokens, tc)
        for s, l, g, lr in zip(hist["step"], hist["loss"], hist["grad_norm"], hist["lr"]):
            log.record_update(s, loss=l, grad_norm=g, lr=lr)
        vl = hist["val_loss"][-1]
        log.record_eval(cfg.steps, lambda: [vl])
    return VariantRun(config=cfg, log=log, model=model, val_loss=vl, history=hist)


# ----------------------------------------------------------------------------- shipped sweeps

#: The shipped comparisons: name -> variants (each a VariantConfig), trained on the book corpus
#: with :data:`SWEEP_TRAIN` for every seed of :data:`SWEEP_SEEDS`.
SWEEPS = {
    "variant-positions": {p: VariantConfig(position=p) for p in POSITIONS},
    "variant-attention": {a: VariantConfig(attention=a) for a in ATTENTIONS},
}
SWEEP_SEEDS = (0, 1, 2, 3)
SWEEP_TRAIN = dict(steps=300, batch_size=16, seq_len=64, lr=3e-3, warmup_steps=20, eval_windows=64)
#: Context lengths at which the position sweep evaluates (the models train on 64).
SWEEP_LENGTHS = (32, 64, 128, 256)
#: Predictions per length of :func:`lib.llm.positions.context_losses` in the sweep (the same
#: 4096 tokens at every length).
SWEEP_TOKENS = 4096
#: The small subset the reload test recomputes: (length, windows).
CHECK_SUBSET = ((64, 4), (256, 2))


def save_variants(models: dict, folder, meta: dict) -> pathlib.Path:
    """Write ``<name>.safetensors`` for each :class:`VariantLM` (tied heads dropped) and
    ``meta.json`` (``meta`` plus each model's ``config`` and ``weights_sha256``)."""
    from safetensors.torch import save_file

    from .checkpoint import file_sha256

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    meta["models"] = {}
    for name, m in models.items():
        if not isinstance(m, VariantLM):
            raise TypeError(f"{name}: expected a VariantLM, got {type(m).__name__}")
        sd = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()
              if not (m.config.tie_embeddings and k == "lm_head.weight")}
        path = folder / f"{name}.safetensors"
        save_file(sd, str(path), metadata={"format": "pt"})
        meta["models"][name] = {"config": m.config.to_dict(), "weights_sha256": file_sha256(path)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_variant(folder, name: str, with_meta: bool = False):
    """The :class:`VariantLM` ``name`` of a folder written by :func:`save_variants` (or a shipped
    sweep's name under ``data/checkpoints``), in eval mode; its SHA-256 is checked."""
    from safetensors.torch import load_file

    from .checkpoint import CHECKPOINT_DIR, file_sha256

    folder = pathlib.Path(folder)
    if not folder.exists() and len(folder.parts) == 1:
        folder = CHECKPOINT_DIR / folder
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no meta.json in {folder}")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if name not in meta.get("models", {}):
        raise ValueError(f"{folder} has no model {name!r}; it has {sorted(meta.get('models', {}))}")
    entry = meta["models"][name]
    path = folder / f"{name}.safetensors"
    if file_sha256(path) != entry["weights_sha256"]:
        raise ValueError(f"{path}: SHA-256 differs from the one meta.json records")
    model = VariantLM(VariantConfig(**entry["config"]))
    sd = load_file(str(path))
    if model.config.tie_embeddings:
        sd["lm_head.weight"] = sd["embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    if model.config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    model.eval()
    return (model, meta) if with_meta else model


def check_losses(model: VariantLM, val_tokens: torch.Tensor) -> dict:
    """Validation losses on :data:`CHECK_SUBSET` (what the reload test recomputes), keyed
    ``"L=<length>"``; lengths beyond ``max_seq_len`` are skipped."""
    from .train import evaluate_loss

    return {f"L={L}": evaluate_loss(model, val_tokens, L, max_windows=w)
            for L, w in CHECK_SUBSET if L <= model.config.max_seq_len}


def make_sweep(name: str, out=None, seeds=SWEEP_SEEDS, steps: int | None = None, progress: bool = False,
               command: str | None = None) -> dict:
    """Train every variant of ``SWEEPS[name]`` for every seed; write ``<out>/<name>/`` with the
    seed-0 weights of each variant and ``meta.json``: per variant and seed the final
    validation loss, parameters, KV-cache numbers per token and layer, and (position sweep)
    the losses at :data:`SWEEP_LENGTHS` (RoPE also with position interpolation and NTK)."""
    from lib.provenance import git_commit, machine, tree_dirty

    from .checkpoint import CHECKPOINT_DIR
    from .positions import context_losses
    from .pretrain import corpus_token_ids

    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; known: {sorted(SWEEPS)}")
    out = pathlib.Path(out) if out is not None else CHECKPOINT_DIR
    torch.set_num_threads(1)
    train, val = corpus_token_ids("train"), corpus_token_ids("val")
    tcfg = dict(SWEEP_TRAIN)
    if steps is not None:  # a shorter smoke run keeps its warmup within the steps
        tcfg.update(steps=steps, warmup_steps=min(tcfg["warmup_steps"], steps))
    results, keep, t0 = {}, {}, time.perf_counter()
    for variant, mcfg in SWEEPS[name].items():
        rows = []
        for seed in seeds:
            t = time.perf_counter()
            run = train_variant(VariantTrainConfig(model=mcfg, seed=seed, **tcfg), train, val, progress=progress)
            row = {"seed": seed, "val_loss": run.val_loss, "params": run.model.num_parameters(),
                   "kv_floats_per_token_layer": mcfg.kv_floats_per_token,
                   "final_train_loss": run.history["loss"][-1], "time_s": time.perf_counter() - t}
            if name == "variant-positions":
                methods = ("plain", "pi", "ntk") if mcfg.position == "rope" else ("plain",)
                row["context"] = {m: context_losses(run.model, val, SWEEP_LENGTHS, train_len=tcfg["seq_len"],
                                                    method=m, n_tokens=SWEEP_TOKENS) for m in methods}
            if seed == seeds[0]:
                keep[variant] = run.model
                row["check"] = check_losses(run.model, val)
            rows.append(row)
            if progress:
                print(f"{name} {variant} seed {seed}: val {run.val_loss:.4f} ({row['time_s']:.0f} s)", flush=True)
        results[variant] = rows
    meta = {"name": name, "command": command or f"python -m lib.llm.variants --sweep {name}",
            "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(),
            "seeds": list(seeds), "seed": seeds[0], "train": tcfg,
            "check_subset": [list(c) for c in CHECK_SUBSET],
            "data": "lib.llm.pretrain.corpus_token_ids (book corpus, seed 0): train / val splits",
            "metrics": results, "weights": f"seed {seeds[0]} of each variant",
            "time_s": time.perf_counter() - t0}
    if name == "variant-positions":
        meta.update(lengths=list(SWEEP_LENGTHS), tokens_per_length=SWEEP_TOKENS)
    save_variants(keep, out / name, meta)
    return meta


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lib.llm.variants",
                                 description="Train and ship the component comparisons of Part 10.")
    ap.add_argument("--sweep", required=True, choices=sorted(SWEEPS))
    ap.add_argument("--out", default=None, help="parent folder (default data/checkpoints)")
    ap.add_argument("--steps", type=int, default=None, help=f"steps per run (default {SWEEP_TRAIN['steps']})")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SWEEP_SEEDS))
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    cmd = "python -m lib.llm.variants " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = make_sweep(a.sweep, a.out, tuple(a.seeds), a.steps, progress=not a.no_progress, command=cmd)
    for v, rows in meta["metrics"].items():
        print(v, [round(r["val_loss"], 4) for r in rows])
    print(f"total {meta['time_s']:.0f} s")
    return 0


__all__ = ["POSITIONS", "ATTENTIONS", "NORMS", "PLACEMENTS", "FFNS", "ffn_hidden", "VariantConfig",
           "make_norm", "MLP", "make_ffn", "VariantAttention", "VariantBlock", "VariantLM", "from_tinylm",
           "VariantTrainConfig", "VariantRun", "train_variant", "SWEEPS", "SWEEP_SEEDS", "SWEEP_TRAIN",
           "SWEEP_LENGTHS", "SWEEP_TOKENS", "CHECK_SUBSET", "save_variants", "load_variant", "check_losses",
           "make_sweep", "main"]


if __name__ == "__main__":  # run the imported module's main: its classes are lib.llm.variants'
    from lib.llm.variants import main as _main

    sys.exit(_main())
