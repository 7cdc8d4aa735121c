import numpy as np
import pytest

from lib.rl.gridworld import GridWorld, open_grid, value_iteration
from lib.rl.irl import (demo_log_likelihood, expected_svf, maxent_irl, policy_agreement, sample_trajectories,
                        soft_value_iteration)
from lib.rl.policy_gradient import random_mdp


def test_soft_value_iteration_is_normalised_and_tends_to_greedy():
    mdp = random_mdp(4, 3, 3, seed=0)
    pis = soft_value_iteration(mdp.P, mdp.R, 5)
    assert pis.shape == (5, 4, 3) and np.allclose(pis.sum(-1), 1.0)
    cold = soft_value_iteration(mdp.P, mdp.R, 1, temperature=1e-3)[0]
    assert np.allclose(cold.argmax(1), mdp.R.argmax(1))


def test_expected_svf_matches_sampling():
    mdp = random_mdp(4, 2, 3, seed=1)
    pis = soft_value_iteration(mdp.P, mdp.R, 4)
    svf = expected_svf(mdp.P, pis, mdp.start)
    s, _ = sample_trajectories(mdp.P, pis, mdp.start, 20_000, 4, np.random.default_rng(0))
    emp = np.bincount(s.ravel(), minlength=4) / 20_000
    assert np.abs(svf - emp).max() < 0.03 and svf.sum() == pytest.approx(4.0)


def test_maxent_irl_recovers_expert_behaviour():
    H, W = 5, 5
    true = np.full((H, W), -0.05)
    true[0, 4] = 1.0
    true[2, 1:3] = -1.0
    env = GridWorld(open_grid(H, W, start=None))
    r = np.array([true[rc] for rc in env.cells])
    _, Q = value_iteration(env.P, np.repeat(r[:, None], 4, 1), 0.9)
    pi = np.eye(4)[Q.argmax(1)]
    s, a = sample_trajectories(env.P, pi, np.full(env.n_states, 1 / env.n_states), 30, 10, np.random.default_rng(0))
    res = maxent_irl(env.P, np.eye(env.n_states), s, a, n_iters=150)
    _, Q2 = value_iteration(env.P, np.repeat(res.reward[:, None], 4, 1), 0.9)
    assert policy_agreement(Q, Q2.argmax(1)) >= 0.9
    assert res.log_likelihoods[-1] > res.log_likelihoods[0]
    assert res.grad_norms[-1] < res.grad_norms[0]


def test_errors():
    mdp = random_mdp(3, 2, 2, seed=0)
    with pytest.raises(ValueError, match="reward"):
        soft_value_iteration(mdp.P, np.zeros(5), 3)
    with pytest.raises(ValueError, match="P must"):
        soft_value_iteration(np.zeros((3, 2)), np.zeros(3), 3)
    with pytest.raises(ValueError, match="p0"):
        expected_svf(mdp.P, np.full((2, 3, 2), 0.5), np.ones(3))
    with pytest.raises(ValueError, match="features"):
        maxent_irl(mdp.P, np.eye(4), np.zeros((2, 3), int), np.zeros((2, 3), int))
    with pytest.raises(TypeError):
        sample_trajectories(mdp.P, np.full((3, 2), 0.5), mdp.start, 2, 2, rng=0)
    assert demo_log_likelihood(np.full((2, 3, 2), 0.5), np.zeros((1, 2), int), np.zeros((1, 2), int)) == pytest.approx(2 * np.log(0.5))
