"""lib.rl.policy_gradient: the policy-gradient theorem checked three ways on small MDPs."""
import numpy as np
import pytest
import torch

from lib.rl import policy_gradient as pg
from lib.rl.tabular import FiniteMDP


@pytest.fixture(params=[(2, 2, 3, 1.0, 0), (3, 2, 4, 0.9, 3), (2, 3, 3, 0.5, 7)])
def case(request):
    S, A, H, gamma, seed = request.param
    mdp = pg.random_mdp(S, A, H, gamma, seed)
    theta = np.random.default_rng(seed).normal(size=(S, A))
    return mdp, theta


def test_softmax_policy_rows_sum_to_one_and_match_torch(case):
    _, theta = case
    pi = pg.softmax_policy(theta)
    np.testing.assert_allclose(pi.sum(1), 1.0)
    np.testing.assert_allclose(pi, torch.softmax(torch.tensor(theta), 1).numpy(), atol=1e-12)
    np.testing.assert_allclose(pg.softmax_policy(theta + 1000.0), pi, atol=1e-12)  # stable


def test_score_function_matches_autograd(case):
    _, theta = case
    th = torch.tensor(theta, requires_grad=True)
    logp = torch.log_softmax(th, 1)[1, 0] if theta.shape[0] > 1 else torch.log_softmax(th, 1)[0, 0]
    logp.backward()
    s = 1 if theta.shape[0] > 1 else 0
    np.testing.assert_allclose(pg.score_function(theta, s, 0), th.grad.numpy(), atol=1e-12)


def test_exact_objective_equals_enumeration(case):
    mdp, theta = case
    states, actions, rewards, probs = pg.enumerate_trajectories(mdp, theta)
    assert probs.sum() == pytest.approx(1.0)
    returns = (rewards * mdp.gamma ** np.arange(mdp.horizon)).sum(1)
    assert pg.exact_objective(mdp, theta) == pytest.approx(probs @ returns, abs=1e-12)


def test_three_gradients_agree(case):
    mdp, theta = case
    g = pg.exact_gradient(mdp, theta)
    for est in pg.ESTIMATORS:
        np.testing.assert_allclose(pg.pg_theorem_gradient(mdp, theta, est), g, atol=1e-10)
    fd = pg.finite_difference_gradient(lambda t: pg.exact_objective(mdp, t), theta)
    np.testing.assert_allclose(fd, g, atol=1e-7)


def test_reinforce_is_unbiased_within_standard_error():
    mdp = pg.random_mdp(3, 2, 3, 0.9, seed=1)
    theta = np.random.default_rng(0).normal(size=(3, 2))
    g = pg.exact_gradient(mdp, theta)
    s, a, r = pg.sample_episodes(mdp, theta, 40000, np.random.default_rng(0))
    for est in pg.ESTIMATORS:
        samples = pg.reinforce_gradient_samples(mdp, theta, s, a, r, est)
        se = samples.std(0, ddof=1) / np.sqrt(len(samples))
        assert (np.abs(samples.mean(0) - g) / se).max() < 4.5, est


def test_sampling_matches_distribution():
    mdp = pg.random_mdp(2, 2, 1, 1.0, seed=2)
    theta = np.zeros((2, 2))
    s, a, _ = pg.sample_episodes(mdp, theta, 50000, np.random.default_rng(1))
    assert np.mean(s[:, 0] == 0) == pytest.approx(mdp.start[0], abs=0.01)
    assert np.mean(a == 0) == pytest.approx(0.5, abs=0.01)


def test_value_tables_terminal_zero():
    mdp = pg.random_mdp(2, 2, 3, 0.9, seed=0)
    V, Q = pg.value_tables(mdp, np.zeros((2, 2)))
    assert V.shape == (4, 2) and Q.shape == (3, 2, 2) and np.all(V[-1] == 0)
    np.testing.assert_allclose(Q[-1], mdp.R)


