"""The chapter's comparison: every fine-tuning method on the same task, measured the same way.

Book: seed-9.

:func:`run_method` fine-tunes one method (:func:`lib.peft.methods.make_method`) on the chat-format
fact task (:mod:`lib.sft.finetune_task`) with the book's SFT loop (:func:`lib.align.sft.sft_train`)
and records: trainable parameters (and the closed-form count), bytes held after a real AdamW step
(weights, gradients, optimizer state), seconds per training step, held-out and training accuracy,
and whether the base model's weights were left untouched.

``python -m lib.peft.compare`` runs every method over three seeds and writes
``data/checkpoints/peft-comparison/results.json`` (one row per method and seed, plus the frozen
base) and ``meta.json`` (command, commit, machine, recipe, summary).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

from ..provenance import git_commit, machine
from .methods import METHODS, count_trainable, make_method, memory_after_step, trainable_formula

NAME = "peft-comparison"

#: Peak learning rate of each method (few trainable parameters need larger steps).
LEARNING_RATES = {
    "full": 1e-3,
    "partial": 3e-3,
    "lora": 1e-2,
    "qlora": 1e-2,
    "adapter": 1e-2,
    "prefix": 3e-2,
    "prompt": 3e-2,
}
#: Training steps and batch size shared by every method.
STEPS, BATCH_SIZE = 300, 16
#: Prefix and prompt tuning start from the keys/values (embeddings) of this text.
INIT_TEXT = "Answer the question:"


def _init_ids(tokenizer, n: int) -> list[int]:
    ids = tokenizer.encode(INIT_TEXT)
    return (ids * n)[:n]


def run_method(
    method: str,
    base,
    tokenizer,
    task,
    seed: int = 0,
    steps: int = STEPS,
    batch_size: int = BATCH_SIZE,
    lr: float | None = None,
    progress: bool = False,
    return_model: bool = False,
    **method_kw,
) -> dict:
    """Fine-tune ``method`` on ``task`` from ``base`` (not modified) and measure it (see the
    module docstring).

    Returns a dict with ``method, seed, trainable, formula, memory`` (bytes: weights, grads,
    optimizer, total), ``time_per_step_s``, ``held_out``, ``train`` (accuracies), ``final_loss``,
    ``base_untouched``, ``lr``, ``steps``; with ``return_model`` also ``model`` and ``history``.
    """
    from lib.align.sft import SFTConfig, sft_batch, sft_loss, sft_train
    from lib.sft import finetune_task as ft

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lr = LEARNING_RATES[method] if lr is None else lr
    torch.manual_seed(seed)  # exactly ``seed`` (a notebook's SEED already holds its shift)
    before = {k: v.detach().clone() for k, v in base.state_dict().items()}
    model = make_method(method, base, **method_kw)
    if method in ("prefix", "prompt"):
        model.init_from_text(_init_ids(tokenizer, model.n_virtual))
    examples = ft.examples(tokenizer, task, "train")
    ids, targets, _ = sft_batch(examples[:batch_size], tokenizer.pad_id)
    memory = memory_after_step(
        model, lambda m: sft_loss(m, ids.to(m.device), targets.to(m.device)), lr
    )
    cfg = SFTConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup_steps=max(1, steps // 10), seed=seed
    )
    hist = sft_train(model, examples, tokenizer.pad_id, cfg, progress=progress)
    after = base.state_dict()
    untouched = all(torch.equal(before[k], after[k]) for k in before)
    row = {
        "method": method,
        "seed": seed,
        "lr": lr,
        "steps": steps,
        "batch_size": batch_size,
        "trainable": count_trainable(model),
        "formula": trainable_formula(method, base.config, **method_kw),
        "memory": memory,
        "time_per_step_s": hist["time_s"] / steps,
        "final_loss": hist["loss"][-1],
        "held_out": ft.accuracy(model, tokenizer, task, "held_out"),
        "train": ft.accuracy(model, tokenizer, task, "train"),
        "base_untouched": untouched,
    }
    if return_model:
        row["model"], row["history"] = model, hist
    return row


def summarize(rows: list[dict]) -> dict:
    """Per method: mean, min and max held-out accuracy over seeds, mean time per step, trainable
    parameters and bytes held (the same for every seed)."""
    out = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        acc = [r["held_out"] for r in rs]
        out[m] = {
            "held_out_mean": sum(acc) / len(acc),
            "held_out_min": min(acc),
            "held_out_max": max(acc),
            "time_per_step_s": sum(r.get("time_per_step_s", 0.0) for r in rs) / len(rs),
            "trainable": rs[0].get("trainable", 0),
            "memory_total": rs[0].get("memory", {}).get("total", 0),
            "seeds": [r["seed"] for r in rs],
        }
    return out


def run_comparison(
    seeds=(0, 1, 2),
    methods=METHODS,
    steps: int = STEPS,
    out=None,
    command: str | None = None,
    progress: bool = False,
) -> dict:
    """Every method × seed (plus the frozen base) -> ``results.json`` and ``meta.json`` in ``out``
    (default ``data/checkpoints/peft-comparison``). Returns the results dict."""
    from lib.llm.checkpoint import CHECKPOINT_DIR, load_model
    from lib.llm.tokenizer import load_tokenizer
    from lib.sft import finetune_task as ft

    tok = load_tokenizer()
    base = load_model("tiny-lm")
    task = ft.fact_chat_task()
    t0 = time.perf_counter()
    rows = [
        {
            "method": "base",
            "seed": s,
            "trainable": 0,
            "held_out": ft.accuracy(base, tok, task),
            "train": ft.accuracy(base, tok, task, "train"),
        }
        for s in seeds[:1]
    ]
    for m in methods:
        for s in seeds:
            r = run_method(m, base, tok, task, seed=s, steps=steps, progress=progress)
            rows.append(r)
            print(
                f"{m:8s} seed {s}: held-out {r['held_out']:.3f} train {r['train']:.3f} "
                f"{r['time_per_step_s'] * 1000:.0f} ms/step",
                flush=True,
            )
    total = time.perf_counter() - t0
    results = {"task": task.describe(), "rows": rows, "summary": summarize(rows)}
    meta = {
        "name": NAME,
        "description": "Fine-tuning methods compared on the chat-format fact task "
        "(lib.sft.finetune_task) from tiny-lm: trainable parameters, bytes held after one AdamW "
        "step, time per step, held-out accuracy (greedy, verifier "
        "lib.sft.finetune_task.is_correct).",
        "command": command or "python -m lib.peft.compare",
        "commit": git_commit(),
        "seeds": list(seeds),
        "methods": list(methods),
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "learning_rates": {m: LEARNING_RATES[m] for m in methods},
        "init_text": INIT_TEXT,
        "total_time_s": total,
        "machine": machine(),
        "metrics": {
            m: {"held_out_mean": v["held_out_mean"]} for m, v in results["summary"].items()
        },
    }
    folder = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return results


def load_results(path=None) -> tuple[dict, dict]:
    """``(results, meta)`` of the shipped comparison."""
    from lib.llm.checkpoint import CHECKPOINT_DIR

    folder = pathlib.Path(path) if path is not None else CHECKPOINT_DIR / NAME
    if not (folder / "results.json").is_file():
        raise FileNotFoundError(f"no results.json in {folder}; run python -m lib.peft.compare")
    return (
        json.loads((folder / "results.json").read_text(encoding="utf-8")),
        json.loads((folder / "meta.json").read_text(encoding="utf-8")),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lib.peft.compare", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--steps", type=int, default=STEPS)
    args = ap.parse_args(argv)
    cmd = "python -m lib.peft.compare " + " ".join(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)
    res = run_comparison(tuple(args.seeds), tuple(args.methods), args.steps, args.out, cmd.strip())
    for m, v in res["summary"].items():
        print(f"{m:8s} {v['held_out_mean']:.3f} [{v['held_out_min']:.3f}, {v['held_out_max']:.3f}]")
    return 0


__all__ = [
    "NAME",
    "LEARNING_RATES",
    "STEPS",
    "BATCH_SIZE",
    "INIT_TEXT",
    "run_method",
    "summarize",
    "run_comparison",
    "load_results",
    "main",
]


if __name__ == "__main__":
    sys.exit(main())
