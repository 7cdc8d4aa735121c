"""A tiny vision-language model (ViT encoder -> projector -> the book's decoder).

* :mod:`.model` — patches, the vision encoder, the projector, :class:`TinyVLM`, attention maps;
* :mod:`.data` — question/answer token sequences about :mod:`lib.data.shapes` images;
* :mod:`.train` — the answer-token training loop, greedy answers and accuracy;
* :mod:`.checkpoint` — safetensors + JSON sidecar I/O (the shipped model is in
  ``data/checkpoints/vlm``); ``python -m lib.llm.vlm`` retrains it.

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

from .checkpoint import VLM_DIR, config_from_dict, config_to_dict, load_vlm, save_vlm
from .data import chance_levels, heldout_set, make_examples
from .model import TinyVLM, VLMConfig, attention_maps, default_config, patchify
from .train import VLMRun, VLMTrainConfig, answer_questions, evaluate_vlm, train_vlm

__all__ = ["patchify", "VLMConfig", "TinyVLM", "make_examples", "train_vlm", "answer_questions",
           "evaluate_vlm", "chance_levels", "attention_maps", "default_config", "save_vlm", "load_vlm",
           "heldout_set", "config_to_dict", "config_from_dict", "VLM_DIR", "VLMTrainConfig", "VLMRun"]
