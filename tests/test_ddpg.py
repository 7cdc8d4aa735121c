"""DPG gradient vs autograd and vs a closed form; ensemble critics; TD3 target; soft updates; replay; training."""
import numpy as np
import pytest
import torch

from lib.rl.ddpg import (Actor, Critics, DDPGConfig, EnsembleMLP, ddpg_target, dpg_gradient, load_agent,
                         save_agent, train_ddpg)


def test_dpg_gradient_equals_autograd_and_closed_form():
    torch.manual_seed(0)
    K = torch.tensor([[0.5, -1.0, 0.3]])
    actor = torch.nn.Linear(3, 1, bias=False)
    q = lambda s, a: -((a - s @ K.T) ** 2).sum(-1) + s.pow(2).sum(-1)    # known Q, maximised at a = K s
    s = torch.randn(64, 3)
    dpg = dpg_gradient(actor, q, s)
    auto = torch.autograd.grad(q(s, actor(s)).mean(), list(actor.parameters()))
    assert torch.allclose(dpg[0], auto[0], atol=1e-6)
    closed = -2 * (actor.weight.detach() - K) @ (s.T @ s) / len(s)        # -2 (W - K) E[s s^T]
    assert torch.allclose(dpg[0], closed, atol=1e-5)
    # with a neural actor and a neural critic too
    a2, c2 = Actor(3, 2, 2.0, (8,)), Critics(3, 2, (8,), 1)
    g1 = dpg_gradient(a2, lambda s, a: c2(s, a)[0], s)
    g2 = torch.autograd.grad(c2(s, a2(s))[0].mean(), list(a2.parameters()))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(g1, g2))
    with pytest.raises(ValueError, match="q_fn must return"):
        dpg_gradient(actor, lambda s, a: a, s)


def test_ensemble_equals_independent_mlps():
    torch.manual_seed(0)
    ens = EnsembleMLP(2, [5, 7, 1])
    x = torch.randn(4, 5)
    out = ens(x)
    for k in range(2):
        h = torch.relu(x @ ens.weights[0][k] + ens.biases[0][k])
        assert torch.allclose(out[k], h @ ens.weights[1][k] + ens.biases[1][k], atol=1e-6)


def test_td3_target_uses_min_of_twin_critics_and_clipped_smoothing():
    torch.manual_seed(0)
    actor_t, critics_t = Actor(3, 1, 2.0, (8,)), Critics(3, 1, (8,), 2)
    s2 = torch.randn(10, 3)
    r, term = torch.ones(10), torch.zeros(10)
    term[0] = 1.0
    y = ddpg_target(actor_t, critics_t, r, s2, term, 0.98, 2.0, policy_noise=0.0, noise_clip=0.5)
    q = critics_t(s2, actor_t(s2))
    assert torch.allclose(y, r + 0.98 * (1 - term) * q.min(0).values)
    assert y[0] == 1.0
    # DDPG (no smoothing, one critic): y = r + gamma Q'(s', mu'(s'))
    c1 = Critics(3, 1, (8,), 1)
    expected = r + 0.9 * (1 - term) * c1(s2, actor_t(s2))[0]
    assert torch.allclose(ddpg_target(actor_t, c1, r, s2, term, 0.9, 2.0), expected)
    # smoothing noise is clipped: the target action stays within noise_clip * max_action of mu'(s')
    seen = []
    spy = lambda s, a: (seen.append((a - actor_t(s)).detach()), critics_t(s, a))[1]  # noqa: E731
    ys = torch.stack([ddpg_target(actor_t, spy, r, s2, term, 0.98, 2.0, policy_noise=10.0, noise_clip=0.1)
                      for _ in range(5)])
    assert torch.isfinite(ys).all() and all(d.abs().max() <= 0.2 + 1e-6 for d in seen)
    assert any(d.abs().max() > 0.19 for d in seen)              # the clip binds at sigma = 20


def test_delayed_updates_and_soft_targets(monkeypatch):
    import lib.rl.ddpg as D

    torch.set_num_threads(1)
    moved = []
    real = D.soft_update
    monkeypatch.setattr(D, "soft_update", lambda t, s, tau: (moved.append(tau), real(t, s, tau))[1])
    cfg = DDPGConfig(hidden=(8,), td3=True, policy_delay=3, tau=0.5, total_steps=60, learning_starts=50,
                     batch_size=16, log_every=1, eval_every=60, eval_episodes=1)
    run = train_ddpg(cfg)
    # 10 critic steps; the actor and both targets moved after critic steps 3, 6, 9
    assert [u["actor_updated"] for u in run.log.updates] == [float(k % 3 == 0) for k in range(1, 11)]
    assert moved == [0.5] * 6
    moved.clear()
    run = train_ddpg(DDPGConfig(hidden=(8,), td3=False, total_steps=55, learning_starts=50, batch_size=16,
                                eval_every=55, eval_episodes=1))
    assert run.critics(torch.randn(2, 3), torch.randn(2, 1)).shape == (1, 2)
    assert len(moved) == 2 * 5                                    # DDPG: every critic step


def test_config_validation():
    with pytest.raises(ValueError, match="DDPGConfig.batch_size"):
        DDPGConfig(batch_size=0)
    with pytest.raises(ValueError, match="DDPGConfig.gamma"):
        DDPGConfig(gamma=2.0)
    for field, bad in (("tau", 0.0), ("actor_lr", -1e-3), ("expl_noise", -0.1), ("learning_starts", -1),
                       ("log_every", 0), ("seed", 1.5)):
        with pytest.raises(ValueError, match=f"DDPGConfig.{field}"):
            DDPGConfig(**{field: bad})
    with pytest.raises(TypeError, match="env_id"):
        DDPGConfig(env_id=3)
    with pytest.raises(ValueError, match="Box"):
        train_ddpg(DDPGConfig(env_id="CartPole-v1", total_steps=10))


def test_short_td3_run_and_checkpoint_roundtrip(tmp_path):
    torch.set_num_threads(1)
    cfg = DDPGConfig(total_steps=1_500, learning_starts=500, hidden=(32, 32), batch_size=64, eval_every=1_500,
                     eval_episodes=2)
    run = train_ddpg(cfg)
    log = run.log
    assert len(log.eval_returns) == 1 and np.isfinite(log.eval_returns[0]) and len(log.series("critic_loss")) == 10
    assert list(log.series("step")) == list(range(600, 1600, 100))
    save_agent(run, tmp_path / "td3", {"eval_return": log.eval_returns[0]})
    run2, meta = load_agent(tmp_path / "td3")
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(run.act(obs), run2.act(obs))
    assert meta["config"]["hidden"] == [32, 32]
