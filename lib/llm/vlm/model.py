"""The tiny VLM's model: patches, the vision encoder, the projector and the book's decoder.

Architecture (LLaVA-style: Liu et al. 2023; ViT patching: Dosovitskiy et al. 2021)::

    image (B, H, W, 3) --patchify--> (B, N, p*p*3) --linear + pos--> (B, N, d_vis)
        --transformer encoder--> (B, N, d_vis) --projector MLP--> image tokens (B, N, d_lm)
    text  "<|image|>Q: What colour is the shape?\\nA: red<|eos|>" --embed_tokens--> (B, T, d_lm)
    [image tokens ; text embeddings without the <|image|> placeholder] --TinyLM--> logits

The language side is :class:`lib.llm.model.TinyLM` (fed through ``inputs_embeds``). The loss is
next-token cross-entropy on the answer tokens only. :func:`attention_maps` recomputes the
decoder's attention probabilities (hidden by ``scaled_dot_product_attention``) so a notebook can
show which image patches a text token looks at.

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn as nn

from lib.llm.config import LMConfig
from lib.llm.model import IGNORE_INDEX, TinyLM, apply_rope


def patchify(images, patch: int):
    """Cut images ``(B, H, W, C)`` into non-overlapping ``patch x patch`` squares.

    Returns ``(B, (H/patch) * (W/patch), patch*patch*C)``: patches in row-major order (left to
    right, then top to bottom), each flattened as (row, column, channel). Works on numpy arrays
    and torch tensors.
    """
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ValueError(f"patch must be a positive int, got {patch!r}")
    if not hasattr(images, "shape") or len(images.shape) != 4:
        raise ValueError(f"images must have shape (B, H, W, C), got {getattr(images, 'shape', type(images))}")
    B, H, W, C = images.shape
    if H % patch or W % patch:
        raise ValueError(f"image size {H}x{W} is not a multiple of the patch size {patch}")
    x = images.reshape(B, H // patch, patch, W // patch, patch, C)
    if isinstance(x, torch.Tensor):
        x = x.permute(0, 1, 3, 2, 4, 5)
    else:
        x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // patch) * (W // patch), patch * patch * C)


@dataclasses.dataclass(frozen=True)
class VLMConfig:
    """Sizes of :class:`TinyVLM`; ``lm`` is the decoder's :class:`LMConfig`."""

    lm: LMConfig
    image_size: int = 24
    patch: int = 4
    channels: int = 3
    d_vision: int = 64
    vision_layers: int = 1
    vision_heads: int = 4

    def __post_init__(self):
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch {self.patch}")
        if self.d_vision % self.vision_heads:
            raise ValueError(f"d_vision {self.d_vision} must be divisible by vision_heads {self.vision_heads}")
        if self.vision_layers < 0:
            raise ValueError("vision_layers must be >= 0")

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch) ** 2


