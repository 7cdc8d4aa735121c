"""The tiny VLM's data: question/answer token sequences about generated shape images.

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

import numpy as np
import torch

from lib.data.shapes import QUESTIONS, ShapesDataset, make_shapes
from lib.llm.model import IGNORE_INDEX


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


def heldout_set(tokenizer, n_test: int = 200, test_seed: int = 1):
    """The held-out images and all four questions about each (the checkpoint's test set)."""
    ds = make_shapes(n_test, seed=test_seed)
    return ds, make_examples(ds, tokenizer, per_image=len(QUESTIONS), seed=test_seed)


def chance_levels(ds: ShapesDataset) -> dict:
    """Majority-answer accuracy for each question kind, from the label distribution of ``ds``."""
    from lib.data.shapes import chance_accuracy

    combo = (ds.colour * 100 + ds.shape * 10 + ds.position)
    return {"colour": chance_accuracy(ds.colour), "shape": chance_accuracy(ds.shape),
            "position": chance_accuracy(ds.position), "caption": chance_accuracy(combo)}


__all__ = ["make_examples", "heldout_set", "chance_levels"]
