"""Pretrain the book's tiny LM on the book corpus and ship it as a checkpoint.

    python -m lib.llm.pretrain                      # dense base model  -> data/checkpoints/tiny-lm
    python -m lib.llm.pretrain --preset tiny-lm-moe # MoE sibling       -> data/checkpoints/tiny-lm-moe
    python -m lib.llm.pretrain --steps 20 --out /tmp/x   # a quick smoke run

The corpus is ``lib.data.build_corpus(seed=0)`` tokenized with the book's tokenizer, documents
joined with ``<|eos|>``. The checkpoint's ``meta.json`` records the configs, seed, metrics
(validation loss on the whole validation split, recomputed by ``tests/test_checkpoints.py``),
the loss / LR curves, the tokenizer's SHA-256 and the exact command.

Book: seed-8.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import platform
import sys
import time

import torch

from .checkpoint import CHECKPOINT_DIR, file_sha256, save_checkpoint
from .config import LMConfig
from .model import TinyLM, active_parameters_per_token
from .train import TrainConfig, evaluate_loss, train_lm

#: The sizes of the shipped models (vocab_size is filled from the tokenizer).
PRESETS = {
    "tiny-lm": dict(
        model=dict(d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, max_seq_len=256, tie_embeddings=True),
        train=dict(steps=360, batch_size=32, seq_len=128, lr=6e-3, warmup_steps=30, min_lr_ratio=0.1,
                   weight_decay=0.1, grad_clip=1.0, eval_every=50, eval_windows=64, seed=0),
    ),
    "tiny-lm-moe": dict(
        model=dict(d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, max_seq_len=256, tie_embeddings=True,
                   n_experts=4, top_k=2, d_ff=192, moe_aux_weight=0.01),
        train=dict(steps=300, batch_size=32, seq_len=128, lr=6e-3, warmup_steps=30, min_lr_ratio=0.1,
                   weight_decay=0.1, grad_clip=1.0, eval_every=50, eval_windows=64, seed=0),
    ),
}
#: Seed of the corpus the models are trained on.
CORPUS_SEED = 0


def corpus_token_ids(split: str = "train", tokenizer=None, corpus=None) -> torch.Tensor:
    """The corpus split as one 1-D ``torch.long`` tensor: every document followed by ``<|eos|>``."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    from lib.data import build_corpus
    from lib.llm.tokenizer import load_tokenizer

    tok = tokenizer if tokenizer is not None else load_tokenizer()
    c = corpus if corpus is not None else build_corpus(seed=CORPUS_SEED)
    docs = c.train if split == "train" else c.val
    ids: list[int] = []
    for d in docs:
        ids.extend(tok.encode(d))
        ids.append(tok.eos_id)
    return torch.tensor(ids, dtype=torch.long)


def tokenizer_sha256() -> str:
    from lib import DATA_DIR

    return file_sha256(DATA_DIR / "tokenizer" / "tokenizer.book.json")


def _subsample(xs, every):
    return [x for i, x in enumerate(xs) if i % every == 0 or i == len(xs) - 1]


def pretrain(preset: str = "tiny-lm", out=None, steps: int | None = None, seed: int | None = None,
             progress: bool = True, command: str | None = None, lr: float | None = None) -> dict:
    """Train the preset's model on the corpus, save it to ``out`` (default data/checkpoints/<preset>);
    return the meta dict written to ``meta.json``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    from lib import seed_everything
    from lib.data import build_corpus
    from lib.llm.tokenizer import load_tokenizer

    p = PRESETS[preset]
    tc_kw = dict(p["train"], progress=progress)
    if steps is not None:
        tc_kw["steps"] = steps
        tc_kw["warmup_steps"] = min(tc_kw["warmup_steps"], max(1, steps // 10))
    if seed is not None:
        tc_kw["seed"] = seed
    if lr is not None:
        tc_kw["lr"] = lr
    tc = TrainConfig(**tc_kw)
    tok = load_tokenizer()
    corpus = build_corpus(seed=CORPUS_SEED)
    train_ids = corpus_token_ids("train", tok, corpus)
    val_ids = corpus_token_ids("val", tok, corpus)
    seed_everything(tc.seed)
    cfg = LMConfig(vocab_size=tok.vocab_size, **p["model"])
    model = TinyLM(cfg)
    t0 = time.perf_counter()
    hist = train_lm(model, train_ids, val_ids, tc, log=None if progress else print)
    val_loss = evaluate_loss(model, val_ids, tc.seq_len)
    every = max(1, tc.steps // 200)
    meta = {
        "name": preset,
        "description": "The book's tiny Llama-style LM pretrained on lib.data's corpus (Part 2).",
        "seed": tc.seed,
        "train_config": dataclasses.asdict(tc),
        "corpus": {"builder": "lib.data.build_corpus", "seed": CORPUS_SEED, "train_tokens": int(train_ids.numel()),
                   "val_tokens": int(val_ids.numel()), "eos_between_documents": True},
        "tokenizer": "data/tokenizer/tokenizer.book.json",
        "tokenizer_sha256": tokenizer_sha256(),
        "metrics": {
            "val_loss": val_loss,
            "val_loss_note": "mean next-token cross-entropy (nats) over all non-overlapping seq_len windows "
                             "of the validation split, lib.llm.train.evaluate_loss(model, val_ids, seq_len)",
            "val_perplexity": float(torch.tensor(val_loss).exp()),
            "final_train_loss": hist["loss"][-1],
            "tokens_seen": tc.steps * tc.batch_size * tc.seq_len,
            "epochs": tc.steps * tc.batch_size * tc.seq_len / train_ids.numel(),
            "train_time_s": hist["time_s"],
            "tokens_per_s": hist["tokens_per_s"],
            "total_time_s": time.perf_counter() - t0,
            "parameters": model.num_parameters(),
            "active_parameters_per_token": active_parameters_per_token(model),
        },
        "history": {
            "step": _subsample(hist["step"], every),
            "loss": [round(x, 5) for x in _subsample(hist["loss"], every)],
            "lr": [float(f"{x:.6g}") for x in _subsample(hist["lr"], every)],
            "aux_loss": ([round(x, 5) for x in _subsample(hist["aux_loss"], every)]
                         if cfg.is_moe else None),
            "eval_step": hist["eval_step"],
            "val_loss": [round(x, 5) for x in hist["val_loss"]],
        },
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine()},
        "command": command or "python -m lib.llm.pretrain --preset " + preset,
    }
    folder = pathlib.Path(out) if out is not None else CHECKPOINT_DIR / preset
    save_checkpoint(model, folder, meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.llm.pretrain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny-lm", choices=sorted(PRESETS))
    ap.add_argument("--out", default=None, help="checkpoint folder (default data/checkpoints/<preset>)")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None, help="override the preset's peak learning rate")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cmd = "python -m lib.llm.pretrain " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = pretrain(args.preset, args.out, args.steps, args.seed, progress=not args.no_progress,
                    command=cmd.strip(), lr=args.lr)
    m = meta["metrics"]
    print(f"{meta['name']}: val_loss {m['val_loss']:.4f} (ppl {m['val_perplexity']:.2f}), "
          f"{m['parameters']:,} parameters, {m['tokens_per_s']:.0f} tokens/s, {m['train_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
