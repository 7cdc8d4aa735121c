"""A tiny vision-language model (ViT encoder -> projector -> the book's decoder).

Architecture (LLaVA-style: Liu et al. 2023; ViT patching: Dosovitskiy et al. 2021)::

    image (B, H, W, 3) --patchify--> (B, N, p*p*3) --linear + pos--> (B, N, d_vis)
        --transformer encoder--> (B, N, d_vis) --projector MLP--> image tokens (B, N, d_lm)
    text  "<|image|>Q: What colour is the shape?\\nA: red<|eos|>" --embed_tokens--> (B, T, d_lm)
    [image tokens ; text embeddings without the <|image|> placeholder] --TinyLM--> logits

The language side is :class:`lib.llm.model.TinyLM` (fed through ``inputs_embeds``). The loss is
next-token cross-entropy on the answer tokens only. :func:`attention_maps` recomputes the
decoder's attention probabilities (hidden by ``scaled_dot_product_attention``) so a notebook can
show which image patches a text token looks at.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.data.shapes import QUESTIONS, ShapesDataset
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


# ----------------------------------------------------------------------------- data -> tensors


def make_examples(ds: ShapesDataset, tokenizer, kinds=tuple(QUESTIONS), seed: int = 0,
                  per_image: int = 1):
    """Question/answer token sequences for the images of ``ds``.

    Each example: ``"<|image|>Q: {question}\\nA: {answer}<|eos|>"``. Returns a dict of tensors:
    ``image_index`` (M,), ``kind`` (M,) index into ``kinds``, ``input_ids`` (M, T) padded with
    ``<|pad|>``, ``targets`` (M, T) (the next token, only over the answer and ``<|eos|>``; -100
    elsewhere), ``prompt_len`` (M,) and the list ``kinds``.
    """
    kinds = list(kinds)
    if not kinds or not set(kinds) <= set(QUESTIONS):
        raise ValueError(f"kinds must be a non-empty subset of {list(QUESTIONS)}, got {kinds}")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(len(ds)):
        chosen = rng.choice(len(kinds), size=min(per_image, len(kinds)), replace=False)
        for k in chosen:
            kind = kinds[int(k)]
            prompt = tokenizer.encode(f"<|image|>Q: {QUESTIONS[kind]}\nA:")
            answer = tokenizer.encode(" " + ds.answer(i, kind)) + [tokenizer.eos_id]
            rows.append((i, int(k), prompt, answer))
    T = max(len(p) + len(a) for _, _, p, a in rows)
    M = len(rows)
    ids = torch.full((M, T), tokenizer.pad_id, dtype=torch.long)
    tgt = torch.full((M, T), IGNORE_INDEX, dtype=torch.long)
    plen = torch.empty(M, dtype=torch.long)
    for r, (_, _, p, a) in enumerate(rows):
        seq = p + a
        ids[r, :len(seq)] = torch.tensor(seq)
        # position j predicts token j+1: targets over the answer tokens
        tgt[r, len(p) - 1:len(seq) - 1] = torch.tensor(a)
        plen[r] = len(p)
    return {"image_index": torch.tensor([r[0] for r in rows]), "kind": torch.tensor([r[1] for r in rows]),
            "input_ids": ids, "targets": tgt, "prompt_len": plen, "kinds": kinds}


def train_vlm(model: TinyVLM, ds: ShapesDataset, examples: dict, image_id: int, steps: int = 600,
              batch_size: int = 64, lr: float = 1e-3, warmup: int = 30, seed: int = 0,
              progress: bool = False) -> dict:
    """AdamW with linear warmup + cosine decay on the answer-token loss. Returns the history
    ``{"step", "loss", "lr", "seconds"}``."""
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    images = torch.as_tensor(ds.images)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    hist = {"step": [], "loss": [], "lr": []}
    M = len(examples["input_ids"])
    t0 = time.perf_counter()
    from .. import progress as progress_bar

    model.train()
    for step in progress_bar(range(steps), enabled=progress, desc="train VLM"):
        idx = torch.randint(M, (batch_size,), generator=gen)
        ids, tgt = examples["input_ids"][idx], examples["targets"][idx]
        img = images[examples["image_index"][idx]].to(dev)
        out = model(img, ids.to(dev), image_id, targets=tgt.to(dev))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        hist["step"].append(step)
        hist["loss"].append(float(out.loss.detach()))
        hist["lr"].append(sched.get_last_lr()[0])
        sched.step()
    model.eval()
    hist["seconds"] = time.perf_counter() - t0
    return hist


@torch.no_grad()
def answer_questions(model: TinyVLM, ds: ShapesDataset, examples: dict, tokenizer, max_new_tokens: int = 24,
                     batch_size: int = 512) -> list[str]:
    """Greedy answers (text after the prompt, up to ``<|eos|>``) for every example.

    The prompt (image tokens + question) is run once into the decoder's KV cache; each new
    token then costs one single-position forward pass.
    """
    dev = next(model.parameters()).device
    model.eval()
    images = torch.as_tensor(ds.images)
    out_text = [""] * len(examples["input_ids"])
    plen = examples["prompt_len"]
    eos = tokenizer.eos_id
    for L in sorted(set(plen.tolist())):
        rows = (plen == L).nonzero().flatten()
        for s in range(0, len(rows), batch_size):
            r = rows[s:s + batch_size]
            ids = examples["input_ids"][r, :L].to(dev)
            img = images[examples["image_index"][r]].to(dev)
            x = model.embed(img, ids, tokenizer.image_id)
            cache = model.lm.new_cache(len(r), min(model.config.lm.max_seq_len, x.shape[1] + max_new_tokens))
            logits = model.lm(inputs_embeds=x, cache=cache).logits[:, -1]
            done = torch.zeros(len(r), dtype=torch.bool, device=dev)
            new = []
            for step in range(max_new_tokens):
                nxt = torch.where(done, torch.full_like(done, eos, dtype=torch.long), logits.argmax(-1))
                new.append(nxt)
                done |= nxt == eos
                if bool(done.all()) or step == max_new_tokens - 1 or cache.length >= cache.k.shape[3]:
                    break
                logits = model.lm(nxt[:, None], cache=cache).logits[:, -1]
            gen = torch.stack(new, 1).tolist()
            for k, row in enumerate(r.tolist()):
                toks = gen[k]
                toks = toks[:toks.index(eos)] if eos in toks else toks
                out_text[row] = tokenizer.decode(toks, skip_special_tokens=True).strip()
    return out_text


def evaluate_vlm(model: TinyVLM, ds: ShapesDataset, examples: dict, tokenizer) -> dict:
    """Exact-match accuracy of greedy answers, overall and per question kind, plus the answers."""
    answers = answer_questions(model, ds, examples, tokenizer)
    kinds = examples["kinds"]
    truth = [ds.answer(int(i), kinds[int(k)]) for i, k in zip(examples["image_index"], examples["kind"])]
    correct = np.array([a == t for a, t in zip(answers, truth)])
    kind_arr = examples["kind"].numpy()
    per = {kinds[k]: float(correct[kind_arr == k].mean()) for k in range(len(kinds)) if (kind_arr == k).any()}
    return {"accuracy": float(correct.mean()), "per_kind": per, "answers": answers, "truth": truth}


def chance_levels(ds: ShapesDataset) -> dict:
    """Majority-answer accuracy for each question kind, from the label distribution of ``ds``."""
    from lib.data.shapes import chance_accuracy

    combo = (ds.colour * 100 + ds.shape * 10 + ds.position)
    return {"colour": chance_accuracy(ds.colour), "shape": chance_accuracy(ds.shape),
            "position": chance_accuracy(ds.position), "caption": chance_accuracy(combo)}


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


VLM_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent.parent / "data" / "vlm"

#: The recipe of the shipped checkpoint (``python -m lib.llm.vlm``).
RECIPE = {"seed": 0, "n_train": 3000, "n_test": 200, "test_seed": 1, "steps": 1500, "batch_size": 64,
          "lr": 1e-3, "warmup": 50, "vision_layers": 1, "lm_layers": 2, "device": "cpu"}


def config_to_dict(cfg: VLMConfig) -> dict:
    d = dataclasses.asdict(cfg)
    return d


def config_from_dict(d: dict) -> VLMConfig:
    d = dict(d)
    return VLMConfig(lm=LMConfig(**d.pop("lm")), **d)


def save_vlm(model: TinyVLM, directory, meta: dict) -> None:
    """``vlm.safetensors`` (weights) + ``vlm.json`` (config and ``meta``) in ``directory``."""
    import json
    import pathlib

    from safetensors.torch import save_model

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(model, str(directory / "vlm.safetensors"))
    meta = {"config": config_to_dict(model.config), **meta}
    (directory / "vlm.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def load_vlm(directory=None, device=None) -> tuple[TinyVLM, dict]:
    """The shipped (or a saved) VLM and its sidecar. No pickles: safetensors + JSON."""
    import json
    import pathlib

    from safetensors.torch import load_model

    directory = pathlib.Path(directory) if directory is not None else VLM_DIR
    meta_path = directory / "vlm.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found; run `python -m lib.llm.vlm` to train the VLM")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    model = TinyVLM(config_from_dict(meta["config"]))
    load_model(model, str(directory / "vlm.safetensors"), device=str(device or "cpu"))
    return model.eval(), meta


def heldout_set(tokenizer, n_test: int = 200, test_seed: int = 1):
    """The held-out images and all four questions about each (the checkpoint's test set)."""
    from lib.data.shapes import make_shapes

    ds = make_shapes(n_test, seed=test_seed)
    return ds, make_examples(ds, tokenizer, per_image=len(QUESTIONS), seed=test_seed)


def main(argv=None) -> int:
    """Train the shipped VLM: ``python -m lib.llm.vlm [--out data/vlm]``."""
    import argparse
    import json

    from lib import seed_everything
    from lib.data.shapes import make_shapes
    from lib.llm.tokenizer import load_tokenizer

    ap = argparse.ArgumentParser(description="Train the book's tiny VLM on generated shape images.")
    ap.add_argument("--out", default=str(VLM_DIR))
    for key in ("steps", "lr", "vision_layers", "lm_layers", "batch_size", "n_train"):
        ap.add_argument("--" + key.replace("_", "-"), type=type(RECIPE[key]), default=RECIPE[key])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args(argv)
    r = dict(RECIPE, **{k: getattr(args, k) for k in ("steps", "lr", "vision_layers", "lm_layers", "batch_size",
                                                      "n_train", "device")})
    seed_everything(r["seed"])
    tok = load_tokenizer()
    train = make_shapes(r["n_train"], seed=r["seed"])
    ex = make_examples(train, tok, per_image=len(QUESTIONS), seed=r["seed"])
    model = TinyVLM(default_config(tok.vocab_size, r["vision_layers"], r["lm_layers"])).to(r["device"])
    hist = train_vlm(model, train, ex, tok.image_id, steps=r["steps"], batch_size=r["batch_size"], lr=r["lr"],
                     warmup=r["warmup"], seed=r["seed"], progress=True)
    test, ext = heldout_set(tok, r["n_test"], r["test_seed"])
    model = model.cpu()   # the recorded metric is measured on the CPU, where the tests reload it
    res = evaluate_vlm(model, test, ext, tok)
    meta = {
        "what": "tiny VLM (ViT patches -> projector -> TinyLM) trained on lib.data.shapes images",
        "command": (f"python -m lib.llm.vlm --steps {r['steps']} --lr {r['lr']} --vision-layers {r['vision_layers']} "
                    f"--lm-layers {r['lm_layers']} --batch-size {r['batch_size']} --n-train {r['n_train']} "
                    f"--device {r['device']}"),
        "recipe": r,
        "tokenizer": "data/tokenizer/tokenizer.book.json",
        "parameters": model.num_parameters(),
        "train_seconds": round(hist["seconds"], 1),
        "heldout_accuracy": round(res["accuracy"], 4),
        "heldout_per_kind": {k: round(v, 4) for k, v in res["per_kind"].items()},
        "chance_per_kind": {k: round(v, 4) for k, v in chance_levels(train).items()},
        "loss_every_10_steps": [round(float(np.mean(hist["loss"][i:i + 10])), 4) for i in range(0, r["steps"], 10)],
        "lr_every_10_steps": [float(f"{hist['lr'][i]:.6g}") for i in range(0, r["steps"], 10)],
    }
    save_vlm(model, args.out, meta)
    print(json.dumps({k: v for k, v in meta.items() if "every" not in k}, indent=1))
    return 0


__all__ = ["patchify", "VLMConfig", "TinyVLM", "make_examples", "train_vlm", "answer_questions",
           "evaluate_vlm", "chance_levels", "attention_maps", "default_config", "save_vlm", "load_vlm",
           "heldout_set", "RECIPE"]


if __name__ == "__main__":
    raise SystemExit(main())
