#!/usr/bin/env python3
"""Multi-seed runs behind the self-checks of Part 7's A2C, TRPO and PPO sections.

The exact settings of ``chapters/07-policy-optimization/actor-critic-gae.ipynb`` (A2C, 60k steps) and
``trpo-ppo.ipynb`` (vanilla PG, TRPO, PPO-Penalty, PPO-Clip, 60k steps each) on CartPole-v1, run for
several seeds. Seed ``s`` is the run the notebook makes with ``BOOK_SEED_SHIFT=s`` on one thread, on the
machine that wrote the file (another CPU is another draw). The notebooks read the shipped JSON and assert
their multi-seed claims (counts of seeds reaching a threshold, means with confidence intervals) on it; the
live run of each notebook is one more draw, checked against this distribution.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_policy_seeds.py --seeds 0 1 2 3 4 5 6 7 \
        --out bench/policy_seeds.json

Per run it records the evaluation curve (greedy policy, 10 episodes every 5k steps), its best and the mean
of its last four evaluations, the number of gradient steps and the wall time; for TRPO also the accepted
share of updates, the largest accepted KL and the share of accepted steps using over half the KL budget.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.provenance import cpu_model, git_commit  # noqa: E402
from lib.rl.actor_critic import A2CConfig, train_a2c  # noqa: E402
from lib.rl.ppo import PPOConfig, train_ppo  # noqa: E402
from lib.rl.trpo import TRPOConfig, train_trpo  # noqa: E402

STEPS, EVAL_EVERY, DELTA = 60_000, 5_000, 0.01
COMMON = dict(total_steps=STEPS, anneal=False, eval_every=EVAL_EVERY)
# name -> (notebook, training call); the calls are the notebooks' own lines
METHODS = {
    "A2C": ("actor-critic-gae", lambda s: train_a2c(
        A2CConfig(total_steps=STEPS, eval_every=EVAL_EVERY, eval_episodes=10, seed=s)).log),
    "vanilla PG": ("trpo-ppo", lambda s: train_ppo(PPOConfig(n_epochs=1, **COMMON, seed=s)).log),
    "TRPO": ("trpo-ppo", lambda s: train_trpo(
        TRPOConfig(total_steps=STEPS, max_kl=DELTA, eval_every=EVAL_EVERY, seed=s)).log),
    "PPO-Penalty": ("trpo-ppo", lambda s: train_ppo(
        PPOConfig(variant="penalty", n_epochs=10, **COMMON, seed=s)).log),
    "PPO-Clip": ("trpo-ppo", lambda s: train_ppo(
        PPOConfig(variant="clip", n_epochs=10, **COMMON, seed=s)).log),
}


def summarise(name: str, log) -> dict:
    out = {"eval_steps": [int(x) for x in log.eval_steps],
           "eval_returns": [round(float(x), 2) for x in log.eval_returns],
           "best": float(max(log.eval_returns)), "last4": float(np.mean(log.eval_returns[-4:])),
           "grad_steps": int(sum(u.get("n_grad_steps", 1) for u in log.updates)),
           "wall_time_s": round(float(log.wall_time), 1)}
    if name == "TRPO":
        kls = np.array([u["kl"] for u in log.updates])
        acc = np.array([u["accepted"] for u in log.updates], bool)
        out.update(accepted_share=float(acc.mean()), max_kl=float(kls.max()),
                   active_share=float(np.mean(kls[acc] > 0.5 * DELTA)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "policy_seeds.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {"command": "OMP_NUM_THREADS=1 python bench/bench_policy_seeds.py --seeds "
                      + " ".join(map(str, args.seeds)) + " --out bench/" + args.out.name,
           "commit": git_commit(), "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, "
           f"torch {torch.__version__}, 1 thread",
           "env": "CartPole-v1", "total_steps": STEPS, "eval_every": EVAL_EVERY, "eval_episodes": 10,
           "seeds": list(args.seeds),
           "notebooks": {m: METHODS[m][0] for m in args.methods}, "runs": {m: {} for m in args.methods}}
    for seed in args.seeds:
        for m in args.methods:
            r = summarise(m, METHODS[m][1](seed))
            res["runs"][m][str(seed)] = r
            args.out.write_text(json.dumps(res, indent=1) + "\n")
            print(f"seed {seed} {m:12s} best {r['best']:5.0f} last4 {r['last4']:5.0f} "
                  f"{r['wall_time_s']:5.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
