import numpy as np
import pytest

from lib.rl.gridworld import GridWorld, open_grid, value_iteration
from lib.rl.imitation import (cartpole_expert, collect_demonstrations, dagger, gail_tabular, noisy_policy, occupancy,
                              tabular_bc, train_bc)
from lib.rl.irl import expected_svf, sample_trajectories
from lib.rl.rollout import evaluate


def test_scripted_expert_balances():
    assert evaluate(cartpole_expert, "CartPole-v1", 5, seed=0).min() == 500
    with pytest.raises(ValueError):
        cartpole_expert(np.zeros(3))


def test_bc_clones_expert_and_dagger_runs():
    X, y, rets = collect_demonstrations(cartpole_expert, cartpole_expert, n_episodes=2, seed=0, max_transitions=600)
    assert X.shape == (600, 4) and rets.min() == 500
    pol = train_bc(X, y, epochs=60, seed=0)
    assert (pol.greedy(X) == y).mean() > 0.8
    run = dagger(cartpole_expert, n_iters=2, labels_per_iter=60, bc_kwargs=dict(epochs=20), eval_episodes=2,
                 epsilon=0.1)
    assert run.n_labels == [60, 120] and len(run.eval_returns) == 2
    with pytest.raises(ValueError):
        train_bc(X, y + 5)
    with pytest.raises(ValueError):
        noisy_policy(cartpole_expert, 2.0)


def test_tabular_bc_and_occupancy():
    pi = tabular_bc(np.array([[0, 0, 1]]), np.array([[1, 1, 0]]), 3, 2)
    assert np.allclose(pi, [[0, 1], [1, 0], [0.5, 0.5]])
    env = GridWorld(open_grid(3, 3))
    pol = np.full((env.n_states, 4), 0.25)
    p0 = np.eye(env.n_states)[0]
    rho = occupancy(env.P, pol, p0, 4)
    assert np.allclose(rho.sum(1), expected_svf(env.P, np.broadcast_to(pol, (4, env.n_states, 4)), p0))


def test_gail_tabular_matches_expert_occupancy():
    H, W = 5, 5
    env = GridWorld(open_grid(H, W, start=None, goal=None))
    r = -0.05 * np.ones(env.n_states)
    r[env.state_of(0, 4)] = 1.0
    _, Q = value_iteration(env.P, np.repeat(r[:, None], 4, 1), 0.9)
    pi = np.eye(4)[Q.argmax(1)]
    p0 = np.full(env.n_states, 1 / env.n_states)
    s, a = sample_trajectories(env.P, pi, p0, 30, 8, np.random.default_rng(0))
    run = gail_tabular(env.P, s, a, p0, n_iters=40, temperature=0.05)
    rho_e = np.zeros((env.n_states, 4))
    np.add.at(rho_e, (s.ravel(), a.ravel()), 1.0 / len(s))
    uniform_l1 = np.abs(occupancy(env.P, np.full((env.n_states, 4), 0.25), p0, 8) - rho_e).sum() / 8
    assert max(run.occupancy_l1[-5:]) < 0.5 * uniform_l1
    assert 0 <= min(run.expert_acc) and max(run.policy_acc) <= 1
    with pytest.raises(ValueError):
        gail_tabular(env.P, s[0], a[0], p0)
