"""Where training memory goes: forward and backward, gradient accumulation, recomputation.

Three small, exact tools for Part 10's memory sections:

* **Forward and backward by hand** (seed-106): :func:`mlp_forward` runs a small tanh network
  and keeps the activations its backward pass needs (the *cache*); :func:`mlp_backward`
  applies the chain rule layer by layer, from the loss back to the first weight matrix. Its
  gradients equal autograd's (:func:`autograd_gradients`). :class:`SavedTensorLog` lists the
  tensors autograd keeps for the backward pass (via
  ``torch.autograd.graph.saved_tensors_hooks``) and counts their bytes.
* **Gradient accumulation** (seed-107): :func:`accumulate_gradients` sums the gradients of
  ``k`` micro-batches. With ``normalise="tokens"`` each micro-batch's summed token loss is
  divided by the token count of *all* micro-batches (:func:`micro_batch_loss`), which equals
  one step on the big batch; ``normalise="micro"`` (the mean per micro-batch, divided by
  ``k``) is the common mistake: it weights a token of a short micro-batch more.
* **Gradient checkpointing / recomputation** (seed-108, seed-109): :func:`checkpointed`
  wraps chosen sub-modules of a :class:`~lib.llm.model.TinyLM` in
  ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``; their internal activations
  are dropped after the forward and recomputed during the backward. :func:`recompute_plan`
  names the modules of a strategy (``"none"``, the first ``k`` blocks, ``"selective"``: only
  the feed-forward sub-layers, ``"full"``: every block). :func:`activation_bytes` measures the
  bytes held for the backward pass (saved tensors plus the inputs a checkpoint keeps).

Book: seed-106, seed-107, seed-108, seed-109.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint

IGNORE_INDEX = -100


# ----------------------------------------------------------------------------- seed-106
def init_mlp(sizes: Sequence[int], generator: torch.Generator | None = None,
             dtype=torch.float64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Weights ``(W, b)`` of a fully connected network with layer widths ``sizes``.

    ``sizes = [d_in, h_1, ..., d_out]`` gives ``len(sizes) - 1`` layers; ``W_l`` has shape
    ``(sizes[l+1], sizes[l])`` (as ``nn.Linear``), normal with std ``1/sqrt(fan_in)``.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or isinstance(s, bool) or s < 1
                             for s in sizes):
        raise ValueError(f"sizes must be at least two positive ints, got {sizes}")
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        W = torch.randn(d_out, d_in, generator=generator, dtype=dtype) / d_in ** 0.5
        b = 0.1 * torch.randn(d_out, generator=generator, dtype=dtype)
        params.append((W, b))
    return params


def _check_mlp_inputs(params, x, y=None):
    if not params or any(len(p) != 2 for p in params):
        raise ValueError("params must be a non-empty list of (W, b) pairs")
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point (N, d_in) tensor, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if x.shape[1] != params[0][0].shape[1]:
        raise ValueError(f"x has {x.shape[1]} features, the first layer expects "
                         f"{params[0][0].shape[1]}")
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
            raise ValueError(f"y must be an integer (N,) tensor of classes, N = {x.shape[0]}")
        n_cls = params[-1][0].shape[0]
        if int(y.min()) < 0 or int(y.max()) >= n_cls:
            raise ValueError(f"classes in y must lie in [0, {n_cls - 1}]")


def mlp_forward(params, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits of ``tanh`` hidden layers then a linear output, and the cache for backward.

    ``h_0 = x``, ``h_l = tanh(h_{l-1} W_l^T + b_l)`` for the hidden layers, logits
    ``= h_{L-1} W_L^T + b_L``. The cache holds ``[h_0, ..., h_{L-1}]``: each layer's input
    (needed for ``dW``) which, for ``l >= 1``, is also the tanh output (needed for tanh').
    """
    _check_mlp_inputs(params, x)
    cache = [x]
    h = x
    for W, b in params[:-1]:
        h = torch.tanh(h @ W.T + b)
        cache.append(h)
    W, b = params[-1]
    return h @ W.T + b, cache


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor):
    """Mean cross-entropy of ``logits`` (N, C) against classes ``y`` (N,) and its gradient
    with respect to the logits: ``(softmax(logits) - onehot(y)) / N``."""
    logp = logits - logits.logsumexp(-1, keepdim=True)
    n = logits.shape[0]
    loss = -logp[torch.arange(n), y].mean()
    dlogits = logp.exp()
    dlogits[torch.arange(n), y] -= 1.0
    return loss, dlogits / n


