"""Proximal Policy Optimization: PPO-Clip and PPO-Penalty (adaptive KL), in one training loop.

:func:`train_ppo` is the whole algorithm, read top to bottom as the book's pseudocode: for each
iteration it anneals the learning rate and the clip range, collects a rollout from vectorised
environments into a :class:`~lib.rl.rollout.RolloutBuffer`, computes GAE advantages, runs
``n_epochs`` passes of shuffled minibatches of clipped (or KL-penalised) updates, logs the
diagnostics of every epoch (approx-KL, clip fraction, losses, entropy) and evaluates the greedy
policy. The losses are the model-agnostic ones of :mod:`lib.objectives` (shared with TRPO and
GRPO); :class:`AdaptiveKLController` is PPO-Penalty's schedule for ``beta``.

Book: seed-67 (the evolution of PPO), seed-70 (PPO-Clip), seed-71 (PPO in practice), seed-71-2 (the
PPO pseudocode, checked against this loop).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from lib import progress as progress_bar
from lib.objectives import clipped_surrogate, explained_variance, kl_estimators, kl_penalty_surrogate, value_loss
from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range, eval_seed

from .actor_critic import ActorCritic, check_on_policy_config, make_policy
from .rollout import EpisodeTracker, RolloutBuffer, collect_rollout, evaluate, make_vec_env, space_dims

VARIANTS = ("clip", "penalty")

# Early stop of an iteration's epochs when a minibatch's approx KL exceeds
# TARGET_KL_MARGIN * target_kl (Stable-Baselines3, ppo.py: ``1.5 * self.target_kl``).
TARGET_KL_MARGIN = 1.5
# With annealing the clip range falls linearly to 0; it is kept at least this (clip_eps > 0).
MIN_CLIP_EPS = 1e-6
# The diagnostics logged per epoch (a list of n_epochs values per update).
EPOCH_DIAGNOSTICS = ("approx_kl", "clip_fraction", "policy_loss", "value_loss", "entropy")


class AdaptiveKLController:
    """PPO-Penalty's beta schedule (Schulman et al. 2017, section 4): double beta when the KL
    exceeds ``band * target``, halve it when the KL is below ``target / band``."""

    def __init__(self, beta: float = 1.0, target: float = 0.01, factor: float = 2.0, band: float = 1.5):
        if beta <= 0 or target <= 0 or factor <= 1 or band <= 1:
            raise ValueError("need beta > 0, target > 0, factor > 1, band > 1")
        self.beta, self.target, self.factor, self.band = float(beta), float(target), float(factor), float(band)

    def update(self, kl: float) -> float:
        if kl > self.target * self.band:
            self.beta *= self.factor
        elif kl < self.target / self.band:
            self.beta /= self.factor
        return self.beta


@dataclasses.dataclass
class PPOConfig:
    """PPO hyperparameters. Defaults: RL-Zoo's tuned CartPole-v1 settings for SB3 PPO
    (``hyperparams/ppo.yml``); the other values are SB3's defaults unless stated.

    env_id: gymnasium environment with a flat Box observation (Discrete or Box actions).
    total_steps: environment steps over all ``n_envs`` copies (CartPole: 1e5).
    n_envs: parallel environments per rollout (zoo: 8).
    n_steps: steps per environment per rollout; an iteration uses ``n_steps * n_envs``
        transitions (zoo: 32, so 256; Atari and MuJoCo use 128 to 2048).
    batch_size: minibatch size, at most ``n_steps * n_envs`` (zoo: 256, one minibatch per epoch).
    n_epochs: passes over each rollout (zoo: 20; the paper uses 3 to 15).
    gamma: discount in [0, 1] (zoo: 0.98).
    lam: GAE lambda in [0, 1] (zoo: 0.8; 0.95 is the common default).
    lr: Adam learning rate at the start (zoo: 1e-3; 3e-4 is the common default).
    adam_eps: Adam's epsilon (1e-5, as OpenAI baselines' ppo2 and SB3; PyTorch's default is 1e-8).
    anneal: decay ``lr`` and ``clip_eps`` linearly to 0 over the run (zoo: ``lin_1e-3``,
        ``lin_0.2``).
    variant: ``"clip"`` (PPO-Clip) or ``"penalty"`` (PPO-Penalty, adaptive KL).
    clip_eps: clip range epsilon of the ratio, in (0, 1) (0.1 to 0.3; the paper's 0.2).
    kl_target: PPO-Penalty's target KL per iteration (0.003 to 0.03; paper: 0.01).
    beta_init: PPO-Penalty's initial KL coefficient (paper: 1.0; it adapts quickly).
    vf_coef: weight of the critic's squared error (0.5).
    ent_coef: weight of the entropy bonus (0.0; 0.01 on Atari).
    max_grad_norm: the gradient's global norm is clipped to this (0.5).
    target_kl: stop an iteration's epochs once a minibatch's approx KL exceeds
        ``TARGET_KL_MARGIN * target_kl`` (None: never; SB3's ``target_kl``, e.g. 0.01 to 0.05).
    normalize_advantages: standardise the advantages per minibatch (SB3: True).
    hidden: hidden layer widths of the actor and critic MLPs ((64, 64)).
    eval_every: environment steps between greedy evaluations (and one at the end).
    eval_episodes: episodes per evaluation, seeded by ``lib.runs.eval_seed(seed)``.
    stop_return: stop at the first evaluation whose mean return reaches it (None: never).
    seed: seeds the network, the environments, the action sampling and the minibatch order.
    """

    env_id: str = "CartPole-v1"
    total_steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 32
    batch_size: int = 256
    n_epochs: int = 20
    gamma: float = 0.98
    lam: float = 0.8
    lr: float = 1e-3
    adam_eps: float = 1e-5
    anneal: bool = True
    variant: str = "clip"
    clip_eps: float = 0.2
    kl_target: float = 0.01
    beta_init: float = 1.0
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_advantages: bool = True
    hidden: tuple = (64, 64)
    eval_every: int = 10_000
    eval_episodes: int = 10
    stop_return: float | None = None
    seed: int = 0

    def __post_init__(self):
        check_on_policy_config(self)
        check_choice(self, "variant", VARIANTS)
        check_int(self, "batch_size", "n_epochs")
        if self.batch_size > self.n_steps * self.n_envs:
            raise ValueError(f"PPOConfig.batch_size {self.batch_size} exceeds the rollout size "
                             f"n_steps * n_envs = {self.n_steps * self.n_envs}")
        check_range(self, "clip_eps", 0.0, 1.0, low_open=True, high_open=True)
        check_positive(self, "adam_eps", "kl_target", "beta_init", "max_grad_norm")
        check_range(self, "vf_coef", 0.0, np.inf, high_open=True)
        check_range(self, "ent_coef", 0.0, np.inf, high_open=True)
        if self.target_kl is not None:
            check_positive(self, "target_kl")


@dataclasses.dataclass
class PPORun(Run):
    """A finished PPO run: ``config``, ``log`` and the trained ``policy``.

    Each row of ``log.updates`` holds, per iteration: the per-epoch lists of
    :data:`EPOCH_DIAGNOSTICS`, ``n_grad_steps``, the ``lr`` and ``clip_eps`` used,
    ``explained_variance`` of the critic on the rollout and, for PPO-Penalty, ``beta`` (used in
    this iteration) and ``kl_after`` (the k3 KL of the whole rollout after the epochs).
    """

    policy: ActorCritic


def train_ppo(cfg: PPOConfig | None = None, progress: bool = False) -> PPORun:
    """Train PPO (Clip or Penalty per ``cfg.variant``); returns a :class:`PPORun`."""
    cfg = cfg or PPOConfig()
    policy = make_policy(cfg)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    rng = np.random.default_rng(cfg.seed)  # the minibatch order
    kl_ctl = AdaptiveKLController(cfg.beta_init, cfg.kl_target) if cfg.variant == "penalty" else None
    env = make_vec_env(cfg.env_id, cfg.n_envs, cfg.seed)
    buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, *space_dims(env))
    obs, _ = env.reset(seed=cfg.seed)
    log = TrainLog()
    episodes = EpisodeTracker(cfg.n_envs, log)
    steps_per_iteration = cfg.n_steps * cfg.n_envs
    n_iterations = max(1, cfg.total_steps // steps_per_iteration)
    next_eval = cfg.eval_every
    with Stopwatch(log), progress_bar(total=n_iterations * steps_per_iteration, desc="PPO", unit="step",
                                      enabled=progress) as bar:
        for iteration in range(n_iterations):
            # 0. linear annealing of the learning rate and the clip range
            frac_left = 1.0 - iteration / n_iterations if cfg.anneal else 1.0
            lr = cfg.lr * frac_left
            for group in optimizer.param_groups:
                group["lr"] = lr
            clip_eps = max(cfg.clip_eps * frac_left, MIN_CLIP_EPS)
            # 1. rollout with the current policy (theta_old): obs, actions, log pi_old, V_old, r
            obs = collect_rollout(env, policy, buffer, obs, episodes)
            # 2. GAE advantages and critic targets, bootstrapped from V(last obs)
            with torch.no_grad():
                last_values = policy.value(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            buffer.compute_advantages(last_values, cfg.gamma, cfg.lam)
            # 3. n_epochs passes of shuffled minibatches of clipped (or penalised) updates
            diag = {k: [] for k in EPOCH_DIAGNOSTICS}
            n_grad_steps, stop = 0, False
            for _epoch in range(cfg.n_epochs):
                sums, n_minibatches = dict.fromkeys(EPOCH_DIAGNOSTICS, 0.0), 0
                for mb in buffer.minibatches(cfg.batch_size, rng, cfg.normalize_advantages):
                    log_probs, entropy, values = policy.evaluate_actions(mb["obs"], mb["actions"])
                    if cfg.variant == "clip":
                        pg_loss, info = clipped_surrogate(log_probs, mb["log_probs"], mb["advantages"],
                                                          clip_eps)
                    else:
                        pg_loss, info = kl_penalty_surrogate(log_probs, mb["log_probs"], mb["advantages"],
                                                             kl_ctl.beta, clip_eps)
                    v_loss = value_loss(values, mb["returns"])
                    loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy.mean()
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    n_grad_steps += 1
                    n_minibatches += 1
                    for k, v in (("approx_kl", info["approx_kl"]), ("clip_fraction", info["clip_fraction"]),
                                 ("policy_loss", pg_loss.item()), ("value_loss", v_loss.item()),
                                 ("entropy", entropy.mean().item())):
                        sums[k] += v
                    if cfg.target_kl is not None and info["approx_kl"] > TARGET_KL_MARGIN * cfg.target_kl:
                        stop = True
                        break
                for k in diag:
                    diag[k].append(sums[k] / n_minibatches)
                if stop:
                    break
            # 4. diagnostics (and PPO-Penalty's beta, adapted to the KL the epochs produced)
            step = (iteration + 1) * steps_per_iteration
            diag.update(n_grad_steps=n_grad_steps, lr=lr, clip_eps=clip_eps,
                        explained_variance=explained_variance(buffer.values, buffer.returns))
            if kl_ctl is not None:
                with torch.no_grad():
                    data = buffer.flat()
                    new_log_probs, _, _ = policy.evaluate_actions(data["obs"], data["actions"])
                    kl = float(kl_estimators(new_log_probs, data["log_probs"])["k3"])
                diag.update(kl_after=kl, beta=kl_ctl.beta)
                kl_ctl.update(kl)
            log.record_update(step, **diag)
            bar.update(steps_per_iteration)
            # 5. greedy evaluation every eval_every steps (and at the end)
            if step >= next_eval or iteration == n_iterations - 1:
                next_eval += cfg.eval_every
                mean = log.record_eval(step, lambda: evaluate(
                    policy.deterministic, cfg.env_id, cfg.eval_episodes, seed=eval_seed(cfg.seed)))
                if cfg.stop_return is not None and mean >= cfg.stop_return:
                    break
    env.close()
    return PPORun(cfg, log, policy)


__all__ = ["VARIANTS", "TARGET_KL_MARGIN", "MIN_CLIP_EPS", "EPOCH_DIAGNOSTICS", "AdaptiveKLController",
           "PPOConfig", "PPORun", "train_ppo"]
