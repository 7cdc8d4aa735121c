"""Actor-critic network, A2C loss and training, baseline variance estimators on a tabular MDP."""
import numpy as np
import pytest
import torch

from lib.rl.actor_critic import A2CConfig, A2CRun, ActorCritic, a2c_loss, make_policy, train_a2c
from lib.rl.policy_gradient import exact_gradient, random_mdp, reinforce_gradient_samples, sample_episodes


def test_actor_critic_shapes_and_validation():
    pol = ActorCritic(4, 3)
    obs = torch.randn(5, 4)
    a, lp, v = pol.act(obs)
    assert a.shape == (5,) and lp.shape == (5,) and v.shape == (5,)
    lp2, ent, v2 = pol.evaluate_actions(obs, a)
    assert torch.allclose(lp, lp2) and torch.all(ent > 0)
    assert pol.deterministic(obs.numpy()).shape == (5,)
    cont = ActorCritic(3, 2, continuous=True)
    a, lp, _ = cont.act(torch.randn(6, 3))
    assert a.shape == (6, 2) and lp.shape == (6,)
    with pytest.raises(ValueError, match="shape"):
        pol.value(torch.randn(5, 3))
    with pytest.raises(TypeError, match="torch tensor"):
        pol.value(np.zeros((5, 4)))
    with pytest.raises(ValueError):
        ActorCritic(0, 2)


def test_a2c_loss_terms():
    lp = torch.tensor([-0.5, -1.0], requires_grad=True)
    loss, info = a2c_loss(lp, torch.tensor([1.0, -2.0]), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]),
                          torch.tensor([0.6, 0.6]), vf_coef=0.5, ent_coef=0.1)
    assert np.isclose(info["policy_loss"], -(-0.5 * 1.0 + -1.0 * -2.0) / 2)
    assert np.isclose(info["value_loss"], 0.5)
    assert np.isclose(float(loss), info["policy_loss"] + 0.25 - 0.06)
    with pytest.raises(ValueError, match="advantages"):
        a2c_loss(lp, torch.zeros(3), torch.zeros(2), torch.zeros(2), torch.zeros(2))


def test_baseline_estimators_unbiased_and_value_reduces_variance():
    """The actor-critic section's claim on a tabular MDP: every baseline is unbiased, V(s) cuts variance
    (the estimator is ``reinforce_gradient_samples(..., "baseline", baseline=b)``)."""
    mdp = random_mdp(n_states=3, n_actions=2, horizon=4, gamma=0.9, seed=3)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(3, 2))
    s, a, r = sample_episodes(mdp, theta, 20_000, rng)
    true = exact_gradient(mdp, theta)
    var = {}
    for b in (0.0, 2.0, "value"):
        g = reinforce_gradient_samples(mdp, theta, s, a, r, "baseline", baseline=b)
        se = g.std(0) / np.sqrt(len(g))
        assert np.all(np.abs(g.mean(0) - true) <= 4 * se + 1e-12)
        var[str(b)] = g.var(0).sum()
    assert var["value"] < var["0.0"]
    # a zero baseline is the reward-to-go estimator
    np.testing.assert_allclose(reinforce_gradient_samples(mdp, theta, s[:50], a[:50], r[:50], "baseline", 0.0),
                               reinforce_gradient_samples(mdp, theta, s[:50], a[:50], r[:50], "reward_to_go"))
    with pytest.raises(ValueError, match="baseline"):
        reinforce_gradient_samples(mdp, theta, s, a, r, "baseline", "mean")
    with pytest.raises(TypeError, match="baseline"):
        reinforce_gradient_samples(mdp, theta, s, a, r, "baseline", [1.0])
    with pytest.raises(ValueError, match="share shape"):
        reinforce_gradient_samples(mdp, theta, s, a[:, :2], r, "baseline", 0.0)


def test_short_a2c_run_improves():
    torch.set_num_threads(1)
    run = train_a2c(A2CConfig(total_steps=20_000, eval_every=10_000, eval_episodes=5))
    assert isinstance(run, A2CRun) and isinstance(run.policy, ActorCritic)
    log = run.log
    assert max(log.eval_returns) > 100
    assert all(np.isfinite(u["value_loss"]) for u in log.updates)
    assert log.eval_steps == [10_000, 20_000] and len(log.updates) == 20_000 // 40


@pytest.mark.parametrize("kwargs, match", [
    ({"gamma": 1.5}, "A2CConfig.gamma"),
    ({"n_steps": 0}, "A2CConfig.n_steps"),
    ({"rms_alpha": 1.0}, "A2CConfig.rms_alpha"),
    ({"max_grad_norm": 0}, "A2CConfig.max_grad_norm"),
    ({"vf_coef": -1}, "A2CConfig.vf_coef"),
    ({"stop_return": float("nan")}, "A2CConfig.stop_return"),
])
def test_a2c_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A2CConfig(**kwargs)


def test_make_policy_is_seeded_and_sized_for_the_env():
    a, b = make_policy(A2CConfig(seed=3)), make_policy(A2CConfig(seed=3))
    assert (a.obs_dim, a.act_dim, a.continuous) == (4, 2, False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