def mlp_backward(params, cache: list[torch.Tensor], dlogits: torch.Tensor):
    """The chain rule by hand: gradients ``[(dW_1, db_1), ..., (dW_L, db_L)]`` from ``dlogits``.

    For a linear layer ``z = h W^T + b``: ``dW = dz^T h``, ``db = sum_n dz``, ``dh = dz W``.
    Through ``h = tanh(z)``: ``dz = dh * (1 - h^2)`` (the cached output is enough).
    """
    if len(cache) != len(params):
        raise ValueError(f"cache has {len(cache)} tensors, expected one per layer "
                         f"({len(params)})")
    grads = [None] * len(params)
    dz = dlogits
    for layer in range(len(params) - 1, -1, -1):
        W, _ = params[layer]
        h_in = cache[layer]
        grads[layer] = (dz.T @ h_in, dz.sum(0))
        if layer > 0:
            dh = dz @ W
            dz = dh * (1.0 - h_in * h_in)  # h_in = tanh(z) of the layer below
    return grads


def manual_gradients(params, x: torch.Tensor, y: torch.Tensor):
    """Loss and gradients of the cross-entropy of :func:`mlp_forward`, by hand."""
    _check_mlp_inputs(params, x, y)
    logits, cache = mlp_forward(params, x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    return loss, mlp_backward(params, cache, dlogits)


def autograd_gradients(params, x: torch.Tensor, y: torch.Tensor, log: "SavedTensorLog" = None):
    """The same loss and gradients computed by autograd (``F.cross_entropy``).

    With ``log`` (a :class:`SavedTensorLog`), the tensors autograd saves are recorded.
    """
    _check_mlp_inputs(params, x, y)
    leaves = [(W.detach().clone().requires_grad_(), b.detach().clone().requires_grad_())
              for W, b in params]
    ctx = log if log is not None else contextlib.nullcontext()
    if log is not None:
        log.ignore([t for pair in leaves for t in pair])
    with ctx:
        h = x
        for W, b in leaves[:-1]:
            h = torch.tanh(F.linear(h, W, b))
        loss = F.cross_entropy(F.linear(h, *leaves[-1]), y)
    flat = torch.autograd.grad(loss, [t for pair in leaves for t in pair])
    return loss.detach(), [(flat[2 * i], flat[2 * i + 1]) for i in range(len(leaves))]


def graph_nodes(tensor: torch.Tensor) -> list[str]:
    """Names of the autograd graph's nodes behind ``tensor``, from the loss back to the
    leaves (breadth first, each node once)."""
    if not isinstance(tensor, torch.Tensor) or tensor.grad_fn is None:
        raise ValueError("expected a tensor with a grad_fn (the output of a differentiable "
                         "computation)")
    seen, order, queue = set(), [], [tensor.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        order.append(type(node).__name__)
        queue.extend(n for n, _ in node.next_functions)
    return order


# ----------------------------------------------------------------------------- accounting
@dataclasses.dataclass
class SavedTensor:
    """One tensor that autograd (or a checkpoint) keeps for the backward pass."""

    shape: tuple
    dtype: torch.dtype
    nbytes: int          # bytes of the tensor's own elements
    storage: int         # data pointer of its storage (shared by views)
    storage_nbytes: int  # bytes of the whole storage it keeps alive
    kind: str            # "activation", "weight" (a parameter / buffer) or "checkpoint input"


class SavedTensorLog:
    """Context manager recording every tensor saved for backward while it is active.

    ``with SavedTensorLog(model) as log: loss = model(x).logits.sum()`` then
    ``log.activation_bytes`` counts the bytes of distinct storages kept alive for the
    backward pass, excluding the model's own parameters and buffers (those exist anyway).
    Views share their storage and are counted once. Modules wrapped by :func:`checkpointed`
    report the inputs they keep (``kind="checkpoint input"``); their internals are not saved.
    (torch 2.13's non-reentrant checkpoint also passes those inputs through the hooks; the
    explicit record keeps the count independent of that detail, and a storage counts once.)
    """

    _active: list["SavedTensorLog"] = []

    def __init__(self, model: torch.nn.Module | None = None):
        self.entries: list[SavedTensor] = []
        self._ignored: set[int] = set()
        if model is not None:
            if not isinstance(model, torch.nn.Module):
                raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
            self.ignore(list(model.parameters()) + list(model.buffers()))
        self._hooks = None

    def ignore(self, tensors) -> None:
        """Treat the storages of ``tensors`` as weights (not counted as activations)."""
        for t in tensors:
            self._ignored.add(t.untyped_storage().data_ptr())

    def _record(self, t: torch.Tensor, kind: str | None = None) -> None:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if kind is None:
            kind = "weight" if ptr in self._ignored else "activation"
        self.entries.append(SavedTensor(tuple(t.shape), t.dtype, t.numel() * t.element_size(),
                                        ptr, st.nbytes(), kind))

    def _pack(self, t):
        self._record(t)
        return t

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        SavedTensorLog._active.append(self)
        return self

    def __exit__(self, *exc):
        SavedTensorLog._active.remove(self)
        self._hooks.__exit__(*exc)
        return False

    @property
    def activation_bytes(self) -> int:
        """Bytes of the distinct non-weight storages kept for backward."""
        sizes = {e.storage: e.storage_nbytes for e in self.entries if e.kind != "weight"}
        return sum(sizes.values())

    def by_kind(self) -> dict[str, int]:
        """Number of saved-tensor records per kind."""
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.kind] = out.get(e.kind, 0) + 1
        return out


# ----------------------------------------------------------------------------- seed-107
def _check_lm_batch(x, y):
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.is_floating_point():
            raise ValueError(f"{name} must be an integer (batch, seq_len) tensor, got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def count_tokens(targets: torch.Tensor) -> int:
    """Number of scored positions: targets that are not ``IGNORE_INDEX`` (-100)."""
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point():
        raise ValueError("targets must be an integer tensor")
    return int((targets != IGNORE_INDEX).sum())


def micro_batch_loss(logits: torch.Tensor, targets: torch.Tensor, total_tokens: int
                     ) -> torch.Tensor:
    """One micro-batch's share of the big batch's mean token loss.

    ``sum over scored positions of -log p(target) / total_tokens``, where ``total_tokens``
    counts the scored positions of *all* micro-batches of the step. Summed over the
    micro-batches it equals the mean loss of the concatenated batch, so do its gradients.
    logits (..., V), targets (...) with ``IGNORE_INDEX`` for unscored positions.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError("logits must be a floating-point tensor (..., vocab)")
    if not isinstance(targets, torch.Tensor) or targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have shape {tuple(logits.shape[:-1])}, got "
                         f"{getattr(targets, 'shape', type(targets).__name__)}")
    if isinstance(total_tokens, bool) or not isinstance(total_tokens, int) or total_tokens < 1:
        raise ValueError(f"total_tokens must be a positive int, got {total_tokens!r}")
    if count_tokens(targets) > total_tokens:
        raise ValueError(f"this micro-batch alone scores {count_tokens(targets)} tokens, more "
                         f"than total_tokens = {total_tokens}")
    summed = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(),
                             ignore_index=IGNORE_INDEX, reduction="sum")
    return summed / total_tokens


def accumulate_gradients(model: torch.nn.Module, micro_batches, normalise: str = "tokens"
                         ) -> float:
    """Zero the gradients, then add those of every micro-batch ``(x, y)``; return the loss.

    ``normalise="tokens"``: each micro-batch contributes ``sum of token losses / N_total``
    (:func:`micro_batch_loss`), so the accumulated gradient is the big batch's.
    ``normalise="micro"``: each contributes ``its own mean / k`` (wrong when the micro-batches
    score different numbers of tokens). The model's ``.grad`` holds the result; the caller
    steps the optimizer once.
    """
    if normalise not in ("tokens", "micro"):
        raise ValueError(f"normalise must be 'tokens' or 'micro', got {normalise!r}")
    micro_batches = list(micro_batches)
    if not micro_batches:
        raise ValueError("need at least one micro-batch")
    for x, y in micro_batches:
        _check_lm_batch(x, y)
    counts = [count_tokens(y) for _, y in micro_batches]
    if min(counts) < 1:
        raise ValueError(f"every micro-batch must score at least one token, got {counts}")
    total, k = sum(counts), len(micro_batches)
    model.zero_grad(set_to_none=True)
    loss_value = 0.0
    for (x, y), n in zip(micro_batches, counts):
        logits = model(x).logits
        if normalise == "tokens":
            loss = micro_batch_loss(logits, y, total)
        else:
            loss = micro_batch_loss(logits, y, n) / k
        loss.backward()
        loss_value += float(loss.detach())
    return loss_value


def big_batch_gradients(model: torch.nn.Module, micro_batches) -> float:
    """Zero the gradients and backpropagate the mean token loss of all micro-batches
    concatenated into one batch (same sequence length); return the loss."""
    micro_batches = list(micro_batches)
    if not micro_batches:
        raise ValueError("need at least one micro-batch")
    for x, y in micro_batches:
        _check_lm_batch(x, y)
    x = torch.cat([m[0] for m in micro_batches])
    y = torch.cat([m[1] for m in micro_batches])
    model.zero_grad(set_to_none=True)
    loss = micro_batch_loss(model(x).logits, y, count_tokens(y))
    loss.backward()
    return float(loss.detach())


def grads_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the parameters' gradients by name (zeros where a gradient is None)."""
    return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
            for n, p in model.named_parameters()}


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute elementwise difference between two name -> tensor dicts."""
    if a.keys() != b.keys():
        raise ValueError("the two dicts name different tensors")
    return max(float((a[k].detach() - b[k].detach()).abs().max()) for k in a)


# ----------------------------------------------------------------------------- seed-108, 109
def _checkpointed_forward(module: torch.nn.Module, original: Callable):
    def forward(*args, **kwargs):
        for log in SavedTensorLog._active:  # what the checkpoint keeps: its tensor inputs
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, torch.Tensor):
                    log._record(a, "weight" if a.untyped_storage().data_ptr() in log._ignored
                                else "checkpoint input")
        if not torch.is_grad_enabled():
            return original(*args, **kwargs)
        return torch_checkpoint.checkpoint(original, *args, use_reentrant=False, **kwargs)

    return forward


@contextlib.contextmanager
def checkpointed(modules: Sequence[torch.nn.Module]):
    """Inside the ``with`` block, each of ``modules`` runs under
    ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``: its inputs are kept, its
    internal activations are recomputed in the backward pass. Outputs and gradients are
    unchanged; the modules' forwards are restored on exit."""
    modules = list(modules)
    for m in modules:
        if not isinstance(m, torch.nn.Module):
            raise TypeError(f"expected nn.Modules, got {type(m).__name__}")
        if "forward" in m.__dict__:
            raise ValueError(f"{type(m).__name__} is already checkpointed (or has a patched "
                             "forward)")
    if len({id(m) for m in modules}) != len(modules):
        raise ValueError("a module is listed twice")
    try:
        for m in modules:
            m.forward = _checkpointed_forward(m, type(m).forward.__get__(m))
        yield modules
    finally:
        for m in modules:
            m.__dict__.pop("forward", None)


STRATEGIES = ("none", "blocks", "selective", "full")


def recompute_plan(model, strategy: str, k: int | None = None) -> list[torch.nn.Module]:
    """The modules of ``model`` (a TinyLM) to checkpoint under ``strategy``.

    ``"none"``: nothing; ``"blocks"``: the first ``k`` decoder blocks; ``"selective"``: the
    feed-forward sub-layer (``mlp``) of every block, which holds the widest activations;
    ``"full"``: every block (full recomputation: only each block's input is kept).
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError("model must have decoder blocks in .layers (a TinyLM)")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    n = len(layers)
    if strategy == "blocks":
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
            raise ValueError(f"k must be an int in [0, {n}] for strategy 'blocks', got {k!r}")
        return list(layers[:k])
    if k is not None:
        raise ValueError(f"k is only used with strategy 'blocks', got k={k!r} for {strategy!r}")
    if strategy == "none":
        return []
    if strategy == "selective":
        return [block.mlp for block in layers]
    return list(layers)


def lm_loss_and_grads(model, x: torch.Tensor, y: torch.Tensor, modules=()):
    """Mean token loss of ``(x, y)``, gradients by name and the activation bytes held for
    backward, with ``modules`` checkpointed."""
    _check_lm_batch(x, y)
    model.zero_grad(set_to_none=True)
    with checkpointed(modules), SavedTensorLog(model) as log:
        loss = micro_batch_loss(model(x).logits, y, count_tokens(y))
    loss.backward()
    return float(loss.detach()), grads_of(model), log.activation_bytes


def activation_bytes(model, x: torch.Tensor, y: torch.Tensor, modules=()) -> int:
    """Bytes of activations held for the backward pass of one training step on ``(x, y)``
    with ``modules`` checkpointed (the graph is freed without a backward)."""
    _check_lm_batch(x, y)
    with checkpointed(modules), SavedTensorLog(model) as log:
        loss = micro_batch_loss(model(x).logits, y, count_tokens(y))
    del loss
    return log.activation_bytes


__all__ = ["IGNORE_INDEX", "init_mlp", "mlp_forward", "softmax_cross_entropy", "mlp_backward",
           "manual_gradients", "autograd_gradients", "graph_nodes", "SavedTensor",
           "SavedTensorLog", "count_tokens", "micro_batch_loss", "accumulate_gradients",
           "big_batch_gradients", "grads_of", "max_abs_difference", "checkpointed",
           "STRATEGIES", "recompute_plan", "lm_loss_and_grads", "activation_bytes"]
