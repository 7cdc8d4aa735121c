#!/usr/bin/env python3
"""Benchmark: the book's DQN (lib.rl.dqn) against Stable-Baselines3's DQN on CartPole-v1.

Both use the RL-Zoo hyperparameters for CartPole-v1 (256x256 MLP, lr 2.3e-3, batch 64, buffer 100k,
learning_starts 1000, 128 gradient steps every 256 env steps, target refresh every 256 env steps
(zoo: target_update_interval=10, which SB3 applies between training bursts), epsilon 1 -> 0.04 over
8,000 steps (zoo: exploration_fraction 0.16 of 50k)). Each library trains for --steps environment
steps per seed; both are evaluated with the same evaluator (greedy policy, 10 episodes, every
--eval-every steps, time excluded from the training wall time). Prints, per seed and in summary:
steps to reach a mean evaluation return of 475, the final evaluation return (20 episodes), and the
wall time per 100k steps of each library with their ratio. Writes the JSON record (bench/benchmeta.py)
to --out (default bench/results/dqn_cartpole.json) after every run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_dqn.py --seeds 0 1 2 3 4

The shipped checkpoint (data/checkpoints/dqn-cartpole) is made by lib, not here:
``OMP_NUM_THREADS=1 python -m lib.rl.dqn --make-checkpoint data/checkpoints/dqn-cartpole``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.rl.dqn import DQNConfig, evaluate_q_policy, train_dqn  # noqa: E402
from lib.rl.rollout import evaluate  # noqa: E402

from benchmeta import Record, loadavg, print_run  # noqa: E402

THRESHOLD = 475.0
ZOO = dict(net_arch=[256, 256], learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
           learning_starts=1000, gamma=0.99, train_freq=256, gradient_steps=128,
           target_update="every 256 env steps", exploration="1 -> 0.04 over 8000 steps")
LIBRARIES = {"lib": {"description": "lib.rl.dqn.train_dqn (DQNConfig defaults, no early stop)",
                     "config": ZOO},
             "sb3": {"description": "stable_baselines3.DQN, RL-Zoo CartPole-v1 settings "
                                    "(target_update_interval=10 training calls)", "config": ZOO}}


def run_lib(seed: int, steps: int, eval_every: int) -> dict:
    cfg = DQNConfig(seed=seed, total_steps=steps, stop_return=None, eval_every=eval_every, eval_episodes=10)
    r = train_dqn(cfg)
    final = evaluate_q_policy(r.q_net, "CartPole-v1", 20, seed=99_000 + seed)["returns"]
    return {"curve": list(zip(r.log.eval_steps, r.log.eval_returns)), "final": final,
            "train_seconds": r.log.train_time, "eval_seconds": r.log.eval_time}


def run_sb3(seed: int, steps: int, eval_every: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class EvalCB(BaseCallback):
        def __init__(self):
            super().__init__()
            self.steps, self.returns, self.eval_time = [], [], 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                t0 = time.perf_counter()
                pol = lambda o: self.model.predict(o, deterministic=True)[0]  # noqa: E731
                rets = evaluate(pol, "CartPole-v1", 10, seed=10_000 + self.num_timesteps)
                self.steps.append(self.num_timesteps)
                self.returns.append(float(rets.mean()))
                self.eval_time += time.perf_counter() - t0
            return True

    env = gym.make("CartPole-v1")
    model = DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=8000 / steps, exploration_final_eps=0.04,
                policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu", verbose=0)
    cb = EvalCB()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cb)
    total = time.perf_counter() - t0
    pol = lambda o: model.predict(o, deterministic=True)[0]  # noqa: E731
    final = evaluate(pol, "CartPole-v1", 20, seed=99_000 + seed)
    return {"curve": list(zip(cb.steps, cb.returns)), "final": final,
            "train_seconds": total - cb.eval_time, "eval_seconds": cb.eval_time}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--eval-every", type=int, default=5_000)
    ap.add_argument("--libs", nargs="+", default=["lib", "sb3"], choices=["lib", "sb3"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dqn_cartpole.json"),
                    help="the JSON record (see bench/benchmeta.py), rewritten after every run")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rec = Record(args.out, benchmark="dqn_cartpole", env_id="CartPole-v1", threshold=THRESHOLD,
                 budget_steps=args.steps, seeds=args.seeds, argv=argv,
                 goal="mean evaluation return >= 475 within 100k steps in >= 4 of 5 seeds; "
                      "training wall time per 100k steps <= SB3's",
                 libraries={k: v for k, v in LIBRARIES.items() if k in args.libs},
                 comparisons=[["lib", "sb3"]] if set(args.libs) == {"lib", "sb3"} else [])
    rec.data["eval_every"] = args.eval_every
    for seed in args.seeds:
        for lib in args.libs:          # interleaved: each seed's pair of runs sees similar load
            load = loadavg()
            res = (run_lib if lib == "lib" else run_sb3)(seed, args.steps, args.eval_every)
            run = rec.add(seed, lib, res, load)
            print_run("DQN", run)
            print(f"    evals: {[round(r) for _, r in run['curve']]}", flush=True)
    rec.finish()
    print(f"\nCartPole-v1, {args.steps} steps, seeds {args.seeds}, torch threads {torch.get_num_threads()}")
    per100k = {}
    for lib in args.libs:
        rs = [r for r in rec.data["runs"] if r["library"] == lib]
        reached = [r["steps_to_threshold"] for r in rs if r["steps_to_threshold"] is not None]
        finals = np.array([r["final_mean"] for r in rs])
        per100k[lib] = [r["train_seconds"] * 100_000 / args.steps for r in rs]
        print(f"{lib:>4}: reached 475 in {len(reached)}/{len(rs)} seeds (steps: "
              f"{[r['steps_to_threshold'] for r in rs]}; median "
              f"{np.median(reached) if reached else float('nan'):.0f}); final eval return "
              f"{finals.mean():.1f} ± {finals.std():.1f} (mean ± std over seeds); "
              f"wall time per 100k steps {np.mean(per100k[lib]):.1f} s")
    if "lib" in per100k and "sb3" in per100k:
        ratios = [a / b for a, b in zip(per100k["lib"], per100k["sb3"])]
        print(f"wall-time ratio lib / SB3: median of per-seed ratios {np.median(ratios):.2f} "
              f"(ratio of means {np.mean(per100k['lib']) / np.mean(per100k['sb3']):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
