"""Checkers for the exercises of Part 3 (supervised fine-tuning).

Sections: the chat format, the SFT loss and packing (seed-13 ... seed-16, helper C), and the
parameter-efficient methods (seed-9 ... seed-12).

Book: seed-9, seed-11, seed-12, seed-14, seed-15, seed-16.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lib.exercises import CheckReport, check_function


# ----------------------------------------------------------------------------- seed-14, seed-16
def masked_loss_reference(logits, labels):
    """Completion-only loss of one sequence: ``logits`` (T, V), Hugging Face ``labels`` (T,)
    (-100 = no loss, not shifted): mean over ``t`` with ``labels[t+1] != -100`` of
    ``-log softmax(logits[t])[labels[t+1]]``."""
    from lib.sft.loss import completion_loss, shift_labels

    return completion_loss(logits[None], shift_labels(labels[None]))


def check_masked_loss(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(logits, labels)`` -> scalar tensor: see :func:`masked_loss_reference`."""
    import torch

    def make(rng):
        T, V = int(rng.integers(2, 10)), int(rng.integers(2, 12))
        labels = rng.integers(0, V, size=T)
        keep = rng.random(T) < 0.6
        keep[int(rng.integers(1, T))] = True           # at least one position is scored
        labels = np.where(keep, labels, -100)
        return {"logits": torch.tensor(rng.normal(size=(T, V)) * 2, dtype=torch.float32),
                "labels": torch.tensor(labels, dtype=torch.long)}

    return check_function(candidate, masked_loss_reference, make, name="masked SFT loss",
                          trials=trials, rtol=1e-5, atol=1e-6)


def packing_mask_reference(segment_ids):
    """(L, L) boolean mask of one packed row: query ``q`` sees key ``k`` iff ``k <= q`` and
    both carry the same segment id > 0; a padding position (id 0) sees itself only."""
    from lib.sft.packing import block_causal_mask

    return block_causal_mask(segment_ids[None])[0, 0]


