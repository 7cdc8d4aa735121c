"""Parameter-efficient fine-tuning of the book's tiny LM (Part 3; reused by Parts 4 and 8).

Book: seed-9, seed-10, seed-11, seed-12.

Modules: :mod:`lib.peft.lora` (LoRA layer, inject / merge / unmerge; QLoRA-style on a 4-bit base
from :mod:`lib.llm.quant`), :mod:`lib.peft.prefix` (prefix tuning through the KV cache, prompt
tuning), :mod:`lib.peft.adapters` (bottleneck adapters), :mod:`lib.peft.methods` (every method
built the same way, trainable-parameter formulas, measured memory), :mod:`lib.peft.svd` (the
singular values of a real weight update), :mod:`lib.peft.compare` (the chapter's comparison,
``python -m lib.peft.compare``).
"""

from .adapters import BottleneckAdapter, inject_adapters
from .lora import LoRALinear, inject_lora, lora_layers, lora_state_dict, merge_lora, unmerge_lora
from .methods import (
    DEFAULTS,
    METHODS,
    count_trainable,
    held_bytes,
    make_method,
    memory_after_step,
    trainable_formula,
)
from .prefix import PrefixCache, PrefixTuning, PromptTuning, prefix_attention

__all__ = [
    "BottleneckAdapter",
    "inject_adapters",
    "LoRALinear",
    "inject_lora",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "unmerge_lora",
    "DEFAULTS",
    "METHODS",
    "count_trainable",
    "held_bytes",
    "make_method",
    "memory_after_step",
    "trainable_formula",
    "PrefixCache",
    "PrefixTuning",
    "PromptTuning",
    "prefix_attention",
]
