#!/usr/bin/env python3
"""Benchmark: how reliably GRPO (lib.align.grpo) raises held-out accuracy on the fact-chaining task, over seeds.

The setting of the GRPO section (chapters/07-policy-optimization/grpo.ipynb): 60 steps, 16 questions x 8 answers,
lr 1e-4, clip 0.2, beta 0.04, variant "std", trained on the task's ``rl_train`` split and evaluated on its 200
``held_out`` questions (lib.align.tasks.evaluate_task: greedy, and 8 samples per question at temperature 1).
Each seed starts once from the cold start (``tiny-lm-arith-sft``) and once from the pretrained ``tiny-lm``.
Prints per run: held-out greedy and sampled accuracy before -> after, the paired z statistic of the sampled gain
over questions, the training-batch reward (first / last 10 steps), the share of groups without signal, and time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_grpo.py --seeds 0 1 2 3 --out bench/out/grpo.json

The per-seed results of the cold start (with per-question hits), which the GRPO notebook's self-check reads:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_grpo.py --starts tiny-lm-arith-sft --seeds 0 1 2 3 \
        --out bench/grpo_seeds.json
"""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.align.grpo import GRPOConfig, grpo_train  # noqa: E402
from lib.align.sft import COLD_START  # noqa: E402
from lib.align.tasks import chain_arithmetic_task, encode_prompts, evaluate_task, paired_gain, reward  # noqa: E402
from lib.llm.checkpoint import load_model  # noqa: E402
from lib.llm.tokenizer import load_tokenizer  # noqa: E402


def run(start: str, seed: int, steps: int, tok, task, before: dict) -> dict:
    model = copy.deepcopy(load_model(start))
    cfg = GRPOConfig(steps=steps, prompts_per_step=16, group_size=8, max_new_tokens=32, lr=1e-4, beta=0.04,
                     seed=seed)
    decode = lambda ids: tok.decode(ids, skip_special_tokens=True)  # noqa: E731
    t0 = time.perf_counter()
    log = grpo_train(model, encode_prompts(tok, task.rl_train), lambda i, c: reward(task.rl_train[i], decode(c)),
                     tok.eos_id, cfg).log
    rewards = log.series("reward")
    wall = time.perf_counter() - t0
    after = evaluate_task(model, tok, task, return_hits=True)
    _, z = paired_gain(before["hits"], after["hits"])
    return {"start": start, "seed": seed,
            "greedy_before": before["held_out"]["greedy"], "greedy_after": after["held_out"]["greedy"],
            "sampled_before": before["held_out"]["sampled"], "sampled_after": after["held_out"]["sampled"],
            "paired_z": z, "facts_after": after["facts"]["greedy"],
            "reward_first10": float(np.mean(rewards[:10])), "reward_last10": float(np.mean(rewards[-10:])),
            "no_signal_groups": float(np.mean(log.series("frac_zero_groups"))), "max_kl": float(max(log.series("kl"))),
            "grpo_seconds": wall,
            # per-question correct samples (of 8) on the held-out questions: the pooled paired test
            "hits_before": before["hits"].sum(1).astype(int).tolist(),
            "hits_after": after["hits"].sum(1).astype(int).tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--starts", nargs="+", default=[COLD_START, "tiny-lm"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tok, task = load_tokenizer(), chain_arithmetic_task()
    rows = []
    for start in args.starts:
        before = evaluate_task(load_model(start), tok, task, return_hits=True)
        for seed in args.seeds:
            r = run(start, seed, args.steps, tok, task, before)
            rows.append(r)
            if args.out:  # written after every run, so that a long bench keeps what it finished
                pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                pathlib.Path(args.out).write_text(json.dumps(rows, indent=1))
            print(f"{start:18s} seed {seed}: greedy {r['greedy_before']:.3f} -> {r['greedy_after']:.3f}   sampled "
                  f"{r['sampled_before']:.3f} -> {r['sampled_after']:.3f} (paired z {r['paired_z']:+.2f})   batch reward "
                  f"{r['reward_first10']:.3f} -> {r['reward_last10']:.3f}   no-signal groups {r['no_signal_groups']:.2f}   "
                  f"facts {r['facts_after']:.3f}   {r['grpo_seconds']:.0f} s", flush=True)
    for start in args.starts:
        rs = [r for r in rows if r["start"] == start]
        gains = np.array([r["sampled_after"] - r["sampled_before"] for r in rs])
        print(f"{start}: sampled gain {gains.mean():+.3f} +- {gains.std(ddof=1) if len(gains) > 1 else 0:.3f} over "
              f"{len(rs)} seeds (min {gains.min():+.3f}); significant (z > 1.96) in "
              f"{sum(r['paired_z'] > 1.96 for r in rs)}/{len(rs)}")
        if len(rs) > 1:  # pooled paired test: per-question gain averaged over seeds, questions as units
            before = np.array(rs[0]["hits_before"], dtype=float)
            after = np.mean([r["hits_after"] for r in rs], axis=0)
            d = (after - before) / 8
            print(f"{start}: pooled over {len(rs)} seeds: sampled gain {d.mean():+.3f}, paired z "
                  f"{d.mean() / (d.std(ddof=1) / np.sqrt(len(d))):+.2f} over {len(d)} questions")
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