def check_packing_mask(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(segment_ids)`` -> (L, L) bool tensor: see :func:`packing_mask_reference`."""
    import torch

    def make(rng):
        lengths = rng.integers(1, 6, size=int(rng.integers(1, 4)))
        seg = np.concatenate([np.full(n, k + 1) for k, n in enumerate(lengths)]
                             + [np.zeros(int(rng.integers(0, 3)), dtype=int)])
        return {"segment_ids": torch.tensor(seg, dtype=torch.long)}

    return check_function(candidate, packing_mask_reference, make, name="packing mask",
                          trials=trials)




# ----------------------------------------------------------------------------- seed-15
def bigram_jaccard_reference(a, b):
    """Jaccard similarity of the word-bigram sets of two texts (lower-cased, whitespace
    collapsed; a text of one word is its own single shingle)."""
    from lib.sft.data import jaccard, shingles

    return jaccard(shingles(a, 2), shingles(b, 2))


def check_bigram_jaccard(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(a, b)`` -> float: see :func:`bigram_jaccard_reference`."""
    words = ["what", "does", "Mila", "do?", "is", "a", "doctor.", "How", "old", "Tomo"]

    def make(rng):
        def text():
            n = int(rng.integers(1, 7))
            return "  ".join(str(w) for w in rng.choice(words, size=n)) if rng.random() < 0.2 \
                else " ".join(str(w) for w in rng.choice(words, size=n))
        a = text()
        return {"a": a, "b": a.upper() if rng.random() < 0.2 else text()}

    return check_function(candidate, bigram_jaccard_reference, make, name="bigram Jaccard",
                          trials=trials)


# ----------------------------------------------------------- seed-9 ... seed-12 (PEFT, helper B)
def lora_forward_reference(x, weight, lora_A, lora_B, alpha):
    """LoRA forward: ``x @ weight.T + (alpha / r) * x @ lora_A.T @ lora_B.T`` with ``r`` the rank
    (rows of ``lora_A``), via :class:`lib.peft.lora.LoRALinear`."""
    import torch

    from lib.peft.lora import LoRALinear

    base = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer = LoRALinear(base, r=lora_A.shape[0], alpha=float(alpha))
    with torch.no_grad():
        base.weight.copy_(weight)
        layer.lora_A.copy_(lora_A)
        layer.lora_B.copy_(lora_B)
        return layer(x)


def check_lora_forward(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(x, weight, lora_A, lora_B, alpha)``: ``x`` (..., in), ``weight`` (out, in),
    ``lora_A`` (r, in), ``lora_B`` (out, r) -> (..., out); see :func:`lora_forward_reference`."""
    import torch

    def make(rng):
        i, o, r = (int(v) for v in rng.integers(1, 9, size=3))
        lead = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 3))))
        t = lambda *s: torch.tensor(rng.normal(size=s), dtype=torch.float32)  # noqa: E731
        return {"x": t(*lead, i), "weight": t(o, i), "lora_A": t(r, i), "lora_B": t(o, r),
                "alpha": float(rng.choice([1.0, 2.0, 8.0, 16.0]))}

    return check_function(candidate, lora_forward_reference, make, name="LoRA forward",
                          trials=trials, rtol=1e-4, atol=1e-5)


def lora_count_reference(n_layers, d_model, n_heads, n_kv_heads, d_ff, r, targets):
    """Trainable parameters of LoRA with rank ``r`` on the ``targets`` of every layer of a
    Llama-style model (``head_dim = d_model // n_heads``), via
    :func:`lib.peft.methods.trainable_formula`."""
    from lib.llm.config import LMConfig
    from lib.peft.methods import trainable_formula

    cfg = LMConfig(vocab_size=8, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                   n_kv_heads=n_kv_heads, d_ff=d_ff)
    return trainable_formula("lora", cfg, r=r, targets=tuple(targets))


def check_lora_count(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(n_layers, d_model, n_heads, n_kv_heads, d_ff, r, targets)`` -> int: see
    :func:`lora_count_reference`; ``targets`` is a tuple of names such as
    ``("q_proj", "v_proj")``."""
    names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def make(rng):
        n_heads = int(rng.choice([2, 4, 8]))
        n_kv = int(rng.choice([h for h in (1, 2, 4, 8) if n_heads % h == 0]))
        k = int(rng.integers(1, len(names) + 1))
        d_model = n_heads * 2 * int(rng.integers(1, 9))
        return {"n_layers": int(rng.integers(1, 7)), "d_model": d_model,
                "n_heads": n_heads, "n_kv_heads": n_kv, "d_ff": int(rng.integers(8, 65)),
                "r": int(rng.integers(1, 17)),
                "targets": tuple(str(t) for t in rng.choice(names, size=k, replace=False))}

    return check_function(candidate, lora_count_reference, make, name="LoRA parameter count",
                          trials=trials)


def prefix_count_reference(n_layers, d_model, n_heads, n_kv_heads, n_virtual):
    """Trainable parameters of prefix tuning with ``n_virtual`` positions on a Llama-style model
    (``head_dim = d_model // n_heads``), via :func:`lib.peft.methods.trainable_formula`."""
    from lib.llm.config import LMConfig
    from lib.peft.methods import trainable_formula

    cfg = LMConfig(vocab_size=8, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                   n_kv_heads=n_kv_heads)
    return trainable_formula("prefix", cfg, n_virtual=n_virtual)


def check_prefix_count(candidate: Callable, trials: int = 25) -> CheckReport:
    """``candidate(n_layers, d_model, n_heads, n_kv_heads, n_virtual)`` -> int: see
    :func:`prefix_count_reference`."""

    def make(rng):
        n_heads = int(rng.choice([2, 4, 8]))
        d_model = n_heads * 2 * int(rng.integers(1, 9))
        return {"n_layers": int(rng.integers(1, 9)), "d_model": d_model,
                "n_heads": n_heads,
                "n_kv_heads": int(rng.choice([h for h in (1, 2, 4, 8) if n_heads % h == 0])),
                "n_virtual": int(rng.integers(1, 33))}

    return check_function(candidate, prefix_count_reference, make, name="prefix parameter count",
                          trials=trials)


__all__ = ["masked_loss_reference", "check_masked_loss", "packing_mask_reference",
           "check_packing_mask", "bigram_jaccard_reference", "check_bigram_jaccard",
           "lora_forward_reference", "check_lora_forward", "lora_count_reference",
           "check_lora_count", "prefix_count_reference", "check_prefix_count"]
