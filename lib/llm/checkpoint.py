"""Save and load :class:`~lib.llm.model.TinyLM` checkpoints: ``model.safetensors`` + ``meta.json``.

A checkpoint is a folder (the book ships them in ``data/checkpoints/<name>/``)::

    model.safetensors   the weights (safetensors: no pickle, safe to load)
    meta.json           {"config": LMConfig fields, "seed", "metrics", "history", "tokenizer_sha256",
                         "command", ...}

``load_model("tiny-lm")`` resolves a bare name against ``data/checkpoints``. A tied LM head is
stored once (under ``embed_tokens.weight``) and re-tied on load.

Book: seed-8 (and every section that loads a shipped model).
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import torch

from .config import LMConfig
from .model import TinyLM

#: Folder of the book's shipped checkpoints.
CHECKPOINT_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "data" / "checkpoints"
#: Name of the book's base model (dense) and of its MoE sibling.
BASE_MODEL = "tiny-lm"
MOE_MODEL = "tiny-lm-moe"


def resolve(path_or_name) -> pathlib.Path:
    """A checkpoint folder from a path or a bare name under :data:`CHECKPOINT_DIR`."""
    p = pathlib.Path(path_or_name)
    if not p.exists() and len(p.parts) == 1:
        p = CHECKPOINT_DIR / p
    if not (p / "model.safetensors").is_file() or not (p / "meta.json").is_file():
        raise FileNotFoundError(f"no checkpoint (model.safetensors + meta.json) in {p}; shipped ones: "
                                f"{sorted(q.name for q in CHECKPOINT_DIR.glob('*') if q.is_dir())}")
    return p


def state_dict_for_saving(model: TinyLM) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; the tied LM head is dropped (it is ``embed_tokens.weight``)."""
    sd = model.state_dict()
    if model.config.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save_checkpoint(model: TinyLM, folder, meta: dict | None = None) -> pathlib.Path:
    """Write ``model.safetensors`` and ``meta.json`` (with ``config`` filled in) into ``folder``."""
    from safetensors.torch import save_file

    if not isinstance(model, TinyLM):
        raise TypeError(f"expected a TinyLM, got {type(model).__name__}")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state_dict_for_saving(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    meta = dict(meta or {})
    meta["config"] = model.config.to_dict()
    meta["weights_sha256"] = file_sha256(folder / "model.safetensors")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_meta(path_or_name) -> dict:
    """The checkpoint's ``meta.json`` as a dict; a clear ``ValueError`` naming the file when it
    is not valid JSON, not an object, or lacks its ``config``."""
    path = resolve(path_or_name) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path}: no 'config' object (the model's LMConfig fields); was it written "
                         "by save_checkpoint?")
    return meta


def load_model(path_or_name=BASE_MODEL, device=None, with_meta: bool = False):
    """Rebuild the :class:`TinyLM` of a checkpoint (eval mode) from its folder or shipped name.

    The weights file must match the ``weights_sha256`` its ``meta.json`` records (a corrupted or
    swapped file is refused, naming it). Returns the model, or ``(model, meta)`` with
    ``with_meta=True``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve(path_or_name)
    meta = load_meta(folder)
    weights = folder / "model.safetensors"
    recorded = meta.get("weights_sha256")
    if recorded is not None and file_sha256(weights) != recorded:
        raise ValueError(f"{weights}: its SHA-256 is not the weights_sha256 that {folder / 'meta.json'} "
                         "records: the file is corrupted or from another checkpoint")
    try:
        cfg = LMConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{folder / 'meta.json'}: invalid config ({exc})") from None
    model = TinyLM(cfg)
    try:
        sd = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{weights}: not a readable safetensors file ({exc})") from None
    if cfg.tie_embeddings:
        sd["lm_head.weight"] = sd["embed_tokens.weight"]
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{weights}: weights do not fit the config in meta.json ({exc})") from None
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    if device is not None:
        model.to(device)
    model.eval()
    return (model, meta) if with_meta else model


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["CHECKPOINT_DIR", "BASE_MODEL", "MOE_MODEL", "resolve", "save_checkpoint", "load_model", "load_meta",
           "state_dict_for_saving", "file_sha256"]