class TinyVLM(nn.Module):
    """Vision encoder + projector + :class:`TinyLM`. See the module docstring."""

    def __init__(self, cfg: VLMConfig):
        super().__init__()
        if not isinstance(cfg, VLMConfig):
            raise TypeError(f"expected a VLMConfig, got {type(cfg).__name__}")
        self.config = cfg
        d_in = cfg.patch * cfg.patch * cfg.channels
        self.patch_embed = nn.Linear(d_in, cfg.d_vision)
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.n_patches, cfg.d_vision) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_vision, cfg.vision_heads, 4 * cfg.d_vision, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = (nn.TransformerEncoder(layer, cfg.vision_layers, enable_nested_tensor=False)
                        if cfg.vision_layers else nn.Identity())
        self.vision_norm = nn.LayerNorm(cfg.d_vision)
        self.projector = nn.Sequential(nn.Linear(cfg.d_vision, cfg.lm.d_model), nn.GELU(),
                                       nn.Linear(cfg.lm.d_model, cfg.lm.d_model))
        self.lm = TinyLM(cfg.lm)

    def num_parameters(self) -> dict[str, int]:
        """Parameters per part: vision encoder, projector, language model."""
        vis = sum(p.numel() for n, p in self.named_parameters() if not n.startswith(("projector", "lm.")))
        proj = sum(p.numel() for p in self.projector.parameters())
        return {"vision": vis, "projector": proj, "lm": self.lm.num_parameters(), "total": vis + proj
                + self.lm.num_parameters()}

    def _check_images(self, images):
        cfg = self.config
        want = (cfg.image_size, cfg.image_size, cfg.channels)
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(f"images must have shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point in [0, 1], got {images.dtype}")

    def encode_images(self, images: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """Images (B, H, W, C) in [0, 1] -> image tokens (B, N, d_lm) in the LM's embedding space."""
        self._check_images(images)
        patches = patchify(images - 0.5, self.config.patch)             # (B, N, p*p*C)
        x = self.patch_embed(patches) + self.pos_embed                   # (B, N, d_vis)
        x = self.vision_norm(self.encoder(x))                            # (B, N, d_vis)
        tokens = self.projector(x)                                       # (B, N, d_lm)
        if trace is not None:
            trace.update({"images": tuple(images.shape), "patches": tuple(patches.shape),
                          "vision_tokens": tuple(x.shape), "image_tokens": tuple(tokens.shape)})
        return tokens

    def embed(self, images: torch.Tensor, input_ids: torch.Tensor, image_id: int,
              trace: dict | None = None) -> torch.Tensor:
        """The decoder's input: image tokens prepended to the text embeddings.

        ``input_ids`` (B, T) must start with the ``<|image|>`` placeholder ``image_id``; it is
        replaced by the N image tokens, giving (B, N + T - 1, d_lm).
        """
        if input_ids.dim() != 2 or input_ids.shape[0] != images.shape[0]:
            raise ValueError(f"input_ids must be (B, T) with B = {images.shape[0]}, got {tuple(input_ids.shape)}")
        if not bool((input_ids[:, 0] == image_id).all()):
            raise ValueError("every sequence must start with the <|image|> placeholder id")
        img = self.encode_images(images, trace)
        txt = self.lm.embed_tokens(input_ids[:, 1:].long())              # (B, T-1, d_lm)
        x = torch.cat([img, txt], dim=1)
        if trace is not None:
            trace.update({"text_ids": tuple(input_ids.shape), "text_embeddings": tuple(txt.shape),
                          "decoder_input": tuple(x.shape)})
        return x

    def forward(self, images, input_ids, image_id: int, targets=None, output_hidden_states: bool = False,
                trace: dict | None = None):
        """LM output over the whole sequence (image positions first). ``targets`` (B, T) align
        with ``input_ids`` (next-token targets of the text positions, -100 to skip); image
        positions get no loss."""
        x = self.embed(images, input_ids, image_id, trace)
        full_targets = None
        if targets is not None:
            if targets.shape != input_ids.shape:
                raise ValueError(f"targets must have shape {tuple(input_ids.shape)}, got {tuple(targets.shape)}")
            B, N = x.shape[0], self.config.n_patches
            pad = torch.full((B, N - 1), IGNORE_INDEX, dtype=torch.long, device=x.device)
            # position N-1 (last image token) predicts the first text token after the placeholder
            full_targets = torch.cat([pad, targets.long()], dim=1)
        out = self.lm(inputs_embeds=x, targets=full_targets, output_hidden_states=output_hidden_states)
        if trace is not None:
            trace["logits"] = tuple(out.logits.shape)
        return out


@torch.no_grad()
def attention_maps(model: TinyVLM, images: torch.Tensor, input_ids: torch.Tensor, image_id: int) -> torch.Tensor:
    """Attention probabilities of every decoder layer: (layers, B, heads, L, L), L = N + T - 1.

    Recomputed from the layers' own projections and RoPE on the hidden states the model
    returns (the forward pass itself uses fused attention and keeps no weights).
    """
    lm = model.lm
    cfg = lm.config
    out = model(images, input_ids, image_id, output_hidden_states=True)
    L = out.hidden_states[0].shape[1]
    cos, sin = lm.rope_cos[:L][None, None], lm.rope_sin[:L][None, None]
    causal = torch.ones(L, L, dtype=torch.bool, device=images.device).tril()
    maps = []
    for layer, h in zip(lm.layers, out.hidden_states[:-1]):
        att = layer.self_attn
        x = layer.input_layernorm(h)
        B = x.shape[0]
        q = att.q_proj(x).view(B, L, att.n_heads, att.head_dim).transpose(1, 2)
        k = att.k_proj(x).view(B, L, att.n_kv_heads, att.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k = k.repeat_interleave(att.n_heads // att.n_kv_heads, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(cfg.head_dim)
        maps.append(scores.masked_fill(~causal, float("-inf")).softmax(-1))
    return torch.stack(maps)


def default_config(vocab_size: int, vision_layers: int = 1, lm_layers: int = 2) -> VLMConfig:
    """The notebook's sizes: 24x24 images, 4x4 patches (36 image tokens), a 2-layer decoder."""
    lm = LMConfig(vocab_size=vocab_size, d_model=64, n_layers=lm_layers, n_heads=4, n_kv_heads=2, max_seq_len=96)
    return VLMConfig(lm=lm, vision_layers=vision_layers)


__all__ = ["patchify", "VLMConfig", "TinyVLM", "attention_maps", "default_config"]
