"""PPO losses (clip, penalty, KL estimators, value loss), diagnostics and a short training smoke test."""
import numpy as np
import pytest
import torch

from lib.rl.ppo import (AdaptiveKLController, PPOConfig, clip_objective, clipped_surrogate, explained_variance,
                        kl_estimators, kl_penalty_surrogate, train_ppo, value_loss)
from lib.rl.rollout import RolloutBuffer, evaluate, make_vec_env, space_dims


def test_clip_objective_gradient_zero_outside_range_in_improving_direction():
    eps = 0.2
    r = torch.tensor([0.5, 0.9, 1.1, 1.3, 0.7], requires_grad=True)
    for A, zero_mask in ((1.0, [False, False, False, True, False]), (-1.0, [True, False, False, False, True])):
        g, = torch.autograd.grad(clip_objective(r, torch.tensor(A), eps).sum(), r)
        assert torch.equal(g == 0, torch.tensor(zero_mask))
        assert torch.all(g[~torch.tensor(zero_mask)] == A)


def test_clip_objective_numpy_matches_torch_and_validates():
    r = np.linspace(0, 2, 11)
    np.testing.assert_allclose(clip_objective(r, -2.0, 0.1), clip_objective(torch.tensor(r), -2.0, 0.1).numpy())
    with pytest.raises(ValueError, match="clip_eps"):
        clip_objective(r, 1.0, 1.5)
    with pytest.raises(ValueError, match="non-negative"):
        clip_objective(-r - 1, 1.0)


def test_clipped_surrogate_matches_formula_and_diagnostics():
    g = torch.Generator().manual_seed(0)
    old = torch.randn(100, generator=g)
    new = (old + 0.3 * torch.randn(100, generator=g)).requires_grad_(True)
    adv = torch.randn(100, generator=g)
    loss, info = clipped_surrogate(new, old, adv, 0.2)
    r = (new - old).exp()
    ref = -torch.minimum(r * adv, r.clamp(0.8, 1.2) * adv).mean()
    assert torch.isclose(loss, ref)
    assert np.isclose(info["clip_fraction"], float(((r - 1).abs() > 0.2).float().mean()))
    assert np.isclose(info["approx_kl"], float(kl_estimators(new.detach(), old)["k3"]))
    # at ratio 1 the clipped loss has the vanilla policy-gradient gradient
    p = old.clone().requires_grad_(True)
    g1, = torch.autograd.grad(clipped_surrogate(p, old, adv)[0], p)
    assert torch.allclose(g1, -adv / 100)
    # masked version = mean over the valid entries only
    mask = torch.arange(100) < 60
    lm, _ = clipped_surrogate(new, old, adv, 0.2, mask)
    l60, _ = clipped_surrogate(new[:60], old[:60], adv[:60], 0.2)
    assert torch.isclose(lm, l60)


def test_kl_estimators_unbiased_for_categoricals():
    torch.manual_seed(0)
    p_old = torch.distributions.Categorical(logits=torch.tensor([0.2, -0.5, 1.0]))
    p_new = torch.distributions.Categorical(logits=torch.tensor([0.0, 0.1, 0.6]))
    a = p_old.sample((200_000,))
    est = kl_estimators(p_new.log_prob(a), p_old.log_prob(a))
    true = float(torch.distributions.kl_divergence(p_old, p_new))
    assert abs(float(est["k1"]) - true) < 3e-3 and abs(float(est["k3"]) - true) < 3e-3
    assert float(est["k3"]) >= 0


def test_penalty_and_value_losses():
    old = torch.zeros(4)
    new = torch.tensor([0.1, -0.1, 0.2, 0.0])
    adv = torch.ones(4)
    loss, info = kl_penalty_surrogate(new, old, adv, beta=2.0)
    r = new.exp()
    assert torch.isclose(loss, -(r * adv).mean() + 2.0 * (torch.expm1(new) - new).mean())
    v, g, vo = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.5, 2.5])
    assert torch.isclose(value_loss(v, g), torch.tensor(2.5))
    assert torch.isclose(value_loss(v, g, vo, 0.2), torch.tensor((1.0 + 2.3 ** 2) / 2))
    with pytest.raises(ValueError, match="old_values"):
        value_loss(v, g, clip_eps=0.2)
    with pytest.raises(ValueError, match="beta"):
        kl_penalty_surrogate(new, old, adv, beta=-1.0)


