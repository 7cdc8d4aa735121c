"""Position signals of attention: ALiBi biases, RoPE's frequencies and angles, and RoPE's
long-context extensions (position interpolation, NTK-aware base scaling).

* :func:`alibi_slopes` — one slope per head, a geometric sequence (Press et al., 2022): with
  ``n`` a power of two, ``m_h = 2^(-8h/n)`` for ``h = 1..n``; otherwise the ``c`` slopes of the
  largest power of two ``c < n``, then every other slope of the ``2c`` sequence for the rest.
* :func:`alibi_bias` — ``bias[h, i, j] = -m_h * (i - j)``: added to query ``i``'s score of key
  ``j <= i`` (the causal mask removes ``j > i``); a linear penalty on distance, no embedding.
* :func:`rope_inv_freq`, :func:`rope_wavelengths`, :func:`rope_angles` — RoPE rotates pair ``i``
  of a query/key at position ``p`` by ``p * theta_i`` with ``theta_i = base^(-2i/d)``; the
  wavelength of pair ``i`` is ``2 pi / theta_i``. The tables equal
  :func:`lib.llm.model.rope_cos_sin`'s (the model's RoPE is not written twice).
* :func:`rope_scores` — ``q_m . k_n`` for every pair of positions: depends only on ``m - n``.
* :func:`ntk_theta`, :func:`rope_override`, :func:`context_losses`, :func:`position_losses` — run a RoPE
  :class:`~lib.llm.variants.VariantLM` at longer contexts than it was trained on, with plain
  RoPE, position interpolation (positions / s, Chen et al., 2023) or an NTK-aware larger base.

Book: seed-103, seed-120, seed-121.
"""
from __future__ import annotations

import contextlib
import math

import torch

from .model import apply_rope, rope_cos_sin


def _check_pos_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (float64, shape (n_heads,)), largest first."""
    _check_pos_int("n_heads", n_heads)

    def geometric(n):  # 2^(-8/n), 2^(-16/n), ..., 2^(-8): ratio 2^(-8/n)
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    c = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(c)
    if c < n_heads:
        slopes += geometric(2 * c)[0::2][: n_heads - c]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(n_heads: int, seq_len: int, dtype=torch.float32) -> torch.Tensor:
    """Bias (n_heads, seq_len, seq_len): ``-m_h * (i - j)`` for query ``i`` and key ``j``.

    Only the causal part ``j <= i`` is used (there it is ``<= 0``, 0 on the diagonal).
    """
    _check_pos_int("seq_len", seq_len)
    m = alibi_slopes(n_heads)
    pos = torch.arange(seq_len, dtype=torch.float64)
    dist = pos[:, None] - pos[None, :]
    return (-m[:, None, None] * dist[None]).to(dtype)


def alibi_probs(scores: torch.Tensor, n_heads: int | None = None) -> torch.Tensor:
    """Causal softmax of ``scores`` (..., H, T, T) plus the ALiBi bias: attention probabilities."""
    if not isinstance(scores, torch.Tensor) or scores.dim() < 3 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must be (..., H, T, T), got {getattr(scores, 'shape', scores)}")
    H, T = scores.shape[-3], scores.shape[-1]
    if n_heads is not None and n_heads != H:
        raise ValueError(f"scores have {H} heads, expected {n_heads}")
    b = alibi_bias(H, T, scores.dtype).to(scores.device)
    causal = torch.ones(T, T, dtype=torch.bool, device=scores.device).tril()
    return (scores + b).masked_fill(~causal, float("-inf")).softmax(-1)


# ----------------------------------------------------------------------------- RoPE analysis


def _check_rope(head_dim, base):
    _check_pos_int("head_dim", head_dim)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE (it rotates pairs), got {head_dim}")
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 1:
        raise ValueError(f"base must be a number > 1, got {base!r}")


def rope_inv_freq(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """``theta_i = base^(-2i/head_dim)`` for ``i = 0 .. head_dim/2 - 1`` (float64), radians per
    position of coordinate pair ``i``."""
    _check_rope(head_dim, base)
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    return float(base) ** (-2.0 * i / head_dim)


def rope_wavelengths(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Positions per full turn of each pair: ``2 pi / theta_i`` (from 2 pi up to ~2 pi base)."""
    return 2 * math.pi / rope_inv_freq(head_dim, base)


def rope_angles(positions, head_dim: int, base: float = 10000.0, scale: float = 1.0) -> torch.Tensor:
    """Rotation angle (radians) of pair ``i`` at each position: ``(p / scale) * theta_i``,
    shape (len(positions), head_dim/2)."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    p = torch.as_tensor(positions, dtype=torch.float64)
    if p.dim() != 1:
        raise ValueError(f"positions must be 1-D, got shape {tuple(p.shape)}")
    return (p / scale)[:, None] * rope_inv_freq(head_dim, base)[None]


def rope_scores(q: torch.Tensor, k: torch.Tensor, n_positions: int, base: float = 10000.0) -> torch.Tensor:
    """``S[m, n] = rope(q, m) . rope(k, n)`` for one query and one key vector (head_dim,) placed
    at every pair of positions ``0 .. n_positions-1``, using the model's :func:`apply_rope`."""
    if q.dim() != 1 or k.shape != q.shape:
        raise ValueError(f"q and k must be vectors of equal length, got {tuple(q.shape)}, {tuple(k.shape)}")
    _check_rope(q.numel(), base)
    _check_pos_int("n_positions", n_positions)
    cos, sin = rope_cos_sin(torch.arange(n_positions), q.numel(), base)
    cos, sin = cos.to(q.dtype), sin.to(q.dtype)
    qr = apply_rope(q.expand(n_positions, -1), cos, sin)
    kr = apply_rope(k.expand(n_positions, -1), cos, sin)
    return qr @ kr.T


