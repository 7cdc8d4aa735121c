#!/usr/bin/env python3
"""Benchmark: the book's PPO and TD3 (lib.rl.ppo, lib.rl.ddpg) against Stable-Baselines3's.

* PPO on CartPole-v1, both with RL-Zoo's tuned hyperparameters for SB3 (8 envs, n_steps 32, batch 256,
  20 epochs, gamma 0.98, GAE lambda 0.8, lr and clip range linearly decayed from 1e-3 / 0.2, 64x64 tanh
  MLPs, 100k steps). Goal: evaluation return >= 475 within 100k steps.
* TD3 on Pendulum-v1 for 20k steps, three contenders: the book's TD3 with its CPU defaults (64x64 MLPs,
  batch 128, learning_starts 1k, gamma 0.98, lr 1e-3, Gaussian action noise 0.1, tau 0.005, policy delay 2,
  target smoothing 0.2 clipped at 0.5); SB3's TD3 with RL-Zoo's settings (400x300 MLPs, batch 256,
  learning_starts 10k, otherwise the same) -- each library as it is meant to be run; and SB3's TD3 with
  exactly lib's networks and settings (the same-size comparison). Goal: >= -200 within 20k steps.

All contenders are evaluated by the same evaluator (``lib.rl.rollout.evaluate``: deterministic policy,
10 episodes, every --ppo-eval / --td3-eval steps), and evaluation time is excluded from the training wall
time. The libraries alternate seed by seed so that each seed's runs see similar machine load. Prints per
run and in summary: steps to the threshold, the final evaluation return (20 episodes), training wall time
and the lib/SB3 ratios. Writes the JSON records (see bench/benchmeta.py) to --out-dir after every run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_policy.py --seeds 0 1 2 3 4
    # -> bench/results/td3_pendulum.json, bench/results/ppo_cartpole.json
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

from lib.rl.ddpg import DDPGConfig, train_ddpg  # noqa: E402
from lib.rl.ppo import PPOConfig, train_ppo  # noqa: E402
from lib.rl.rollout import evaluate  # noqa: E402

from benchmeta import Record, loadavg, print_run  # noqa: E402


# ------------------------------------------------------------------ PPO

PPO_ZOO = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
               learning_rate="lin 1e-3", clip_range="lin 0.2", ent_coef=0.0, net_arch=[64, 64],
               activation="tanh")


def ppo_lib(seed, steps, eval_every):
    cfg = PPOConfig(total_steps=steps, eval_every=eval_every, eval_episodes=10, seed=seed)
    run = train_ppo(cfg)
    log = run.log
    final = evaluate(run.policy.deterministic, "CartPole-v1", 20, seed=99_000 + seed)
    return {"curve": list(zip(log.eval_steps, log.eval_returns)), "final": final,
            "train_seconds": log.train_time, "eval_seconds": log.eval_time}


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


def _sb3_result(model, cb, wall, env_id, seed):
    final = evaluate(lambda o: model.predict(o, deterministic=True)[0], env_id, 20, seed=99_000 + seed)
    return {"curve": list(zip(cb.steps, cb.rets)), "final": final,
            "train_seconds": wall - cb.eval_time, "eval_seconds": cb.eval_time}


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
    return _sb3_result(model, cb, time.perf_counter() - t, "CartPole-v1", seed)


# ------------------------------------------------------------------ TD3

# lib's CPU defaults for the book's TD3 (the same in the notebook)
TD3_LIB = dict(net_arch=[64, 64], batch_size=128, learning_starts=1_000, gamma=0.98, learning_rate=1e-3,
               tau=0.005, action_noise=0.1, policy_delay=2, target_policy_noise=0.2, target_noise_clip=0.5,
               buffer_size=200_000, train_freq=1, gradient_steps=1)
# RL-Zoo's Pendulum-v1 settings for SB3's TD3 (other values: SB3's defaults)
TD3_ZOO = dict(TD3_LIB, net_arch=[400, 300], batch_size=256, learning_starts=10_000)


def td3_lib(seed, steps, eval_every):
    c = TD3_LIB
    cfg = DDPGConfig(td3=True, total_steps=steps, hidden=tuple(c["net_arch"]), batch_size=c["batch_size"],
                     learning_starts=c["learning_starts"], gamma=c["gamma"], tau=c["tau"],
                     actor_lr=c["learning_rate"], critic_lr=c["learning_rate"], expl_noise=c["action_noise"],
                     policy_noise=c["target_policy_noise"], noise_clip=c["target_noise_clip"],
                     policy_delay=c["policy_delay"], buffer_size=c["buffer_size"],
                     eval_every=eval_every, eval_episodes=10, seed=seed)
    run = train_ddpg(cfg)
    log = run.log
    final = evaluate(run.act, "Pendulum-v1", 20, seed=99_000 + seed)
    return {"curve": list(zip(log.eval_steps, log.eval_returns)), "final": final,
            "train_seconds": log.train_time, "eval_seconds": log.eval_time}


def _td3_sb3(c, seed, steps, eval_every):
    import gymnasium as gym
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make("Pendulum-v1")
    noise = NormalActionNoise(mean=np.zeros(1), sigma=c["action_noise"] * np.ones(1))
    model = TD3("MlpPolicy", env, gamma=c["gamma"], buffer_size=c["buffer_size"],
                learning_starts=c["learning_starts"], batch_size=c["batch_size"], action_noise=noise,
                gradient_steps=c["gradient_steps"], train_freq=c["train_freq"], learning_rate=c["learning_rate"],
                tau=c["tau"], policy_delay=c["policy_delay"], target_policy_noise=c["target_policy_noise"],
                target_noise_clip=c["target_noise_clip"], policy_kwargs={"net_arch": list(c["net_arch"])},
                seed=seed, device="cpu", verbose=0)
    cb = _EvalCallback("Pendulum-v1", eval_every, seed)
    t = time.perf_counter()
    model.learn(steps, callback=cb.cb)
    return _sb3_result(model, cb, time.perf_counter() - t, "Pendulum-v1", seed)


def td3_sb3_zoo(seed, steps, eval_every):
    return _td3_sb3(TD3_ZOO, seed, steps, eval_every)


def td3_sb3_same(seed, steps, eval_every):
    return _td3_sb3(TD3_LIB, seed, steps, eval_every)


def summarize(rec: dict) -> None:
    """Print, per library: seeds reaching the threshold, median steps, final return, mean train time."""
    runs, thr, budget = rec["runs"], rec["threshold"], rec["budget_steps"]
    seeds = sorted({r["seed"] for r in runs})
    print(f"\n== {rec['benchmark']} ({rec['env_id']}): threshold {thr} within {budget} steps, "
          f"seeds {seeds}")
    times = {}
    for name in rec["libraries"]:
        rs = [r for r in runs if r["library"] == name]
        reached = [r["steps_to_threshold"] for r in rs
                   if r["steps_to_threshold"] is not None and r["steps_to_threshold"] <= budget]
        finals = np.array([r["final_mean"] for r in rs])
        times[name] = [r["train_seconds"] for r in rs]
        print(f"  {name:8s} reached in {len(reached)}/{len(rs)} seeds, median steps "
              f"{np.median(reached) if reached else None}, final {finals.mean():.1f} ± {finals.std():.1f}, "
              f"train time {np.mean(times[name]):.1f} s/run")
    for a, b in rec["comparisons"]:
        ratios = [x / y for x, y in zip(times[a], times[b])]
        print(f"  wall-time ratio {a}/{b}: median of per-seed ratios {np.median(ratios):.2f} "
              f"(ratio of means {np.mean(times[a]) / np.mean(times[b]):.2f})")


BENCHES = {
    "ppo": dict(benchmark="ppo_cartpole", env_id="CartPole-v1", threshold=475.0,
                goal="mean evaluation return >= 475 within 100k steps in >= 4 of 5 seeds; "
                     "training wall time <= SB3's",
                libraries={"lib": {"description": "lib.rl.ppo.train_ppo (PPOConfig defaults)",
                                   "config": PPO_ZOO},
                           "sb3": {"description": "stable_baselines3.PPO, RL-Zoo CartPole-v1 settings",
                                   "config": PPO_ZOO}},
                comparisons=[["lib", "sb3"]], fns={"lib": ppo_lib, "sb3": ppo_sb3}),
    "td3": dict(benchmark="td3_pendulum", env_id="Pendulum-v1", threshold=-200.0,
                goal="mean evaluation return >= -200 within 20k steps; training wall time <= SB3's",
                libraries={"lib": {"description": "lib.rl.ddpg.train_ddpg(td3=True), 64x64 MLPs",
                                   "config": TD3_LIB},
                           "sb3_zoo": {"description": "stable_baselines3.TD3, RL-Zoo Pendulum-v1 "
                                                      "settings (400x300 MLPs)", "config": TD3_ZOO},
                           "sb3_same": {"description": "stable_baselines3.TD3 with lib's networks and "
                                                       "settings (64x64 MLPs)", "config": TD3_LIB}},
                comparisons=[["lib", "sb3_zoo"], ["lib", "sb3_same"]],
                fns={"lib": td3_lib, "sb3_zoo": td3_sb3_zoo, "sb3_same": td3_sb3_same}),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--ppo-steps", type=int, default=100_000)
    ap.add_argument("--td3-steps", type=int, default=20_000)
    ap.add_argument("--ppo-eval", type=int, default=10_000)
    ap.add_argument("--td3-eval", type=int, default=2_000)
    ap.add_argument("--only", choices=["ppo", "td3"], default=None)
    ap.add_argument("--out-dir", type=str, default=str(ROOT / "bench" / "results"),
                    help="folder of the JSON records (ppo_cartpole.json, td3_pendulum.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = {}
    for key in ("td3", "ppo"):
        if args.only not in (None, key):
            continue
        spec = dict(BENCHES[key])
        fns = spec.pop("fns")
        steps, every = (args.td3_steps, args.td3_eval) if key == "td3" else (args.ppo_steps, args.ppo_eval)
        rec = Record(pathlib.Path(args.out_dir) / f"{spec['benchmark']}.json", budget_steps=steps,
                     seeds=args.seeds, argv=argv, **spec)
        rec.data["eval_every"] = every
        for s in args.seeds:
            for name, fn in fns.items():       # interleaved: each seed's runs see similar load
                load = loadavg()
                print_run(key.upper(), rec.add(s, name, fn(s, steps, every), load))
        rec.finish()
        summarize(rec.data)
        out[key] = rec.data
    return out


if __name__ == "__main__":
    main()
