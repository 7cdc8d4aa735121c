"""DPG gradient vs autograd and vs a closed form; ensemble critics; TD3 target; soft updates; replay; training."""
import numpy as np
import pytest
import torch

from lib.rl.ddpg import (Actor, Critics, DDPGAgent, DDPGConfig, EnsembleMLP, dpg_gradient, load_agent,
                         save_agent, train_ddpg)
from lib.rl.replay import ReplayBuffer


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
    cfg = DDPGConfig(hidden=(8,), td3=True, policy_noise=0.0)
    ag = DDPGAgent(3, 1, 2.0, cfg)
    s2 = torch.randn(10, 3)
    r, term = torch.ones(10), torch.zeros(10)
    term[0] = 1.0
    y = ag.target_q(r, s2, term)
    q = ag.critics_targ(s2, ag.actor_targ(s2))
    assert torch.allclose(y, r + cfg.gamma * (1 - term) * q.min(0).values)
    assert y[0] == 1.0
    # smoothing noise is clipped: the target action stays within noise_clip of mu'(s')
    ag.cfg = DDPGConfig(hidden=(8,), td3=True, policy_noise=10.0, noise_clip=0.1)
    ys = torch.stack([ag.target_q(r, s2, term) for _ in range(5)])
    lo = ag.critics_targ(s2, (ag.actor_targ(s2) - 0.2).clamp(-2, 2))
    assert torch.isfinite(ys).all() and lo.shape == (2, 10)


def test_delayed_updates_and_soft_targets():
    torch.manual_seed(0)
    cfg = DDPGConfig(hidden=(8,), td3=True, policy_delay=3, tau=0.5)
    ag = DDPGAgent(3, 1, 2.0, cfg)
    buf = ReplayBuffer(50, (3,), action_shape=(1,), action_dtype=np.float32)
    rng = np.random.default_rng(0)
    for _ in range(50):
        buf.add(rng.normal(size=3), rng.normal(size=1), 1.0, rng.normal(size=3), 0.0)
    targ0 = [p.clone() for p in ag.actor_targ.parameters()]
    actor0 = [p.clone() for p in ag.actor.parameters()]
    infos = [ag.update(buf.sample(16, rng)) for _ in range(3)]
    assert ["actor_loss" in i for i in infos] == [False, False, True]
    for t0, a0, t in zip(targ0, actor0, ag.actor_targ.parameters()):
        assert not torch.equal(t, t0)
    ddpg = DDPGAgent(3, 1, 2.0, DDPGConfig(hidden=(8,), td3=False))
    assert ddpg.critics(torch.randn(2, 3), torch.randn(2, 1)).shape == (1, 2)
    assert "actor_loss" in ddpg.update(buf.sample(16, rng))


def test_continuous_replay_buffer_and_config_validation():
    buf = ReplayBuffer(3, (2,), action_shape=(1,), action_dtype=np.float32)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2, np.random.default_rng(0))
    for i in range(5):
        buf.add(np.full(2, i), [i + 0.5], i, np.zeros(2), 0.0)
    assert buf.size == 3 and set(buf.rewards) == {2.0, 3.0, 4.0}
    batch = buf.sample(4, np.random.default_rng(0))
    assert batch["actions"].shape == (4, 1) and batch["actions"].dtype == np.float32
    with pytest.raises(ValueError):
        ReplayBuffer(0, (2,))
    with pytest.raises(ValueError, match="batch_size"):
        DDPGConfig(batch_size=0)
    with pytest.raises(ValueError, match="gamma"):
        DDPGConfig(gamma=2.0)
    with pytest.raises(ValueError, match="Box"):
        train_ddpg(DDPGConfig(env_id="CartPole-v1", total_steps=10))


def test_short_td3_run_and_checkpoint_roundtrip(tmp_path):
    torch.set_num_threads(1)
    cfg = DDPGConfig(total_steps=1_500, learning_starts=500, hidden=(32, 32), batch_size=64, eval_every=1_500,
                     eval_episodes=2)
    agent, log = train_ddpg(cfg, seed=0)
    assert len(log.eval_returns) == 1 and np.isfinite(log.eval_returns[0]) and len(log.critic_loss) == 10
    save_agent(agent, tmp_path / "td3", {"eval_return": log.eval_returns[0]})
    agent2, meta = load_agent(tmp_path / "td3")
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), agent2.act(obs))
    assert meta["config"]["hidden"] == [32, 32]
