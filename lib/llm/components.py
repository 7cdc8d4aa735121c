"""Feed-forward variants compared: parameter parity of ReLU, GELU and SwiGLU FFNs, and what
SwiGLU's gate does inside the book's trained model.

Book: seed-113, seed-118.

The three FFNs come from :mod:`lib.llm.variants` (``make_ffn``; SwiGLU itself is
:class:`lib.llm.model.SwiGLU`). A two-matrix MLP of hidden width ``4 d`` has ``8 d^2``
weights; SwiGLU has three matrices, so a hidden width of ``8 d / 3`` gives it the same count
(exactly when ``d`` is a multiple of 3) (Shazeer 2020).

* :func:`ffn_parameter_counts` — the weights of each FFN at one width, counted from the
  modules.
* :func:`swiglu_activations` — for every block of a :class:`~lib.llm.model.TinyLM` whose FFN
  is a SwiGLU: the gate ``silu(W_g x)``, the value ``W_u x`` and their product, captured
  with forward hooks on real text.
* :func:`gate_ablation_loss` — the model's next-token loss when every gate unit is frozen
  to a constant (its mean over the tokens seen): what the *input-dependent* gate is worth.
* :func:`make_sweep` / ``python -m lib.llm.components`` — the shipped seed sweeps (too slow
  for a notebook): ReLU / GELU / SwiGLU FFNs at equal parameters (seed-118), and pre- vs
  post-norm stacks of growing depth trained without warm-up (seed-113). Each run is a
  :func:`lib.llm.variants.train_variant`; the seed 0 FFN models are saved with
  :func:`lib.llm.variants.save_variants` so that a test can reload them and recompute their
  recorded validation loss.

    python -m lib.llm.components --out data/checkpoints/component-sweep
"""
from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

from lib.llm.model import SwiGLU


def ffn_parameter_counts(d_model: int, ffns=("relu", "gelu", "swiglu")) -> dict[str, dict]:
    """``{ffn: {"d_ff": hidden width, "params": weights}}`` for FFNs of width ``d_model`` built
    by :func:`lib.llm.variants.make_ffn` with the equal-parameter hidden widths."""
    from lib.llm.variants import VariantConfig, make_ffn

    out = {}
    for name in ffns:
        cfg = VariantConfig(d_model=d_model, n_heads=1, position="none", ffn=name)
        module = make_ffn(cfg)
        out[name] = {"d_ff": cfg.d_ff, "params": sum(p.numel() for p in module.parameters())}
    return out


def _swiglu_blocks(model) -> list[SwiGLU]:
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError("model must have `layers` (a TinyLM or VariantLM)")
    mlps = [getattr(b, "mlp", None) for b in layers]
    if not mlps or not all(isinstance(m, SwiGLU) for m in mlps):
        raise TypeError("every block's `mlp` must be a SwiGLU (a dense TinyLM / swiglu VariantLM)")
    return mlps


def _check_ids(ids) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError("ids must be a (B, T) integer tensor of token ids")