def test_adaptive_kl_controller():
    c = AdaptiveKLController(1.0, 0.01)
    assert c.update(0.05) == 2.0
    assert c.update(0.001) == 1.0
    assert c.update(0.01) == 1.0
    with pytest.raises(ValueError):
        AdaptiveKLController(beta=0.0)


def test_shape_and_type_errors():
    with pytest.raises(ValueError, match="share one shape"):
        clipped_surrogate(torch.zeros(3), torch.zeros(4), torch.zeros(3))
    with pytest.raises(TypeError, match="torch tensor"):
        clipped_surrogate(np.zeros(3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="clip_eps"):
        clipped_surrogate(torch.zeros(3), torch.zeros(3), torch.zeros(3), clip_eps=0.0)
    with pytest.raises(ValueError, match="variant"):
        train_ppo(PPOConfig(variant="trust"))
    with pytest.raises(ValueError, match="batch_size"):
        train_ppo(PPOConfig(batch_size=10_000))
    with pytest.raises(ValueError, match="n_envs"):
        train_ppo(PPOConfig(n_envs=0))


def test_explained_variance():
    y = np.array([1.0, 2.0, 3.0])
    assert explained_variance(y, y) == 1.0
    assert np.isclose(explained_variance(np.full(3, 2.0), y), 0.0)
    assert np.isnan(explained_variance(y, np.ones(3)))


def test_rollout_buffer_records_truncation_and_final_values():
    from lib.rl.actor_critic import ActorCritic
    from lib.rl.rollout import collect_rollout

    env = make_vec_env("CartPole-v1", 2, 0, max_episode_steps=7)   # truncates every 7 steps
    obs_dim, act_dim, cont = space_dims(env)
    torch.manual_seed(0)
    pol = ActorCritic(obs_dim, act_dim)
    buf = RolloutBuffer(20, 2, obs_dim, act_dim, cont)
    obs, _ = env.reset(seed=0)
    stats = {}
    collect_rollout(env, pol, buf, obs, stats)
    ended = (buf.terminated + buf.truncated).sum()
    assert ended == len(stats["returns"]) and ended >= 2
    assert np.all(buf.final_values[buf.truncated == 1] != 0)
    assert np.all(buf.final_values[buf.truncated == 0] == 0)
    with pytest.raises(RuntimeError, match="full"):
        buf.add(obs, np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    buf.compute_advantages(np.zeros(2), 0.99, 0.95)
    mbs = list(buf.minibatches(16, np.random.default_rng(0)))
    assert len(mbs) == 3 and sum(len(m["obs"]) for m in mbs) == 40
    with pytest.raises(ValueError, match="batch_size"):
        next(buf.minibatches(41, np.random.default_rng(0)))


def test_evaluate_validation():
    with pytest.raises(TypeError):
        evaluate("not callable", "CartPole-v1")
    with pytest.raises(ValueError):
        evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=0)
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env("CartPole-v1", 0)
    with pytest.raises(TypeError, match="visit"):
        evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=1, visit=3)


def test_evaluate_visit_sees_every_step_of_the_running_episodes():
    seen = []
    rets = evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=3, seed=0,
                    visit=lambda obs, alive: seen.append((obs.copy(), alive.copy())))
    # CartPole pays 1 per step, so each episode's return is the number of steps it was alive before each step
    assert np.array_equal(np.sum([a for _, a in seen], axis=0), rets)
    assert all(o.shape == (3, 4) for o, _ in seen) and seen[0][1].all() and seen[-1][1].any()



def test_short_ppo_run_learns_and_logs_bounded_diagnostics():
    torch.set_num_threads(1)
    cfg = PPOConfig(total_steps=12_288, n_epochs=10, eval_every=6_000, eval_episodes=5)
    _, log = train_ppo(cfg, seed=0)
    assert log.eval_returns[-1] > 60                     # a random policy scores ~20
    for u in log.updates:
        assert len(u["approx_kl"]) == cfg.n_epochs
        assert all(0 <= c <= 1 for c in u["clip_fraction"])
        assert all(0 <= k < 0.2 for k in u["approx_kl"])
    # penalty variant runs and adapts beta
    cfg_p = PPOConfig(total_steps=2_560, variant="penalty", n_epochs=4, eval_every=2_560, eval_episodes=2)
    _, log_p = train_ppo(cfg_p, seed=0)
    assert all("beta" in u and "kl_after" in u for u in log_p.updates)
    assert len({u["beta"] for u in log_p.updates}) > 1