def ntk_theta(base: float, scale: float, head_dim: int) -> float:
    """NTK-aware base for a context ``scale`` times longer: ``base * scale^(d/(d-2))``.

    Chosen so that the lowest frequency is interpolated by exactly ``scale`` (as position
    interpolation would) while the highest is left unchanged."""
    _check_rope(head_dim, base)
    if not scale >= 1:
        raise ValueError(f"scale must be >= 1, got {scale!r}")
    if head_dim < 4:
        raise ValueError(f"head_dim must be >= 4 for NTK scaling, got {head_dim}")
    return float(base) * float(scale) ** (head_dim / (head_dim - 2))


@contextlib.contextmanager
def rope_override(model, *, theta: float | None = None, scale: float | None = None):
    """Temporarily run a RoPE :class:`~lib.llm.variants.VariantLM` with another base ``theta``
    and/or position ``scale`` (positions divided by it); restores the config afterwards."""
    from .variants import VariantLM

    if not isinstance(model, VariantLM) or model.config.position != "rope":
        raise ValueError("rope_override needs a VariantLM with position='rope'")
    old = model.config
    changes = {}
    if theta is not None:
        changes["rope_theta"] = float(theta)
    if scale is not None:
        changes["rope_scale"] = float(scale)
    model.config = old.replace(**changes)
    try:
        yield model
    finally:
        model.config = old


EXTENSIONS = ("plain", "pi", "ntk")


def _extension(model, method: str, length: int, train_len: int | None):
    """The context manager that runs ``model`` at ``length`` with ``method``."""
    if method not in EXTENSIONS:
        raise ValueError(f"method must be one of {EXTENSIONS}, got {method!r}")
    if method == "plain":
        return contextlib.nullcontext()
    if train_len is None or isinstance(train_len, bool) or not isinstance(train_len, int) or train_len < 1:
        raise ValueError(f"method {method!r} needs train_len (the training context length), got {train_len!r}")
    s = max(1.0, length / train_len)
    if s == 1.0:
        return contextlib.nullcontext()
    if method == "pi":
        return rope_override(model, scale=s)
    c = model.config
    dims = c.rope_dims if c.attention == "mla" else c.head_dim
    return rope_override(model, theta=ntk_theta(c.rope_theta, s, dims))


@torch.no_grad()
def position_losses(model, tokens: torch.Tensor, seq_len: int, *, method: str = "plain",
                    train_len: int | None = None, max_windows: int = 16) -> torch.Tensor:
    """Mean next-token loss at each position ``0 .. seq_len-1`` (float64, (seq_len,)) over the
    first ``max_windows`` non-overlapping windows of ``tokens``, with a context ``method`` as
    in :func:`context_losses`: where in a long window a model starts to fail."""
    from .train import eval_windows

    _check_pos_int("seq_len", seq_len)
    w = eval_windows(tokens, seq_len, max_windows).to(model.device)
    was = model.training
    model.eval()
    with _extension(model, method, seq_len, train_len):
        logits = model(w[:, :-1]).logits
    model.train(was)
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), w[:, 1:], reduction="none")
    return ce.double().mean(0)


def context_losses(model, val_tokens: torch.Tensor, lengths, *, train_len: int | None = None,
                   method: str = "plain", n_tokens: int = 4096) -> list[float]:
    """Validation loss (nats/token) at each context length ``L`` of ``lengths``, always on the
    same text: the first ``n_tokens`` predictions of ``val_tokens``, cut into ``n_tokens // L``
    windows of ``L`` tokens (so only the context changes when ``L`` divides ``n_tokens``).

    ``method``: ``"plain"`` (the model as trained), ``"pi"`` (RoPE positions multiplied by
    ``train_len / L`` at length ``L > train_len``) or ``"ntk"`` (RoPE base
    :func:`ntk_theta` with scale ``L / train_len``). The loss is averaged over *all* positions
    of each window, so positions beyond ``train_len`` weigh ``1 - train_len / L``.
    """
    from .train import evaluate_loss

    _check_pos_int("n_tokens", n_tokens)
    out = []
    for L in lengths:
        _check_pos_int("length", int(L))
        if int(L) > n_tokens:
            raise ValueError(f"length {L} > n_tokens {n_tokens}: no whole window to evaluate")
        with _extension(model, method, int(L), train_len):
            out.append(evaluate_loss(model, val_tokens, int(L), max_windows=n_tokens // int(L)))
    return out


__all__ = ["alibi_slopes", "alibi_bias", "alibi_probs", "rope_inv_freq", "rope_wavelengths", "rope_angles",
           "rope_scores", "ntk_theta", "rope_override", "EXTENSIONS", "context_losses", "position_losses"]
