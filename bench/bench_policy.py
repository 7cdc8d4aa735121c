#!/usr/bin/env python3
"""Benchmark: the book's PPO and TD3 (lib.rl.ppo, lib.rl.ddpg) against Stable-Baselines3's.

* PPO on CartPole-v1, both with RL-Zoo's tuned hyperparameters for SB3 (8 envs, n_steps 32, batch 256,
  20 epochs, gamma 0.98, GAE lambda 0.8, lr and clip range linearly decayed from 1e-3 / 0.2, 64x64 tanh
  MLPs, 100k steps). Goal: evaluation return >= 475 within 100k steps.
* TD3 on Pendulum-v1 for 20k steps. SB3 uses RL-Zoo's settings (400x300 MLPs, learning_starts 10k, gamma 0.98,
  lr 1e-3, Gaussian action noise 0.1). The book's TD3 uses its own defaults for a CPU (64x64 MLPs, batch 128,
  learning_starts 1k, otherwise the same gamma / lr / noise / tau / delays). Goal: >= -200 within 20k steps.

Both libraries are evaluated by the same evaluator (``lib.rl.rollout.evaluate``: deterministic policy,
10 episodes, every --ppo-eval / --td3-eval steps), and evaluation time is excluded from the training wall
time. Prints per seed and in summary: steps to the threshold, the final evaluation return (20 episodes,
mean +- std over seeds), and wall time with the lib/SB3 ratio. Writes JSON with --out.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_policy.py --seeds 0 1 2 3 4 --out bench/out/policy.json
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

from lib.rl.ddpg import DDPGConfig, train_ddpg  # noqa: E402
from lib.rl.ppo import PPOConfig, train_ppo  # noqa: E402
from lib.rl.rollout import evaluate  # noqa: E402

PPO_THRESHOLD, TD3_THRESHOLD = 475.0, -200.0


def _first(steps, rets, thr):
    return next((s for s, r in zip(steps, rets) if r >= thr), None)


# ------------------------------------------------------------------ PPO


def ppo_lib(seed, steps, eval_every):
    cfg = PPOConfig(total_steps=steps, eval_every=eval_every, eval_episodes=10)
    pol, log = train_ppo(cfg, seed=seed)
    final = evaluate(pol.deterministic, "CartPole-v1", 20, seed=99_000 + seed)
    return {"steps_to": log.steps_to(PPO_THRESHOLD), "final_mean": float(final.mean()),
            "train_time": log.wall_time - log.eval_time, "evals": log.eval_returns, "eval_steps": log.eval_steps}


class _EvalCallback:
    """Evaluates an SB3 model every ``every`` steps with the book's evaluator; tracks evaluation time."""

    def __init__(self, env_id, every, seed):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class CB(BaseCallback):
            def _on_step(self):
                n = self.num_timesteps
                if n >= outer.next:
                    outer.next += every
                    t = time.perf_counter()
                    r = evaluate(lambda o: self.model.predict(o, deterministic=True)[0], env_id, 10,
                                 seed=10_000 + 97 * seed)
                    outer.eval_time += time.perf_counter() - t
                    outer.steps.append(n)
                    outer.rets.append(float(r.mean()))
                return True

        self.cb = CB()
        self.next = every
        self.eval_time = 0.0
        self.steps, self.rets = [], []


def ppo_sb3(seed, steps, eval_every):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    lin = lambda v: (lambda frac: frac * v)    # noqa: E731  SB3 passes progress_remaining (1 -> 0)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2), seed=seed, device="cpu", verbose=0)
    cb = _EvalCallback("CartPole-v1", eval_every, seed)
    t = time.perf_counter()
    model.learn(steps, callback=cb.cb)
    wall = time.perf_counter() - t
    final = evaluate(lambda o: model.predict(o, deterministic=True)[0], "CartPole-v1", 20, seed=99_000 + seed)
    return {"steps_to": _first(cb.steps, cb.rets, PPO_THRESHOLD), "final_mean": float(final.mean()),
            "train_time": wall - cb.eval_time, "evals": cb.rets, "eval_steps": cb.steps}


# ------------------------------------------------------------------ TD3


def td3_lib(seed, steps, eval_every):
    cfg = DDPGConfig(td3=True, total_steps=steps, hidden=(64, 64), batch_size=128, learning_starts=1_000,
                     eval_every=eval_every, eval_episodes=10)
    agent, log = train_ddpg(cfg, seed=seed)
    final = evaluate(lambda o: agent.act(o), "Pendulum-v1", 20, seed=99_000 + seed)
    return {"steps_to": log.steps_to(TD3_THRESHOLD), "final_mean": float(final.mean()),
            "train_time": log.wall_time - log.eval_time, "evals": log.eval_returns, "eval_steps": log.eval_steps}


