"""Imitation learning: behaviour cloning, DAgger and GAIL.

* :func:`cartpole_expert` — a scripted CartPole controller (a linear rule on the pole's angle and
  angular velocity and the cart's velocity) that balances for the full 500 steps.
* :func:`collect_demonstrations` — expert (or any policy) rollouts on vectorised envs, with the
  expert's label for every visited state.
* :func:`train_bc` — behaviour cloning: cross-entropy classification of expert actions.
* :func:`dagger` — Ross et al. (2011): roll out the *learner*, ask the expert to label the states
  the learner visits, aggregate, retrain. Compared with BC at an equal number of expert labels.
* Tabular imitation on a :class:`lib.rl.gridworld.GridWorld`: :func:`tabular_bc` (majority vote
  of the expert's actions per state) and :func:`gail_tabular` — GAIL (Ho & Ermon 2016) in its
  simplest working form: a tabular discriminator ``D(s, a)`` trained by logistic regression to tell
  expert from policy state-action pairs, and a policy that is soft-optimal for the reward
  ``log D - log(1 - D)`` (entropy-regularised RL, solved exactly with the known model).

Book: seed-58, seed-59
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from .irl import sample_trajectories, soft_value_iteration
from .reinforce import CategoricalPolicy


# ------------------------------------------------------------------ CartPole expert and rollouts
def cartpole_expert(obs) -> np.ndarray:
    """Scripted CartPole policy: push right when ``theta + 0.5 theta_dot + 0.1 x_dot + 0.02 x > 0``.

    obs: (B, 4) or (4,). Returns int actions (B,) (or a scalar array)."""
    o = np.asarray(obs, dtype=np.float64)
    if o.shape[-1] != 4:
        raise ValueError(f"CartPole observations have 4 numbers, got shape {o.shape}")
    x, xd, th, thd = o[..., 0], o[..., 1], o[..., 2], o[..., 3]
    return (th + 0.5 * thd + 0.1 * xd + 0.02 * x > 0).astype(np.int64)


def collect_demonstrations(policy_fn, expert_fn, env_id: str = "CartPole-v1", n_episodes: int = 1,
                           seed: int = 0, max_steps: int = 500, max_transitions: int | None = None):
    """Roll out ``policy_fn`` for ``n_episodes`` parallel episodes; label every visited state with ``expert_fn``.

    Returns ``(obs (M, d), expert_actions (M,), returns (n_episodes,))``; with ``max_transitions``
    a random subset of that many visited states is kept (seeded by ``seed``).
    """
    from .rollout import evaluate

    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    O = []
    rets = evaluate(policy_fn, env_id, n_episodes, seed, max_steps,
                    visit=lambda obs, alive: O.append(obs[alive].copy()))
    X = np.concatenate(O).astype(np.float32)
    if max_transitions is not None and len(X) > max_transitions:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), size=max_transitions, replace=False))
        X = X[keep]
    return X, np.asarray(expert_fn(X), dtype=np.int64), rets


def train_bc(obs, actions, n_actions: int = 2, hidden=(32, 32), epochs: int = 200, lr: float = 3e-3,
             batch_size: int = 256, seed: int = 0, policy: CategoricalPolicy | None = None) -> CategoricalPolicy:
    """Behaviour cloning: fit ``pi(a|s)`` to expert pairs by cross-entropy (mini-batch Adam)."""
    X = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    y = torch.as_tensor(np.asarray(actions, dtype=np.int64))
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"obs must be (M, d) and actions (M,), got {tuple(X.shape)}, {tuple(y.shape)}")
    if X.shape[0] == 0:
        raise ValueError("no demonstrations")
    if y.min() < 0 or y.max() >= n_actions:
        raise ValueError(f"actions must be in [0, {n_actions})")
    g = torch.Generator().manual_seed(seed)
    if policy is None:
        torch.manual_seed(seed)
        policy = CategoricalPolicy(X.shape[1], n_actions, hidden, activation="tanh")
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    n = X.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.cross_entropy(policy(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return policy


@dataclasses.dataclass
class DaggerRun:
    policies: list            # learner after each iteration
    n_labels: list            # expert labels used by each learner
    eval_returns: list        # mean evaluation return of each learner


def dagger(expert_fn, env_id: str = "CartPole-v1", n_iters: int = 5, labels_per_iter: int = 200,
           eval_episodes: int = 10, seed: int = 0, bc_kwargs: dict | None = None, beta0: float = 1.0,
           epsilon: float = 0.0) -> DaggerRun:
    """DAgger: iteration 0 is BC on ``labels_per_iter`` expert states; each next iteration rolls out the
    mixture (expert with probability ``beta0 * 0**i`` i.e. only at iteration 0, else the learner), labels
    ``labels_per_iter`` visited states with the expert, aggregates and retrains from scratch.

    ``epsilon``: actuation noise (:func:`noisy_policy`) applied to the learner's rollouts and to
    the evaluation, the setting in which behaviour cloning's compounding errors show."""
    from .rollout import evaluate

    if n_iters < 1 or labels_per_iter < 1:
        raise ValueError("n_iters and labels_per_iter must be >= 1")
    bc_kwargs = dict(bc_kwargs or {})
    X, y = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    run = DaggerRun([], [], [])
    policy = None
    for i in range(n_iters):
        actor = expert_fn if (i == 0 and beta0 > 0) else noisy_policy(policy.greedy, epsilon, seed=seed + i)
        n_ep = max(2, int(np.ceil(labels_per_iter / 25)))      # enough episodes even when they are short
        Xi, yi, _ = collect_demonstrations(actor, expert_fn, env_id, n_ep, seed=seed + 1000 * i,
                                           max_transitions=labels_per_iter)
        X, y = np.concatenate([X, Xi]), np.concatenate([y, yi])
        policy = train_bc(X, y, seed=seed, **bc_kwargs)
        run.policies.append(policy)
        run.n_labels.append(int(len(y)))
        ev = noisy_policy(policy.greedy, epsilon, seed=123 + seed) if epsilon > 0 else policy.greedy
        run.eval_returns.append(float(evaluate(ev, env_id, eval_episodes, seed=77_000 + seed).mean()))
    return run


