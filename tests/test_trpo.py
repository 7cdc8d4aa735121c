"""TRPO: CG solves F x = g, the FVP equals the explicit Fisher (KL Hessian), accepted steps keep KL <= delta."""
import numpy as np
import pytest
import torch

from lib.rl.actor_critic import ActorCritic
from lib.rl.trpo import (TRPOConfig, TRPORun, actor_params, conjugate_gradient, detached_dist,
                         fisher_vector_product, mean_kl, train_trpo, trpo_step)


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(12, 12, generator=g, dtype=torch.float64)
    A = M @ M.T + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, n_iters=50)
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-8)
    with pytest.raises(ValueError):
        conjugate_gradient(lambda v: v, torch.zeros(2, 2))
    with pytest.raises(ValueError):
        conjugate_gradient(lambda v: v, torch.ones(2), n_iters=0)


def test_fisher_vector_product_equals_explicit_kl_hessian():
    torch.manual_seed(0)
    pol = ActorCritic(3, 2, hidden=(4,)).double()
    obs = torch.randn(30, 3, dtype=torch.float64)
    old = detached_dist(pol, obs)
    params = actor_params(pol)
    theta = torch.nn.utils.parameters_to_vector(params).detach()

    names = [n for n, _ in pol.actor.named_parameters()]
    shapes = [q.shape for q in params]

    def kl_of(vec):
        chunks, i = {}, 0
        for n, shp in zip(names, shapes):
            k = int(np.prod(shp))
            chunks[n] = vec[i:i + k].reshape(shp)
            i += k
        logits = torch.func.functional_call(pol.actor, chunks, (obs,))
        new = torch.distributions.Categorical(logits=logits)
        return torch.distributions.kl_divergence(old, new).mean()

    H = torch.autograd.functional.hessian(kl_of, theta.clone())
    v = torch.randn_like(theta)
    fvp = fisher_vector_product(pol, obs, old, v, damping=0.0)
    assert torch.allclose(fvp, H @ v, atol=1e-8)


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("max_kl", [0.001, 0.01, 0.05])
def test_every_accepted_step_satisfies_kl_constraint(continuous, max_kl):
    torch.manual_seed(1)
    pol = ActorCritic(4, 2, continuous=continuous)
    obs = torch.randn(256, 4)
    with torch.no_grad():
        acts = pol.dist(obs).sample()
    adv = torch.randn(256) + 2.0 * (acts[:, 0] if continuous else acts.float() - 0.5)
    for _ in range(5):
        old = detached_dist(pol, obs)
        info = trpo_step(pol, obs, acts, adv, max_kl=max_kl)
        with torch.no_grad():
            kl = float(mean_kl(pol, obs, old))
        if info["accepted"]:
            assert kl <= max_kl + 1e-7 and np.isclose(kl, info["kl"], atol=1e-7)
            assert info["surrogate_gain"] > 0
        else:
            assert kl == 0.0
        assert all(t[1] >= 0 for t in info["tried"])


def test_rejected_step_restores_parameters():
    torch.manual_seed(2)
    pol = ActorCritic(4, 2)
    obs = torch.randn(64, 4)
    acts = torch.randint(0, 2, (64,))
    before = torch.nn.utils.parameters_to_vector(actor_params(pol)).clone()
    info = trpo_step(pol, obs, acts, torch.randn(64), max_kl=0.01, max_backtracks=2, accept_ratio=1e6)
    assert not info["accepted"]
    assert torch.equal(before, torch.nn.utils.parameters_to_vector(actor_params(pol)))
    with pytest.raises(ValueError, match="max_kl"):
        trpo_step(pol, obs, acts, torch.randn(64), max_kl=0)
    with pytest.raises(ValueError, match="advantages"):
        trpo_step(pol, obs, acts, torch.randn(3))


def test_short_trpo_run_learns_within_kl():
    torch.set_num_threads(1)
    cfg = TRPOConfig(total_steps=15_360, eval_every=15_000, eval_episodes=5, critic_epochs=3)
    run = train_trpo(cfg)
    assert isinstance(run, TRPORun)
    log = run.log
    assert log.eval_returns[-1] > 100
    assert all(u["kl"] <= cfg.max_kl for u in log.updates)
    assert np.mean([u["accepted"] for u in log.updates]) > 0.8


def test_trpo_does_not_import_ppo():
    import ast
    import inspect

    import lib.rl.trpo as trpo

    tree = ast.parse(inspect.getsource(trpo))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any(m.endswith("ppo") for m in imported), imported


@pytest.mark.parametrize("kwargs, match", [
    ({"max_kl": 0.0}, "TRPOConfig.max_kl"),
    ({"cg_iters": 0}, "TRPOConfig.cg_iters"),
    ({"backtrack_coef": 1.0}, "TRPOConfig.backtrack_coef"),
    ({"damping": -0.1}, "TRPOConfig.damping"),
    ({"critic_batch": 0}, "TRPOConfig.critic_batch"),
    ({"lam": 2.0}, "TRPOConfig.lam"),
])
def test_trpo_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRPOConfig(**kwargs)