def td3_sb3(seed, steps, eval_every):
    import gymnasium as gym
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make("Pendulum-v1")
    noise = NormalActionNoise(mean=np.zeros(1), sigma=0.1 * np.ones(1))
    model = TD3("MlpPolicy", env, gamma=0.98, buffer_size=200_000, learning_starts=10_000, action_noise=noise,
                gradient_steps=1, train_freq=1, learning_rate=1e-3, policy_kwargs={"net_arch": [400, 300]},
                seed=seed, device="cpu", verbose=0)
    cb = _EvalCallback("Pendulum-v1", eval_every, seed)
    t = time.perf_counter()
    model.learn(steps, callback=cb.cb)
    wall = time.perf_counter() - t
    final = evaluate(lambda o: model.predict(o, deterministic=True)[0], "Pendulum-v1", 20, seed=99_000 + seed)
    return {"steps_to": _first(cb.steps, cb.rets, TD3_THRESHOLD), "final_mean": float(final.mean()),
            "train_time": wall - cb.eval_time, "evals": cb.rets, "eval_steps": cb.steps}


def summarize(name, rows, thr, budget):
    out = {}
    for lib_name in ("lib", "sb3"):
        rs = [r[lib_name] for r in rows]
        finals = np.array([r["final_mean"] for r in rs])
        reached = [r["steps_to"] for r in rs if r["steps_to"] is not None and r["steps_to"] <= budget]
        out[lib_name] = {"seeds_reaching": len(reached), "median_steps_to": float(np.median(reached)) if reached else None,
                         "final_mean": float(finals.mean()), "final_std": float(finals.std()),
                         "train_time_mean": float(np.mean([r["train_time"] for r in rs]))}
    out["time_ratio_lib_over_sb3"] = out["lib"]["train_time_mean"] / out["sb3"]["train_time_mean"]
    print(f"\n== {name}: threshold {thr} within {budget} steps, {len(rows)} seeds")
    for k in ("lib", "sb3"):
        o = out[k]
        print(f"  {k:4s} reached in {o['seeds_reaching']}/{len(rows)} seeds, median steps {o['median_steps_to']}, "
              f"final {o['final_mean']:.1f} ± {o['final_std']:.1f}, train time {o['train_time_mean']:.1f} s/run")
    print(f"  wall-time ratio lib/SB3: {out['time_ratio_lib_over_sb3']:.2f}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--ppo-steps", type=int, default=100_000)
    ap.add_argument("--td3-steps", type=int, default=20_000)
    ap.add_argument("--ppo-eval", type=int, default=10_000)
    ap.add_argument("--td3-eval", type=int, default=2_000)
    ap.add_argument("--only", choices=["ppo", "td3"], default=None)
    ap.add_argument("--out", type=str, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = {"args": vars(args), "torch_threads": torch.get_num_threads()}
    if args.only in (None, "ppo"):
        rows = []
        for s in args.seeds:
            row = {"seed": s, "lib": ppo_lib(s, args.ppo_steps, args.ppo_eval), "sb3": ppo_sb3(s, args.ppo_steps, args.ppo_eval)}
            print(f"PPO seed {s}: lib steps_to {row['lib']['steps_to']} final {row['lib']['final_mean']:.0f} "
                  f"time {row['lib']['train_time']:.1f}s | SB3 steps_to {row['sb3']['steps_to']} final "
                  f"{row['sb3']['final_mean']:.0f} time {row['sb3']['train_time']:.1f}s", flush=True)
            rows.append(row)
        result["ppo"] = {"rows": rows, "summary": summarize("PPO CartPole-v1", rows, PPO_THRESHOLD, args.ppo_steps)}
    if args.only in (None, "td3"):
        rows = []
        for s in args.seeds:
            row = {"seed": s, "lib": td3_lib(s, args.td3_steps, args.td3_eval), "sb3": td3_sb3(s, args.td3_steps, args.td3_eval)}
            print(f"TD3 seed {s}: lib steps_to {row['lib']['steps_to']} final {row['lib']['final_mean']:.0f} "
                  f"time {row['lib']['train_time']:.1f}s | SB3 steps_to {row['sb3']['steps_to']} final "
                  f"{row['sb3']['final_mean']:.0f} time {row['sb3']['train_time']:.1f}s", flush=True)
            rows.append(row)
        result["td3"] = {"rows": rows, "summary": summarize("TD3 Pendulum-v1", rows, TD3_THRESHOLD, args.td3_steps)}
    if args.out:
        p = pathlib.Path(args.out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
