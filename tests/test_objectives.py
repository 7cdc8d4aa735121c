"""lib.objectives: masked mean, KL estimators, clipped / importance / penalty surrogates, value loss,
explained variance (the leaf math PPO, TRPO and GRPO share)."""
import numpy as np
import pytest
import torch

from lib.objectives import (clip_fraction, clip_objective, clipped_surrogate, explained_variance, importance_surrogate,
                            kl_estimators, kl_k1, kl_k2, kl_k3, kl_penalty_surrogate, masked_mean, value_loss)


def test_masked_mean_all_rows_and_validation():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert masked_mean(x) == x.mean()
    assert masked_mean(x, m) == 1.5
    assert torch.equal(masked_mean(x, m, dim=1), torch.tensor([1.5, 0.0]))  # empty row: 0
    assert torch.equal(masked_mean(x, None, dim=1), x.mean(1))
    with pytest.raises(ValueError, match="mask has shape"):
        masked_mean(x, m[:, :2])
    with pytest.raises(TypeError, match="torch tensor"):
        masked_mean(np.ones(3))


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
    # ... which is minus the gradient of the importance surrogate there
    g2, = torch.autograd.grad(importance_surrogate(p, old, adv), p)
    assert torch.allclose(g1, -g2)
    # masked version = mean over the valid entries only
    mask = torch.arange(100) < 60
    lm, _ = clipped_surrogate(new, old, adv, 0.2, mask)
    l60, _ = clipped_surrogate(new[:60], old[:60], adv[:60], 0.2)
    assert torch.isclose(lm, l60)


def test_clip_fraction_counts_ratios_outside_the_range():
    r = torch.tensor([0.7, 0.85, 1.0, 1.15, 1.3, 1.0, 1.0, 1.0])
    assert clip_fraction(r, 0.2) == 0.25 and clip_fraction(r, 0.1) == 0.5 and clip_fraction(r, 0.5) == 0.0
    assert clip_fraction(r, 0.2, mask=torch.tensor([1, 0, 0, 0, 0, 0, 0, 0])) == 1.0


def test_kl_estimators_unbiased_for_categoricals():
    torch.manual_seed(0)
    p_old = torch.distributions.Categorical(logits=torch.tensor([0.2, -0.5, 1.0]))
    p_new = torch.distributions.Categorical(logits=torch.tensor([0.0, 0.1, 0.6]))
    a = p_old.sample((200_000,))
    est = kl_estimators(p_new.log_prob(a), p_old.log_prob(a))
    true = float(torch.distributions.kl_divergence(p_old, p_new))
    assert abs(float(est["k1"]) - true) < 3e-3 and abs(float(est["k3"]) - true) < 3e-3
    assert float(est["k3"]) >= 0
    # the per-sample estimators, in the order (sampler, other)
    lo, ln = p_old.log_prob(a[:10]), p_new.log_prob(a[:10])
    assert torch.allclose(kl_k1(lo, ln), lo - ln) and torch.allclose(kl_k2(lo, ln), 0.5 * (ln - lo) ** 2)
    assert torch.all(kl_k3(lo, ln) >= 0) and torch.all(kl_k3(lo, lo) == 0)
    with pytest.raises(ValueError, match="share one shape"):
        kl_k3(lo, ln[:3])


def test_penalty_and_value_losses():
    old = torch.zeros(4)
    new = torch.tensor([0.1, -0.1, 0.2, 0.0])
    adv = torch.ones(4)
    loss, info = kl_penalty_surrogate(new, old, adv, beta=2.0, clip_eps=0.2)
    r = new.exp()
    assert torch.isclose(loss, -(r * adv).mean() + 2.0 * (torch.expm1(new) - new).mean())
    # the clip threshold of the diagnostic is the caller's, not a constant
    assert info["clip_fraction"] == 0.25                      # r = e^0.2 > 1.2
    assert kl_penalty_surrogate(new, old, adv, beta=2.0, clip_eps=0.3)[1]["clip_fraction"] == 0.0
    assert kl_penalty_surrogate(new, old, adv, beta=2.0, clip_eps=0.1)[1]["clip_fraction"] == 0.5
    v, g, vo = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.5, 2.5])
    assert torch.isclose(value_loss(v, g), torch.tensor(2.5))
    assert torch.isclose(value_loss(v, g, vo, 0.2), torch.tensor((1.0 + 2.3 ** 2) / 2))
    with pytest.raises(ValueError, match="old_values"):
        value_loss(v, g, clip_eps=0.2)
    with pytest.raises(ValueError, match="beta"):
        kl_penalty_surrogate(new, old, adv, beta=-1.0, clip_eps=0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        kl_penalty_surrogate(new, old, adv, beta=1.0, clip_eps=1.0)


def test_shape_and_type_errors():
    with pytest.raises(ValueError, match="share one shape"):
        clipped_surrogate(torch.zeros(3), torch.zeros(4), torch.zeros(3))
    with pytest.raises(TypeError, match="torch tensor"):
        clipped_surrogate(np.zeros(3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="clip_eps"):
        clipped_surrogate(torch.zeros(3), torch.zeros(3), torch.zeros(3), clip_eps=0.0)
    with pytest.raises(ValueError, match="share one shape"):
        importance_surrogate(torch.zeros(3), torch.zeros(3), torch.zeros(2))


def test_explained_variance():
    y = np.array([1.0, 2.0, 3.0])
    assert explained_variance(y, y) == 1.0
    assert np.isclose(explained_variance(np.full(3, 2.0), y), 0.0)
    assert np.isnan(explained_variance(y, np.ones(3)))
    with pytest.raises(ValueError, match="shape"):
        explained_variance(y, y[:2])