# ------------------------------------------------------------------ tabular imitation (gridworld)
def tabular_bc(states, actions, n_states: int, n_actions: int) -> np.ndarray:
    """Behaviour cloning in a table: ``pi[s]`` = empirical action frequencies of the expert in ``s``
    (uniform where the expert never went). Returns (S, A)."""
    s, a = np.asarray(states).ravel(), np.asarray(actions).ravel()
    if s.shape != a.shape:
        raise ValueError("states and actions must have the same number of entries")
    counts = np.zeros((n_states, n_actions))
    np.add.at(counts, (s, a), 1.0)
    tot = counts.sum(1, keepdims=True)
    return np.where(tot > 0, counts / np.maximum(tot, 1), 1.0 / n_actions)


def occupancy(P, policy, p0, horizon: int) -> np.ndarray:
    """Expected state-action visit counts ``rho[s, a]`` (S, A) over ``horizon`` steps."""
    pol = np.asarray(policy, dtype=np.float64)
    D = np.asarray(p0, dtype=np.float64).copy()
    rho = np.zeros(pol.shape[-2:])
    for t in range(horizon):
        pt = pol[t] if pol.ndim == 3 else pol
        rho += D[:, None] * pt
        D = np.einsum("sa,sap->p", D[:, None] * pt, P)
    return rho


@dataclasses.dataclass
class GAILRun:
    policy: np.ndarray         # (H, S, A) final time-dependent policy
    disc_logits: np.ndarray    # (S, A) discriminator logits: D = sigmoid(logits) = P(expert | s, a)
    expert_acc: list           # discriminator accuracy on expert pairs per iteration
    policy_acc: list           # ... on policy pairs
    occupancy_l1: list         # || rho_policy - rho_expert ||_1 / horizon per iteration


def gail_tabular(P, expert_states, expert_actions, p0, n_iters: int = 60, n_policy_samples: int = 200,
                 disc_steps: int = 20, disc_lr: float = 1.0, temperature: float = 0.1, seed: int = 0) -> GAILRun:
    """Tabular GAIL: alternate discriminator logistic-regression steps and a soft-optimal policy for
    the reward ``log D(s,a) - log(1 - D(s,a))`` (= the discriminator's logit)."""
    P = np.asarray(P, dtype=np.float64)
    S, A, _ = P.shape
    es, ea = np.asarray(expert_states), np.asarray(expert_actions)
    if es.ndim != 2 or es.shape != ea.shape:
        raise ValueError("expert_states and expert_actions must share shape (n, H)")
    H = es.shape[1]
    rng = np.random.default_rng(seed)
    rho_e = np.zeros((S, A))
    np.add.at(rho_e, (es.ravel(), ea.ravel()), 1.0)
    rho_e /= es.shape[0]
    logits = np.zeros((S, A))
    pis = np.full((H, S, A), 1.0 / A)
    ea_acc, pa_acc, l1 = [], [], []
    for _ in range(n_iters):
        ps, pa = sample_trajectories(P, pis, p0, n_policy_samples, H, rng)
        rho_p = np.zeros((S, A))
        np.add.at(rho_p, (ps.ravel(), pa.ravel()), 1.0)
        rho_p /= n_policy_samples
        for _ in range(disc_steps):            # logistic loss: expert -> 1, policy -> 0 (weighted by counts)
            D = 1.0 / (1.0 + np.exp(-logits))
            grad = rho_e * (1 - D) - rho_p * D
            logits += disc_lr * grad / H
        D = 1.0 / (1.0 + np.exp(-logits))
        ea_acc.append(float((rho_e * (D > 0.5)).sum() / rho_e.sum()))
        pa_acc.append(float((rho_p * (D < 0.5)).sum() / rho_p.sum()))
        pis = soft_value_iteration(P, logits, H, temperature=temperature)
        l1.append(float(np.abs(occupancy(P, pis, p0, H) - rho_e).sum() / H))
    return GAILRun(pis, logits, ea_acc, pa_acc, l1)


__all__ = ["cartpole_expert", "collect_demonstrations", "train_bc", "DaggerRun", "dagger", "tabular_bc",
           "occupancy", "GAILRun", "gail_tabular"]


def noisy_policy(policy_fn, epsilon: float, n_actions: int = 2, seed: int = 0):
    """Wrap ``policy_fn`` so that each action is replaced by a uniformly random one with probability
    ``epsilon`` (actuation noise that pushes a policy off the expert's state distribution)."""
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    rng = np.random.default_rng(seed)

    def act(obs):
        a = np.asarray(policy_fn(obs)).copy()
        flip = rng.random(a.shape) < epsilon
        a[flip] = rng.integers(0, n_actions, size=int(flip.sum()))
        return a

    return act


__all__ += ["noisy_policy"]
