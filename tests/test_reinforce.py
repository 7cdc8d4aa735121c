import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from lib.rl.policy_gradient import finite_difference_gradient, random_mdp
from lib.rl.reinforce import (CategoricalPolicy, ReinforceConfig, exact_objective_of_params,
                              exact_surrogate_gradient, reinforce_loss, reward_to_go, sampled_surrogate_gradient,
                              train_reinforce)


def _policy():
    torch.manual_seed(0)
    pol = CategoricalPolicy(3, 2, hidden=(4,)).double()
    with torch.no_grad():
        for p in pol.parameters():
            p.normal_(0.0, 0.5)
    return pol


def test_expected_estimator_equals_finite_differences():
    mdp = random_mdp(3, 2, 3, gamma=0.9, seed=1)
    pol = _policy()
    w = parameters_to_vector(pol.parameters()).detach().numpy()
    fd = finite_difference_gradient(lambda x: exact_objective_of_params(pol, mdp, x), w, 1e-6)
    assert np.allclose(exact_surrogate_gradient(pol, mdp), fd, atol=1e-7)
    assert np.allclose(exact_surrogate_gradient(pol, mdp, use_baseline=True), fd, atol=1e-7)
    # parameters restored after the finite differences
    assert np.array_equal(parameters_to_vector(pol.parameters()).detach().numpy(), w)


def test_dropping_gamma_t_biases_the_discounted_gradient():
    mdp = random_mdp(3, 2, 3, gamma=0.9, seed=1)
    pol = _policy()
    w = parameters_to_vector(pol.parameters()).detach().numpy()
    fd = finite_difference_gradient(lambda x: exact_objective_of_params(pol, mdp, x), w, 1e-6)
    biased = exact_surrogate_gradient(pol, mdp, discount_weights=False)
    assert np.abs(biased - fd).max() > 1e-3
    # with gamma = 1 the weights are all one: both estimators coincide and are unbiased
    mdp1 = random_mdp(3, 2, 3, gamma=1.0, seed=1)
    assert np.allclose(exact_surrogate_gradient(pol, mdp1, discount_weights=False),
                       exact_surrogate_gradient(pol, mdp1))
    # the sampled estimator without gamma^t is consistent with its own exact expectation
    est = sampled_surrogate_gradient(pol, mdp, 20_000, seed=0, discount_weights=False)
    assert np.abs(est - biased).max() < 0.02


def test_sampled_estimator_is_close_with_many_episodes():
    mdp = random_mdp(3, 2, 3, gamma=1.0, seed=2)
    pol = _policy()
    exact = exact_surrogate_gradient(pol, mdp)
    est = sampled_surrogate_gradient(pol, mdp, 20_000, seed=0, use_baseline=True)
    assert np.abs(est - exact).max() < 0.02


def test_reward_to_go_and_loss():
    R = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    M = np.array([[1, 1], [1, 0], [1, 0]])
    G = reward_to_go(R, M, 0.5)
    assert np.allclose(G[:, 0], [1.75, 1.5, 1.0]) and np.allclose(G[:, 1], [1.0, 0.0, 0.0])
    lp = torch.log(torch.full((3, 2), 0.5, requires_grad=True))
    loss = reinforce_loss(lp, G, mask=M)
    assert float(loss.detach()) == pytest.approx(-np.log(0.5) * (1.75 + 1.5 + 1.0 + 1.0) / 2)
    with pytest.raises(TypeError):
        reinforce_loss(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        reinforce_loss(torch.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="baseline"):
        reinforce_loss(torch.zeros(3), np.zeros(3), baseline=np.zeros(2))
    with pytest.raises(ValueError):
        reward_to_go(np.zeros(3), np.zeros(3), 0.9)


@pytest.mark.parametrize("kwargs, match", [
    ({"baseline": "mean"}, "ReinforceConfig.baseline"),
    ({"n_updates": 0}, "ReinforceConfig.n_updates"),
    ({"gamma": 1.2}, "ReinforceConfig.gamma"),
    ({"lr": -1.0}, "ReinforceConfig.lr"),
    ({"value_epochs": 0}, "ReinforceConfig.value_epochs"),
    ({"seed": -3}, "ReinforceConfig.seed"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReinforceConfig(**kwargs)


def test_reinforce_improves_on_cartpole():
    r = train_reinforce(ReinforceConfig(n_updates=12, eval_every=6, stop_return=None, seed=0))
    batch_returns = r.log.series("batch_return")
    assert batch_returns[-1] > batch_returns[0]
    assert len(r.log.eval_returns) == 2 and r.log.eval_steps[-1] == r.log.updates[-1]["step"]
    assert r.log.series("update").tolist() == list(range(1, 13)) and r.value is not None
