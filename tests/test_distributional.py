import dataclasses

import numpy as np
import pytest
import torch

from lib.rl.distributional import (C51Config, categorical_projection, make_support, monte_carlo_returns,
                                   train_c51, wasserstein1)
from lib.rl.envs import RiskyChain


def test_projection_hand_computed():
    z = torch.tensor([0.0, 1.0, 2.0, 3.0])
    p = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.5]])
    # row 0: r=0.5, gamma=1: atom 1 -> 1.5, split 0.5/0.5 between atoms 1 and 2
    # row 1: terminal with r=2.25: all mass at 2.25 -> 0.75 on atom 2, 0.25 on atom 3
    out = categorical_projection(p, torch.tensor([0.5, 2.25]), torch.tensor([0.0, 1.0]), 1.0, z)
    assert torch.allclose(out, torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.75, 0.25]]))


def test_projection_clips_and_preserves_mean_inside_support():
    z = make_support(-2, 2, 9)
    rng = np.random.default_rng(0)
    p = torch.as_tensor(rng.dirichlet(np.ones(9), size=5))
    r = torch.as_tensor(rng.uniform(-0.3, 0.3, size=5))
    out = categorical_projection(p, r, torch.zeros(5, dtype=torch.float64), 0.5, z)
    assert torch.allclose(out.sum(1), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(out @ z, r + 0.5 * (p @ z))              # linear interpolation keeps the mean
    far = categorical_projection(p, torch.full((5,), 10.0, dtype=torch.float64), torch.zeros(5), 0.5, z)
    assert torch.allclose(far[:, -1], torch.ones(5, dtype=torch.float64))   # clipped to v_max


def test_projection_errors():
    z = make_support(0, 1, 3)
    with pytest.raises(ValueError, match="next_probs"):
        categorical_projection(torch.ones(2, 4) / 4, torch.zeros(2), torch.zeros(2), 0.9, z)
    with pytest.raises(ValueError, match="probability"):
        categorical_projection(torch.ones(2, 3), torch.zeros(2), torch.zeros(2), 0.9, z)
    with pytest.raises(ValueError, match="evenly"):
        categorical_projection(torch.ones(1, 3) / 3, torch.zeros(1), torch.zeros(1), 0.9, torch.tensor([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError):
        make_support(1, 0, 5)


def test_wasserstein1():
    z = np.array([0.0, 1.0])
    assert wasserstein1(z, np.array([1.0, 0.0]), np.ones(10)) == pytest.approx(1.0)
    assert wasserstein1(z, np.array([0.5, 0.5]), np.array([0.0, 1.0])) == pytest.approx(0.0)


def test_c51_learns_return_distribution_of_risky_chain():
    env = RiskyChain(length=2)
    run = train_c51(C51Config(env_id=lambda: RiskyChain(length=2), total_steps=2500, v_min=-4, v_max=9, n_atoms=53))
    net, z, losses = run.net, run.support, run.log.series("loss")
    o, _ = env.reset(seed=0)
    with torch.no_grad():
        P = net(torch.as_tensor(o)[None])[0].numpy()
    policy = lambda obs: int((net(torch.as_tensor(obs)[None]) * z).sum(-1).argmax().item())  # noqa: E731
    mc = monte_carlo_returns(RiskyChain(length=2), policy, 1, 3000, 0.9, seed=1)
    assert wasserstein1(z.numpy(), P[1], mc) < 0.3
    assert np.mean(losses[-100:]) < np.mean(losses[:100])


def test_lr_end_decays_the_step_size_linearly(monkeypatch):
    import lib.rl.distributional as dist

    seen = []
    real_loss = dist.c51_loss

    def spy(net, tgt, batch, support, gamma):
        seen.append(spy.opt_lr())
        return real_loss(net, tgt, batch, support, gamma)

    real_adam = torch.optim.Adam

    def adam(*a, **k):
        opt = real_adam(*a, **k)
        spy.opt_lr = lambda: opt.param_groups[0]["lr"]
        return opt

    monkeypatch.setattr(dist, "c51_loss", spy)
    monkeypatch.setattr(torch.optim, "Adam", adam)
    cfg = C51Config(env_id=lambda: RiskyChain(length=2), total_steps=300, learning_starts=100, lr=1e-3, lr_end=1e-4,
                    hidden=(8,))
    train_c51(cfg)
    assert len(seen) == 200
    assert seen[0] == pytest.approx(1e-3) and seen[-1] == pytest.approx(1e-4 + 0.9e-3 / 200)
    assert all(a > b for a, b in zip(seen, seen[1:]))
    seen.clear()
    train_c51(dataclasses.replace(cfg, lr_end=None))  # default: constant
    assert set(seen) == {1e-3}


@pytest.mark.parametrize("field, bad", [("lr", 0.0), ("lr_end", -1e-4), ("lr_end", True)])
def test_c51_config_rejects_bad_step_sizes(field, bad):
    with pytest.raises(ValueError, match=f"C51Config.{field} must be a positive number"):
        C51Config(total_steps=10, hidden=(8,), **{field: bad})


def test_c51_config_validation():
    for field, bad in (("n_atoms", 1), ("gamma", 1.5), ("batch_size", 0), ("eps_end", 2.0), ("seed", -1)):
        with pytest.raises(ValueError, match=f"C51Config.{field}"):
            C51Config(**{field: bad})
    with pytest.raises(ValueError, match="C51Config.v_max"):
        C51Config(v_min=1.0, v_max=0.0)
    with pytest.raises(TypeError, match="env_id"):
        C51Config(env_id=None)


def test_c51_loss_uses_the_checked_projection(monkeypatch):
    """The loop trains on the projection the section teaches (categorical_projection)."""
    import lib.rl.distributional as dist

    calls = []
    real = dist.categorical_projection
    monkeypatch.setattr(dist, "categorical_projection", lambda *a, **k: calls.append(k) or real(*a, **k))
    run = train_c51(C51Config(total_steps=30, learning_starts=20, hidden=(8,), batch_size=4))
    assert calls == [{"check": False}] * 10 and len(run.log.updates) == 10 and run.support.shape == (51,)
