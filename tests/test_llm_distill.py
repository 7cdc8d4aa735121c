"""Tests of lib.llm.distill: soft targets, the distillation loss and its T^2 factor (against
autograd and a hand-written KL), the training loop on equal data."""
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import small_lm
from lib.llm import distill as D


def _logits(seed, shape=(3, 5, 11)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 2


def test_soft_targets_flatten_with_temperature():
    z = _logits(0)
    p1, p4 = D.soft_targets(z, 1.0), D.soft_targets(z, 4.0)
    torch.testing.assert_close(p1, torch.softmax(z, -1))
    torch.testing.assert_close(p4.sum(-1), torch.ones(3, 5))
    ent = lambda p: -(p * p.log()).sum(-1)  # noqa: E731
    assert torch.all(ent(p4) > ent(p1))
    assert torch.equal(p1.argmax(-1), p4.argmax(-1))  # temperature keeps the ranking
    with pytest.raises(ValueError, match="T"):
        D.soft_targets(z, 0.0)


def test_loss_equals_kl_div_and_cross_entropy_by_hand():
    zs, zt = _logits(1).requires_grad_(), _logits(2)
    y = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(3))
    y[0, :2] = -100
    T, alpha = 3.0, 0.7
    loss, parts = D.distillation_loss(zs, zt, y, T=T, alpha=alpha)
    keep = y != -100
    kl = F.kl_div(F.log_softmax(zs[keep] / T, -1), F.log_softmax(zt[keep] / T, -1),
                  log_target=True, reduction="batchmean")
    ce = F.cross_entropy(zs[keep], y[keep])
    torch.testing.assert_close(loss, alpha * T * T * kl + (1 - alpha) * ce)
    assert parts["kl"] == pytest.approx(float(kl.detach()))
    assert parts["ce"] == pytest.approx(float(ce.detach()))
    hard, _ = D.distillation_loss(zs, zt, y, T=T, alpha=0.0)
    torch.testing.assert_close(hard, ce)
    same, p = D.distillation_loss(zt.clone(), zt, None, T=T, alpha=1.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6) and p["ce"] is None


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 8.0])
@pytest.mark.parametrize("scale", [True, False])
def test_soft_term_gradient_equals_autograd(T, scale):
    zs, zt = _logits(4).double().requires_grad_(), _logits(5).double()
    loss, _ = D.distillation_loss(zs, zt, None, T=T, alpha=1.0, scale_t2=scale)
    loss.backward()
    # the loss is computed in float32: compare at float32 precision
    torch.testing.assert_close(zs.grad.float(), D.soft_term_gradient(zs.detach(), zt, T, scale)
                               .float(), rtol=1e-4, atol=1e-7)


def test_gradient_shrinks_as_one_over_t_squared_without_the_factor():
    zs, zt = _logits(6, (64, 50)), _logits(7, (64, 50))
    Ts = [8.0, 16.0, 32.0, 64.0]
    raw = [float(D.soft_term_gradient(zs, zt, T, scale_t2=False).norm()) for T in Ts]
    scaled = [float(D.soft_term_gradient(zs, zt, T, scale_t2=True).norm()) for T in Ts]
    slope_raw = math.log(raw[-1] / raw[0]) / math.log(Ts[-1] / Ts[0])
    slope_scaled = math.log(scaled[-1] / scaled[0]) / math.log(Ts[-1] / Ts[0])
    assert slope_raw == pytest.approx(-2.0, abs=0.02)
    assert slope_scaled == pytest.approx(0.0, abs=0.02)


def test_loss_input_errors():
    z = _logits(8)
    with pytest.raises(ValueError, match="same shape"):
        D.distillation_loss(z, z[:, :2], None, alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be 1"):
        D.distillation_loss(z, z, None, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        D.distillation_loss(z, z, None, alpha=1.5)
    with pytest.raises(ValueError, match="targets must have shape"):
        D.distillation_loss(z, z, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="no scored"):
        D.distillation_loss(z, z, torch.full((3, 5), -100))
    with pytest.raises(TypeError):
        D.distillation_loss(z.long(), z, None, alpha=1.0)


def test_config_validation():
    with pytest.raises(ValueError, match="alpha"):
        D.DistillConfig(alpha=2.0)
    with pytest.raises(ValueError, match="temperature"):
        D.DistillConfig(temperature=0)
    with pytest.raises(ValueError, match="steps"):
        D.DistillConfig(steps=0)
    cfg = D.DistillConfig(d_model=32, n_heads=2, n_kv_heads=1, d_ff=64)
    assert cfg.student_config(97).vocab_size == 97


def test_training_windows_are_fixed_by_the_seed():
    tokens = torch.arange(1000)
    a, b = D.training_windows(tokens, 10, 16, 3), D.training_windows(tokens, 10, 16, 3)
    assert torch.equal(a, b) and a.shape == (10, 17)
    assert torch.all(a[:, 1:] - a[:, :-1] == 1)  # contiguous windows
    assert len(set(a[:, 0].tolist())) == 10
    with pytest.raises(ValueError, match="windows"):
        D.training_windows(tokens, 100, 16, 0)


def test_train_distill_runs_and_the_soft_student_learns_the_teacher():
    torch.manual_seed(0)
    teacher = small_lm(vocab_size=40, max_seq_len=64)
    tokens = torch.randint(0, 40, (4000,), generator=torch.Generator().manual_seed(1))
    common = dict(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=32, n_train_windows=20,
                  seq_len=16, steps=25, batch_size=4, lr=1e-2, eval_windows=4, eval_seq_len=32)
    soft = D.train_distill(D.DistillConfig(alpha=1.0, **common), teacher, tokens, tokens,
                           eval_every=5)
    hard = D.train_distill(D.DistillConfig(alpha=0.0, **common), teacher, tokens, tokens)
    assert soft.log.eval_steps == [5, 10, 15, 20, 25] and hard.log.eval_steps == [25]
    assert len(soft.log.updates) == 25 and soft.log.updates[0]["kl"] is not None
    assert hard.log.updates[0]["kl"] is None
    # soft-target training moves the student towards the teacher's distributions
    kl = soft.log.series("kl")
    assert kl[-5:].mean() < 0.5 * kl[:5].mean()
    assert soft.final["kl"] < hard.final["kl"]
    assert set(soft.final) == {"loss", "accuracy", "agreement", "kl"}
    again = D.train_distill(D.DistillConfig(alpha=1.0, **common), teacher, tokens, tokens,
                            eval_every=5)
    assert again.final == soft.final  # deterministic
    with pytest.raises(TypeError, match="DistillConfig"):
        D.train_distill({}, teacher, tokens, tokens)
    with pytest.raises(TypeError, match="TinyLM"):
        D.train_distill(D.DistillConfig(**common), torch.nn.Linear(2, 2), tokens, tokens)
