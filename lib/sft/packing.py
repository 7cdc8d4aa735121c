"""Packing several SFT samples into fixed-length rows.

Padding every sample of a batch to the longest one wastes compute on pad tokens. Packing
concatenates samples into rows of ``row_len`` tokens instead; to keep them independent:

* **position ids restart at 0** for every sample (RoPE sees each sample as if alone);
* **targets are shifted inside each sample**: the last token of one sample never has to
  predict the first token of the next;
* **the attention mask is block-diagonal and causal**: a token attends to earlier tokens of
  its own sample only (:func:`block_causal_mask`). A plain causal mask lets later samples see
  earlier ones: the logits change (the trap measured in the book).

With all three, each sample's loss is the same packed or alone (to float rounding).
:func:`pack` places samples by *first-fit decreasing* (longest first, into the first row with
room) or in order (``"sequential"``); :func:`pad_batch` is the plain padded batch to compare.

Segment ids mark the samples of a row: ``1, 2, …`` in placement order, ``0`` for padding.

Book: seed-16.
"""
from __future__ import annotations

import dataclasses
import time

import torch

from lib.llm.model import IGNORE_INDEX
from .loss import token_nll


@dataclasses.dataclass
class Packed:
    """A batch of rows (R, L): ``input_ids``, ``targets`` (shifted per sample, -100 elsewhere),
    ``position_ids``, ``segment_ids`` (0 = padding) and ``placement[i] = (row, start, length)``
    of input sample ``i``."""

    input_ids: torch.Tensor
    targets: torch.Tensor
    position_ids: torch.Tensor
    segment_ids: torch.Tensor
    placement: list[tuple[int, int, int]]

    @property
    def n_rows(self) -> int:
        return self.input_ids.shape[0]

    @property
    def padding_fraction(self) -> float:
        """Share of the row slots that hold padding."""
        return padding_fraction(self.segment_ids)

    def attention_mask(self) -> torch.Tensor:
        """The block-diagonal causal mask (R, 1, L, L) of these rows."""
        return block_causal_mask(self.segment_ids)


def _check_samples(samples) -> list[tuple[list[int], list[int]]]:
    """Samples are ``(ids, loss_mask)`` pairs (or bare id lists: every token but the first is
    learned)."""
    if isinstance(samples, (str, bytes)) or not isinstance(samples, (list, tuple)) or not samples:
        raise ValueError("samples must be a non-empty list of (ids, loss_mask) pairs")
    out = []
    for k, s in enumerate(samples):
        if isinstance(s, tuple) and len(s) == 2 and not isinstance(s[0], int):
            ids, m = list(s[0]), list(s[1])
        else:
            ids = list(s)
            m = [0] + [1] * (len(ids) - 1)
        if len(ids) < 2:
            raise ValueError(f"sample {k} has {len(ids)} tokens; need at least 2")
        if len(m) != len(ids) or any(x not in (0, 1) for x in m):
            raise ValueError(f"sample {k}: loss_mask must be 0/1 with one entry per token")
        if not all(isinstance(i, int) or hasattr(i, "__index__") for i in ids):
            raise TypeError(f"sample {k}: ids must be integers")
        out.append(([int(i) for i in ids], [int(x) for x in m]))
    return out


def _sample_targets(ids: list[int], m: list[int]) -> list[int]:
    # position t predicts ids[t + 1] when that token is learned; the last position predicts nothing
    return [ids[t + 1] if m[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)] + [IGNORE_INDEX]


def _fill(rows: list[list[int]], samples, row_len: int, pad_id: int) -> Packed:
    R = len(rows)
    ids = torch.full((R, row_len), int(pad_id), dtype=torch.long)
    tg = torch.full((R, row_len), IGNORE_INDEX, dtype=torch.long)
    pos = torch.zeros((R, row_len), dtype=torch.long)
    seg = torch.zeros((R, row_len), dtype=torch.long)
    placement: list = [None] * len(samples)
    for r, members in enumerate(rows):
        start = 0
        for j, i in enumerate(members):
            s_ids, s_m = samples[i]
            n = len(s_ids)
            ids[r, start:start + n] = torch.tensor(s_ids)
            tg[r, start:start + n] = torch.tensor(_sample_targets(s_ids, s_m))
            pos[r, start:start + n] = torch.arange(n)
            seg[r, start:start + n] = j + 1
            placement[i] = (r, start, n)
            start += n
    return Packed(ids, tg, pos, seg, placement)


