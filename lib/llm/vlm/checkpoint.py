"""Saving and loading the tiny VLM (safetensors + a JSON sidecar; no pickles).

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

import dataclasses
import pathlib

from lib.llm.config import LMConfig

from .model import TinyVLM, VLMConfig

#: Where the shipped checkpoint lives.
VLM_DIR = pathlib.Path(__file__).resolve().parents[3] / "data" / "checkpoints" / "vlm"


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


__all__ = ["VLM_DIR", "config_to_dict", "config_from_dict", "save_vlm", "load_vlm"]
