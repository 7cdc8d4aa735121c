"""Measured micro-demos for the layers of the optimisation map, on the tiny LM.

Each function runs one technique against its baseline on the reader's machine and returns
both the *timings* (shown in the book, never asserted: they depend on the machine and its
load) and what must hold whatever the machine (identical tokens, outputs within a tolerance):

* **service layer — batching** (:func:`decode_throughput`): tokens generated per second
  when ``b`` prompts are decoded together, for several ``b``: one decoding step costs little
  more for 16 rows than for one, so throughput grows with the batch until the arithmetic
  saturates the core;
* **model layer — KV cache** (:func:`cache_vs_recompute`): greedy decoding with the cache
  and with full recomputation give the same tokens; the cache avoids recomputing the prefix;
* **framework layer — mixed precision** (:func:`autocast_step`): one training step (forward
  and backward) in float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``; the
  loss moves by bf16 rounding (8 significant bits);
* **compiler layer — torch.compile** (:func:`compile_block`): one decoder block compiled by
  TorchInductor: the first call's time (tracing, code generation, a C++ compiler run), then
  steady-state calls against eager. On a model this small the compiled block may well lose.

Timings are the best of ``repeats`` runs after ``warmup`` runs (the least disturbed by other
work on the machine), from :func:`best_of`.

Book: seed-102.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn()`` after ``warmup`` calls."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _check_ids(ids):
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError(f"prompt ids must be an integer (batch, seq_len) tensor, got "
                         f"{getattr(ids, 'shape', type(ids).__name__)}")


@torch.no_grad()
def decode_throughput(model, prompts: torch.Tensor, new_tokens: int,
                      batch_sizes: Sequence[int], repeats: int = 2) -> dict[int, float]:
    """Generated tokens per second (greedy, KV cache) when the first ``b`` rows of ``prompts``
    are decoded together, for each ``b`` in ``batch_sizes``."""
    from lib.llm.generate import generate

    _check_ids(prompts)
    sizes = list(batch_sizes)
    if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or not
                        1 <= b <= prompts.shape[0] for b in sizes):
        raise ValueError(f"batch sizes must be ints in [1, {prompts.shape[0]}] (the prompt "
                         f"rows), got {sizes}")
    out = {}
    for b in sizes:
        sec = best_of(lambda: generate(model, prompts[:b], new_tokens), repeats, warmup=1)
        out[b] = b * new_tokens / sec
    return out


@torch.no_grad()
def cache_vs_recompute(model, prompts: torch.Tensor, new_tokens: int, repeats: int = 2) -> dict:
    """Greedy decoding with and without the KV cache: ``{"cache_s", "recompute_s",
    "same_tokens"}`` (seconds for the whole batch, and whether the tokens agree)."""
    from lib.llm.generate import generate

    _check_ids(prompts)
    with_cache = generate(model, prompts, new_tokens, use_cache=True)
    without = generate(model, prompts, new_tokens, use_cache=False)
    return {
        "cache_s": best_of(lambda: generate(model, prompts, new_tokens, use_cache=True),
                           repeats, warmup=0),
        "recompute_s": best_of(lambda: generate(model, prompts, new_tokens, use_cache=False),
                               repeats, warmup=0),
        "same_tokens": bool(torch.equal(with_cache, without)),
    }


def autocast_step(model, x: torch.Tensor, y: torch.Tensor, repeats: int = 3) -> dict:
    """One forward + backward in float32 and under bfloat16 autocast (CPU).

    Returns ``{"fp32_loss", "bf16_loss", "fp32_s", "bf16_s", "logits_max_diff",
    "grad_rel_diff"}``: the two losses, the best step times, the largest logit difference and
    the relative difference of the whole gradient vector (norm of the difference / norm).
    """
    _check_ids(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(f"targets must have the shape of the inputs {tuple(x.shape)}")

    def step(bf16: bool):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, targets=y)
        out.loss.backward()
        return out

    res = {}
    grads = {}
    logits = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        out = step(bf16)
        res[f"{name}_loss"] = float(out.loss.detach())
        logits[name] = out.logits.detach().float()
        grads[name] = torch.cat([p.grad.reshape(-1).float() for p in model.parameters()
                                 if p.grad is not None])
        res[f"{name}_s"] = best_of(lambda bf16=bf16: step(bf16), repeats, warmup=0)
    model.zero_grad(set_to_none=True)
    res["logits_max_diff"] = float((logits["fp32"] - logits["bf16"]).abs().max())
    res["grad_rel_diff"] = float((grads["fp32"] - grads["bf16"]).norm() / grads["fp32"].norm())
    return res


@torch.no_grad()
def compile_block(block: torch.nn.Module, args: tuple, repeats: int = 20,
                  trust_cpu_isa: bool = True) -> dict:
    """Compile ``block`` with ``torch.compile`` (TorchInductor) and time it against eager.

    Returns ``{"compile_s", "eager_s", "compiled_s", "max_diff"}``: the first compiled call
    (tracing + code generation + compiling), the best steady-state call of each, and the
    largest output difference. Compile threads are set to 1 so the work is done in this
    process. With ``trust_cpu_isa`` Inductor uses the vector instructions the CPU reports
    without first test-compiling a program for each (``cpp.vec_isa_ok``): on a fresh
    machine those probes cost more compiler time than the block itself; if compiling then
    fails (a compiler without those instructions), the block is compiled again with the
    probes on.
    """
    import torch._dynamo
    import torch._inductor.config as inductor_config

    if not isinstance(block, torch.nn.Module):
        raise TypeError(f"block must be an nn.Module, got {type(block).__name__}")
    if not isinstance(args, tuple) or not args:
        raise ValueError("args must be a non-empty tuple of the block's inputs")
    inductor_config.compile_threads = 1
    previous = inductor_config.cpp.vec_isa_ok
    t0 = time.perf_counter()
    try:
        for trust in ((True, False) if trust_cpu_isa else (False,)):
            inductor_config.cpp.vec_isa_ok = True if trust else previous
            torch._dynamo.reset()
            compiled = torch.compile(block)
            try:
                y_compiled = compiled(*args)
                break
            except Exception:  # pragma: no cover - a compiler lacking the CPU's instructions
                if not trust:
                    raise
    finally:
        inductor_config.cpp.vec_isa_ok = previous
    compile_s = time.perf_counter() - t0
    y_eager = block(*args)
    return {
        "compile_s": compile_s,
        "eager_s": best_of(lambda: block(*args), repeats, warmup=2),
        "compiled_s": best_of(lambda: compiled(*args), repeats, warmup=2),
        "max_diff": float((y_compiled - y_eager).abs().max()),
    }


__all__ = ["best_of", "decode_throughput", "cache_vs_recompute", "autocast_step",
           "compile_block"]