def pack(samples, row_len: int, pad_id: int, order: str = "ffd") -> Packed:
    """Pack ``samples`` (``(ids, loss_mask)`` pairs) into rows of ``row_len`` tokens.

    ``order="ffd"``: first-fit decreasing; ``"sequential"``: keep the input order and open a new
    row when the next sample does not fit. A sample longer than ``row_len`` raises ValueError.
    """
    samples = _check_samples(samples)
    if not isinstance(row_len, int) or row_len < 2:
        raise ValueError(f"row_len must be an int >= 2, got {row_len!r}")
    too_long = [k for k, (i, _) in enumerate(samples) if len(i) > row_len]
    if too_long:
        raise ValueError(f"samples {too_long[:5]} are longer than row_len={row_len}; "
                         "truncate or filter them first")
    if order not in ("ffd", "sequential"):
        raise ValueError(f"order must be 'ffd' or 'sequential', got {order!r}")
    rows: list[list[int]] = []
    free: list[int] = []
    if order == "ffd":
        for i in sorted(range(len(samples)), key=lambda k: (-len(samples[k][0]), k)):
            n = len(samples[i][0])
            for r, f in enumerate(free):
                if f >= n:
                    rows[r].append(i)
                    free[r] -= n
                    break
            else:
                rows.append([i])
                free.append(row_len - n)
    else:
        for i, (s, _) in enumerate(samples):
            if not rows or free[-1] < len(s):
                rows.append([])
                free.append(row_len)
            rows[-1].append(i)
            free[-1] -= len(s)
    return _fill(rows, samples, row_len, pad_id)


def pad_batch(samples, pad_id: int, row_len: int | None = None) -> Packed:
    """The plain alternative: one sample per row, padded on the right to the longest sample
    (or ``row_len``)."""
    samples = _check_samples(samples)
    longest = max(len(i) for i, _ in samples)
    row_len = longest if row_len is None else row_len
    if row_len < longest:
        raise ValueError(f"row_len={row_len} is shorter than the longest sample ({longest})")
    return _fill([[i] for i in range(len(samples))], samples, row_len, pad_id)


def block_causal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """Boolean mask (R, 1, L, L): query ``q`` may attend to key ``k`` iff ``k <= q`` and both
    belong to the same sample (segment id > 0). Padding positions attend to themselves only
    (a row with no allowed key would make softmax NaN)."""
    if not isinstance(segment_ids, torch.Tensor) or segment_ids.dim() != 2:
        raise ValueError("segment_ids must be a (R, L) tensor")
    if segment_ids.is_floating_point() or bool((segment_ids < 0).any()):
        raise ValueError("segment_ids must be non-negative integers (0 = padding)")
    L = segment_ids.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    real = (segment_ids > 0)[:, :, None]
    eye = torch.eye(L, dtype=torch.bool, device=segment_ids.device)
    return ((same & real & causal) | eye)[:, None]


def padding_fraction(segment_ids: torch.Tensor) -> float:
    """Share of the positions that are padding (segment id 0)."""
    if not isinstance(segment_ids, torch.Tensor) or segment_ids.numel() == 0:
        raise ValueError("segment_ids must be a non-empty tensor")
    return float((segment_ids == 0).float().mean())


def forward_packed(model, batch: Packed, mask: str = "block") -> torch.Tensor:
    """Logits (R, L, V) of a :class:`Packed` batch on a :class:`lib.llm.model.TinyLM`.

    ``mask="block"``: block-diagonal causal mask and per-sample positions (correct);
    ``"causal"``: plain causal mask over the whole row and per-sample positions (the trap).
    """
    if not isinstance(batch, Packed):
        raise TypeError(f"batch must be a Packed, got {type(batch).__name__}")
    dev = next(model.parameters()).device
    ids, pos = batch.input_ids.to(dev), batch.position_ids.to(dev)
    if mask == "block":
        return model(ids, attention_mask=batch.attention_mask().to(dev), position_ids=pos).logits
    if mask == "causal":
        return model(ids, position_ids=pos).logits
    raise ValueError(f"mask must be 'block' or 'causal', got {mask!r}")


def per_sample_loss(logits: torch.Tensor, batch: Packed) -> torch.Tensor:
    """Mean completion loss of every input sample (in input order), from the logits of
    ``batch``: the same numbers whether the batch was packed or padded."""
    nll = token_nll(logits, batch.targets.to(logits.device))
    keep = batch.targets.to(logits.device) != IGNORE_INDEX
    out = []
    for r, s, n in batch.placement:
        k = keep[r, s:s + n]
        out.append(nll[r, s:s + n].sum() / k.sum().clamp_min(1))
    return torch.stack(out)


def tokens_per_second(model, batch: Packed, repeats: int = 3, train: bool = True) -> dict:
    """Measured throughput of forward (+ backward when ``train``) passes over ``batch``: real
    (non-padding) tokens per second, slots per second and the time per pass (median)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if train:
            from .loss import completion_loss
            logits = forward_packed(model, batch)
            completion_loss(logits, batch.targets.to(logits.device)).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                forward_packed(model, batch)
        times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    real = int((batch.segment_ids > 0).sum())
    return {"seconds": t, "real_tokens_per_s": real / t,
            "slots_per_s": batch.segment_ids.numel() / t, "real_tokens": real,
            "slots": batch.segment_ids.numel()}


__all__ = ["Packed", "pack", "pad_batch", "block_causal_mask", "padding_fraction",
           "forward_packed", "per_sample_loss", "tokens_per_second"]