@torch.no_grad()
def swiglu_activations(model, ids: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Per block: ``gate`` = silu(W_g x), ``up`` = W_u x and ``hidden`` = gate * up, each
    (B*T, d_ff), for the FFN inputs ``x`` the model computes on ``ids`` (B, T)."""
    _check_ids(ids)
    mlps = _swiglu_blocks(model)
    captured: list[dict] = [dict() for _ in mlps]

    def hook(i):
        def fn(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1])
            gate, up = F.silu(module.gate_proj(x)), module.up_proj(x)
            captured[i].update(gate=gate, up=up, hidden=gate * up)
        return fn

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(mlps)]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return captured


@contextlib.contextmanager
def _frozen_gates(mlps, means):
    def hook(i):
        def fn(module, inputs, output):
            return module.down_proj(means[i] * module.up_proj(inputs[0]))
        return fn

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(mlps)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def gate_ablation_loss(model, ids: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """``(loss, loss_frozen)``: mean next-token cross-entropy of ``model`` on ``ids`` against
    ``targets`` (B, T), and the same with every SwiGLU gate unit replaced by its mean over
    these tokens (so the FFN becomes ``down(m * up(x))``, a gate that no longer looks at x)."""
    _check_ids(ids)
    if targets.shape != ids.shape:
        raise ValueError(f"targets must have the shape of ids {tuple(ids.shape)}, got "
                         f"{tuple(targets.shape)}")
    mlps = _swiglu_blocks(model)

    def loss_of():
        logits = model(ids).logits
        return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)))

    means = [a["gate"].mean(0) for a in swiglu_activations(model, ids)]
    base = loss_of()
    with _frozen_gates(mlps, means):
        frozen = loss_of()
    return base, frozen


def gate_open_share(gate: torch.Tensor, threshold: float = 0.1) -> float:
    """Share of gate values ``silu(W_g x)`` with magnitude above ``threshold`` (an "open" gate)."""
    if not isinstance(gate, torch.Tensor) or gate.numel() == 0:
        raise ValueError("gate must be a non-empty tensor")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    return float((gate.abs() > threshold).float().mean())


# ----------------------------------------------------------------------------- shipped sweeps

SWEEP_NAME = "component-sweep"
SWEEP_SEEDS = (0, 1, 2, 3)
#: FFN comparison: width 48 (a multiple of 3: exact parity), 2 blocks, the variants' defaults.
FFN_MODEL = dict(d_model=48, n_layers=2, n_heads=2, max_seq_len=64)
FFN_TRAIN = dict(steps=300, batch_size=8, seq_len=64, lr=3e-3, warmup_steps=20, eval_windows=32)
#: Placement comparison: width 32, depths below, a high learning rate and no warm-up.
PLACEMENT_DEPTHS = (2, 6, 12)
PLACEMENT_MODEL = dict(d_model=32, n_heads=2, max_seq_len=32)
PLACEMENT_TRAIN = dict(steps=120, batch_size=8, seq_len=32, lr=1e-2, warmup_steps=0,
                       eval_windows=16)
#: Validation windows of the reload check (seq_len of FFN_TRAIN).
CHECK_WINDOWS = 8


def check_loss(model, val_tokens: torch.Tensor) -> float:
    """Validation loss on the first :data:`CHECK_WINDOWS` windows (what the reload test
    recomputes)."""
    from lib.llm.train import evaluate_loss

    return evaluate_loss(model, val_tokens, FFN_TRAIN["seq_len"], max_windows=CHECK_WINDOWS)


def make_sweep(out=None, seeds=SWEEP_SEEDS, progress: bool = False,
               command: str | None = None) -> dict:
    """Train the FFN and placement comparisons for every seed; write ``<out>/`` with the
    seed 0 FFN models and ``meta.json`` (per run: validation loss, the loss every 10 steps,
    the final gradient norm; the FFNs' parameter counts and reload-check losses)."""
    from lib.llm.checkpoint import CHECKPOINT_DIR
    from lib.llm.pretrain import corpus_token_ids
    from lib.llm.variants import VariantConfig, VariantTrainConfig, save_variants, train_variant
    from lib.provenance import git_commit, machine, tree_dirty

    folder = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / SWEEP_NAME
    torch.set_num_threads(1)
    train_tokens, val_tokens = corpus_token_ids("train"), corpus_token_ids("val")
    t0 = time.perf_counter()
    runs_out, saved, checks = [], {}, {}

    def one(kind, label, mcfg, tcfg, seed):
        tc = VariantTrainConfig(model=VariantConfig(**mcfg), seed=seed, **tcfg)
        run = train_variant(tc, train_tokens, val_tokens, progress=progress)
        loss = run.log.series("loss")
        runs_out.append({"kind": kind, "variant": label, "seed": seed,
                         "val_loss": run.val_loss, "loss_every_10": [round(float(v), 5)
                                                                     for v in loss[::10]],
                         "final_train_loss": float(loss[-1])})
        return run

    for seed in seeds:
        for ffn in ("relu", "gelu", "swiglu"):
            run = one("ffn", ffn, dict(FFN_MODEL, ffn=ffn), FFN_TRAIN, seed)
            if seed == seeds[0]:
                saved[ffn] = run.model.eval()
                checks[ffn] = check_loss(run.model, val_tokens)
        for placement in ("pre", "post"):
            for depth in PLACEMENT_DEPTHS:
                one("placement", f"{placement}-{depth}",
                    dict(PLACEMENT_MODEL, placement=placement, n_layers=depth),
                    PLACEMENT_TRAIN, seed)
    meta = {"name": SWEEP_NAME, "command": command or "python -m lib.llm.components",
            "commit": git_commit(), "tree_dirty": tree_dirty(), "machine": machine(),
            "seeds": list(seeds), "ffn_model": FFN_MODEL, "ffn_train": FFN_TRAIN,
            "placement_model": PLACEMENT_MODEL, "placement_train": PLACEMENT_TRAIN,
            "placement_depths": list(PLACEMENT_DEPTHS),
            "ffn_parameters": ffn_parameter_counts(FFN_MODEL["d_model"]),
            "check": {"windows": CHECK_WINDOWS, "seq_len": FFN_TRAIN["seq_len"],
                      "losses": checks},
            "metrics": {"runs": runs_out}, "time_s": time.perf_counter() - t0}
    save_variants(saved, folder, meta)
    return meta


def load_sweep(folder=None) -> dict:
    """The ``meta.json`` of the shipped sweep (default ``data/checkpoints/component-sweep``)."""
    from lib.llm.checkpoint import CHECKPOINT_DIR

    folder = pathlib.Path(folder) if folder is not None else CHECKPOINT_DIR / SWEEP_NAME
    path = folder / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"no sweep at {folder}: run `python -m lib.llm.components`")
    return json.loads(path.read_text(encoding="utf-8"))


def sweep_table(meta: dict, kind: str) -> dict[str, list[float]]:
    """``{variant: [val_loss per seed]}`` for ``kind`` "ffn" or "placement" of a sweep."""
    if kind not in ("ffn", "placement"):
        raise ValueError(f"kind must be 'ffn' or 'placement', got {kind!r}")
    out: dict[str, list[float]] = {}
    for r in meta["metrics"]["runs"]:
        if r["kind"] == kind:
            out.setdefault(r["variant"], []).append(r["val_loss"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.llm.components",
                                 description="Make Part 10's FFN and norm-placement sweep.")
    ap.add_argument("--out", default=None, help="folder (default data/checkpoints/component-sweep)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SWEEP_SEEDS))
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args(argv)
    args = argv if argv is not None else sys.argv[1:]
    meta = make_sweep(a.out, tuple(a.seeds), a.progress,
                      command=" ".join(["python -m lib.llm.components", *args]))
    for kind in ("ffn", "placement"):
        for k, v in sweep_table(meta, kind).items():
            print(f"{kind:9s} {k:8s} " + " ".join(f"{x:.3f}" for x in v))
    print(f"total {meta['time_s']:.0f} s")
    return 0


__all__ = ["ffn_parameter_counts", "gate_ablation_loss", "gate_open_share", "swiglu_activations",
           "make_sweep", "load_sweep", "sweep_table", "check_loss", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
