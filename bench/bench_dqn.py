#!/usr/bin/env python3
"""Benchmark: the book's DQN (lib.rl.dqn) against Stable-Baselines3's DQN on CartPole-v1.

Both use the RL-Zoo hyperparameters for CartPole-v1 (256x256 MLP, lr 2.3e-3, batch 64, buffer 100k,
learning_starts 1000, 128 gradient steps every 256 env steps, target refresh every 256 env steps
(zoo: target_update_interval=10, which SB3 applies between training bursts), epsilon 1 -> 0.04 over
8,000 steps (zoo: exploration_fraction 0.16 of 50k)). Each library trains for --steps environment
steps per seed; both are evaluated with the same evaluator (greedy policy, 10 episodes, every
--eval-every steps, time excluded from the training wall time). Prints, per seed and in summary:
steps to reach a mean evaluation return of 475, the final evaluation return (20 episodes), and the
wall time per 100k steps of each library with their ratio.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_dqn.py --seeds 0 1 2 3 4
    .venv/bin/python bench/bench_dqn.py --make-checkpoint data/checkpoints/dqn-cartpole   # the shipped checkpoint
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.rl.dqn import DQNConfig, evaluate_q_policy, save_q_network, train_dqn  # noqa: E402
from lib.rl.rollout import evaluate  # noqa: E402

THRESHOLD = 475.0


def run_lib(seed: int, steps: int, eval_every: int) -> dict:
    cfg = DQNConfig(seed=seed, total_steps=steps, stop_return=None, eval_every=eval_every, eval_episodes=10)
    r = train_dqn(cfg)
    final = evaluate_q_policy(r.q_net, "CartPole-v1", 20, seed=99_000 + seed)["returns"]
    return {"steps_to_475": r.steps_to(THRESHOLD), "final_mean": float(final.mean()), "final_std": float(final.std()),
            "train_time_s": r.wall_time_s - r.eval_time_s, "eval_returns": r.eval_returns}


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
    reached = next((s for s, r in zip(cb.steps, cb.returns) if r >= THRESHOLD), None)
    return {"steps_to_475": reached, "final_mean": float(final.mean()), "final_std": float(final.std()),
            "train_time_s": total - cb.eval_time, "eval_returns": cb.returns}


def make_checkpoint(directory: str, seed: int) -> None:
    cfg = DQNConfig(seed=seed, total_steps=100_000, stop_return=THRESHOLD)
    r = train_dqn(cfg)
    ev = evaluate_q_policy(r.q_net, "CartPole-v1", 20, seed=2024)["returns"]
    metrics = {"eval_return_mean": float(ev.mean()), "eval_return_std": float(ev.std()), "eval_episodes": 20,
               "eval_seed": 2024, "env_steps": r.env_steps, "steps_to_475": r.steps_to_threshold,
               "eval_steps": r.eval_steps, "eval_returns": r.eval_returns,
               "torch_threads": torch.get_num_threads()}
    cmd = f"OMP_NUM_THREADS=1 python bench/bench_dqn.py --make-checkpoint {directory} --seed {seed}"
    save_q_network(r.q_net, ROOT / directory, cfg, metrics, cmd)
    print(json.dumps(metrics))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--eval-every", type=int, default=5_000)
    ap.add_argument("--libs", nargs="+", default=["lib", "sb3"], choices=["lib", "sb3"])
    ap.add_argument("--make-checkpoint", metavar="DIR")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.make_checkpoint:
        make_checkpoint(args.make_checkpoint, args.seed)
        return 0
    rows = {lib: [] for lib in args.libs}
    for seed in args.seeds:
        for lib in args.libs:
            res = (run_lib if lib == "lib" else run_sb3)(seed, args.steps, args.eval_every)
            rows[lib].append(res)
            print(f"{lib:>4} seed {seed}: steps to {THRESHOLD:.0f} = {res['steps_to_475']}, final "
                  f"{res['final_mean']:.1f} ± {res['final_std']:.1f}, train time {res['train_time_s']:.1f} s "
                  f"(evals: {[round(x) for x in res['eval_returns']]})", flush=True)
    print(f"\nCartPole-v1, {args.steps} steps, seeds {args.seeds}, torch threads {torch.get_num_threads()}")
    per100k = {}
    for lib, rs in rows.items():
        reached = [r["steps_to_475"] for r in rs if r["steps_to_475"] is not None]
        finals = np.array([r["final_mean"] for r in rs])
        per100k[lib] = np.mean([r["train_time_s"] for r in rs]) * 100_000 / args.steps
        print(f"{lib:>4}: reached 475 in {len(reached)}/{len(rs)} seeds (steps: "
              f"{[r['steps_to_475'] for r in rs]}; median {np.median(reached) if reached else float('nan'):.0f}); "
              f"final eval return {finals.mean():.1f} ± {finals.std():.1f} (mean ± std over seeds); "
              f"wall time per 100k steps {per100k[lib]:.1f} s")
    if "lib" in per100k and "sb3" in per100k:
        print(f"wall-time ratio lib / SB3 = {per100k['lib'] / per100k['sb3']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
