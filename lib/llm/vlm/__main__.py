"""Train the shipped VLM: ``python -m lib.llm.vlm [--out data/checkpoints/vlm]``.

Book: seed-7 (multimodal models).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from lib.provenance import git_commit, machine, tree_dirty

from lib.data.shapes import QUESTIONS

from .checkpoint import VLM_DIR, save_vlm
from .data import chance_levels, heldout_set, make_examples
from .model import TinyVLM, default_config
from .train import VLMTrainConfig, evaluate_vlm, train_vlm

#: The recipe of the shipped checkpoint; the command in its sidecar overrides some fields.
RECIPE = {"seed": 0, "n_train": 3000, "n_test": 200, "test_seed": 1, "steps": 1500, "batch_size": 64,
          "lr": 1e-3, "warmup": 50, "vision_layers": 1, "lm_layers": 2, "device": "cpu"}


def main(argv=None) -> int:
    """Train the shipped VLM: ``python -m lib.llm.vlm [--out data/checkpoints/vlm]``."""
    import argparse
    import json

    from lib import seed_everything
    from lib.data.shapes import make_shapes
    from lib.llm.tokenizer import load_tokenizer

    ap = argparse.ArgumentParser(description="Train the book's tiny VLM on generated shape images.")
    ap.add_argument("--out", default=str(VLM_DIR))
    for key in ("steps", "lr", "vision_layers", "lm_layers", "batch_size", "n_train"):
        ap.add_argument("--" + key.replace("_", "-"), type=type(RECIPE[key]), default=RECIPE[key])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args(argv)
    r = dict(RECIPE, **{k: getattr(args, k) for k in ("steps", "lr", "vision_layers", "lm_layers", "batch_size",
                                                      "n_train", "device")})
    seed_everything(r["seed"])
    tok = load_tokenizer()
    train = make_shapes(r["n_train"], seed=r["seed"])
    ex = make_examples(train, tok, per_image=len(QUESTIONS), seed=r["seed"])
    model = TinyVLM(default_config(tok.vocab_size, r["vision_layers"], r["lm_layers"])).to(r["device"])
    cfg = VLMTrainConfig(steps=r["steps"], batch_size=r["batch_size"], lr=r["lr"], warmup=r["warmup"],
                         seed=r["seed"])
    run = train_vlm(model, train, ex, tok.image_id, cfg, progress=True)
    loss, lr = run.log.series("loss"), run.log.series("lr")
    test, ext = heldout_set(tok, r["n_test"], r["test_seed"])
    model = model.cpu()   # the recorded metric is measured on the CPU, where the tests reload it
    res = evaluate_vlm(model, test, ext, tok)
    meta = {
        "what": "tiny VLM (ViT patches -> projector -> TinyLM) trained on lib.data.shapes images",
        "command": (f"python -m lib.llm.vlm --steps {r['steps']} --lr {r['lr']} --vision-layers {r['vision_layers']} "
                    f"--lm-layers {r['lm_layers']} --batch-size {r['batch_size']} --n-train {r['n_train']} "
                    f"--device {r['device']}"),
        "recipe": r,
        "tokenizer": "data/tokenizer/tokenizer.book.json",
        "parameters": model.num_parameters(),
        "train_seconds": round(run.log.wall_time, 1),
        "train_config": dataclasses.asdict(cfg),
        "commit": git_commit(),
        "tree_dirty": tree_dirty(),
        "machine": machine(),
        "heldout_accuracy": round(res["accuracy"], 4),
        "heldout_per_kind": {k: round(v, 4) for k, v in res["per_kind"].items()},
        "chance_per_kind": {k: round(v, 4) for k, v in chance_levels(train).items()},
        "loss_every_10_steps": [round(float(np.mean(loss[i:i + 10])), 4) for i in range(0, r["steps"], 10)],
        "lr_every_10_steps": [float(f"{lr[i]:.6g}") for i in range(0, r["steps"], 10)],
    }
    save_vlm(model, args.out, meta)
    print(json.dumps({k: v for k, v in meta.items() if "every" not in k}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