def test_validation_errors():
    with pytest.raises(ValueError, match="shape"):
        FiniteMDP(np.ones((2, 2)), np.zeros((2, 2)), start=np.array([1.0, 0]), horizon=2)
    P = np.full((2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="probability"):
        FiniteMDP(P * 2, np.zeros((2, 2)), start=np.array([1.0, 0]), horizon=2)
    with pytest.raises(ValueError, match="start"):
        FiniteMDP(P, np.zeros((2, 2)), start=np.array([0.7, 0.7]), horizon=2)
    with pytest.raises(ValueError, match="horizon"):
        FiniteMDP(P, np.zeros((2, 2)), start=np.array([1.0, 0]), horizon=0)
    with pytest.raises(ValueError, match="horizon"):
        FiniteMDP(P, np.zeros((2, 2)), start=np.array([1.0, 0]))
    with pytest.raises(ValueError, match="gamma"):
        FiniteMDP(P, np.zeros((2, 2)), start=np.array([1.0, 0]), horizon=2, gamma=1.5)
    with pytest.raises(ValueError, match="P_end must be 0"):
        FiniteMDP(P * 0.5, np.zeros((2, 2)), np.full((2, 2), 0.5), horizon=2)
    mdp = FiniteMDP(P, np.zeros((2, 2)), start=np.array([1.0, 0]), horizon=2)
    with pytest.raises(ValueError, match="theta has shape"):
        pg.exact_gradient(mdp, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        pg.softmax_policy(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="estimator"):
        pg.reinforce_gradient_samples(mdp, np.zeros((2, 2)), np.zeros((1, 2), int), np.zeros((1, 2), int),
                                      np.zeros((1, 2)), "vanilla")
    with pytest.raises(ValueError, match="baseline"):
        pg.reinforce_gradient_samples(mdp, np.zeros((2, 2)), np.zeros((1, 2), int), np.zeros((1, 2), int),
                                      np.zeros((1, 2)), "baseline", baseline="mean")
    with pytest.raises(TypeError, match="baseline"):
        pg.reinforce_gradient_samples(mdp, np.zeros((2, 2)), np.zeros((1, 2), int), np.zeros((1, 2), int),
                                      np.zeros((1, 2)), "baseline", baseline=[1.0])
    with pytest.raises(ValueError, match="theta"):
        pg.check_theta(mdp, np.zeros(2))
    with pytest.raises(ValueError, match="horizon"):
        pg.reinforce_gradient_samples(mdp, np.zeros((2, 2)), np.zeros((1, 3), int), np.zeros((1, 3), int),
                                      np.zeros((1, 3)))
    with pytest.raises(TypeError, match="Generator"):
        pg.sample_episodes(mdp, np.zeros((2, 2)), 5, rng=0)
    with pytest.raises(ValueError, match="state must be"):
        pg.score_function(np.zeros((2, 2)), 5, 0)
    with pytest.raises(ValueError, match="eps"):
        pg.finite_difference_gradient(lambda t: 0.0, np.zeros(2), eps=0)


def test_score_weighted_sum_validates_and_matches_definition():
    theta = np.random.default_rng(0).normal(size=(2, 3))
    states, actions = np.array([[0, 1]]), np.array([[2, 0]])
    coef = np.array([[0.5, -1.0]])
    expected = 0.5 * pg.score_function(theta, 0, 2) - 1.0 * pg.score_function(theta, 1, 0)
    np.testing.assert_allclose(pg.score_weighted_sum(theta, states, actions, coef)[0], expected)
    with pytest.raises(ValueError, match="coef"):
        pg.score_weighted_sum(theta, states, actions, np.ones((1, 3)))


def test_finite_mdp_is_a_tabular_mdp_without_episode_ends():
    from lib.rl.tabular import TabularMDP, policy_evaluation

    mdp = pg.random_mdp(3, 2, 4, 0.9, seed=0)
    assert isinstance(mdp, TabularMDP) and np.all(mdp.P_end == 0) and not mdp.terminal.any()
    # the tabular tools apply: with a long horizon the finite-horizon value tends to V_pi
    long = FiniteMDP(mdp.P, mdp.R, start=mdp.start, horizon=400, gamma=0.9)
    theta = np.random.default_rng(0).normal(size=(3, 2))
    V, _ = pg.value_tables(long, theta)
    np.testing.assert_allclose(V[0], policy_evaluation(long, pg.softmax_policy(theta), 0.9), atol=1e-12)
