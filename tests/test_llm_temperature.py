"""lib.llm.temperature: tempered softmax limits, entropy, the sweep's statistics, InfoNCE
(== a per-row loop and the gradient identity), the negatives' weights."""
import math

import pytest
import torch

from lib.llm.generate import Temperature
from lib.llm.temperature import (entropy, info_nce, negative_weights, similarities, temperature_sweep,
                                 tempered_probs)


def test_tempered_probs_match_generate_temperature_and_limits():
    z = torch.randn(5, 30, generator=torch.Generator().manual_seed(0))
    for T in (0.3, 1.0, 2.5):
        torch.testing.assert_close(tempered_probs(z, T), Temperature(T)(None, z.double()).softmax(-1))
    cold = tempered_probs(z, 1e-3)
    assert torch.equal(cold.argmax(-1), z.argmax(-1)) and (cold.max(-1).values > 1 - 1e-9).all()
    hot = tempered_probs(z, 1e6)
    assert (hot - 1 / 30).abs().max() < 1e-6
    with pytest.raises(ValueError, match="T must be"):
        tempered_probs(z, 0.0)
    with pytest.raises(ValueError, match="floating-point"):
        tempered_probs(torch.ones(3, dtype=torch.long), 1.0)


def test_entropy_values():
    assert float(entropy(torch.full((8,), 1 / 8, dtype=torch.float64))) == pytest.approx(math.log(8))
    assert float(entropy(torch.tensor([1.0, 0.0, 0.0]))) == 0.0
    p = torch.tensor([0.5, 0.25, 0.25])
    assert float(entropy(p)) == pytest.approx(float(torch.distributions.Categorical(probs=p).entropy()))


def test_sweep_is_monotone_and_reaches_the_limits():
    z = torch.randn(20, 50, generator=torch.Generator().manual_seed(1)) * 3
    temps = [0.01, 0.1, 0.5, 1, 2, 10, 1000]
    s = temperature_sweep(z, temps)
    assert all(a < b for a, b in zip(s["entropy"], s["entropy"][1:]))
    assert all(a > b for a, b in zip(s["top1"], s["top1"][1:]))
    assert s["tv_argmax"][0] < 1e-3 and s["tv_uniform"][-1] < 1e-2
    assert s["entropy"][-1] == pytest.approx(s["log_vocab"], abs=1e-3)


def test_info_nce_equals_loop_and_gradient_identity():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, 8, generator=g, dtype=torch.float64)
    tau = 0.2
    s = similarities(q, k)
    loop = sum(-(s[i, i] / tau - torch.logsumexp(s[i] / tau, 0)) for i in range(6)) / 6
    assert float(info_nce(q, k, tau)) == pytest.approx(float(loop), rel=1e-12)
    # d loss_i / d s_ij = p_ij / tau for a negative j: the weights are the negatives' softmax
    sl = s.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(sl / tau, torch.arange(6), reduction="sum").backward()
    neg = ~torch.eye(6, dtype=torch.bool)
    grad_neg = sl.grad[neg].view(6, 5)
    share = grad_neg / grad_neg.sum(-1, keepdim=True)
    torch.testing.assert_close(share.sort(-1, descending=True).values, negative_weights(q, k, tau))
    w_cold, w_hot = negative_weights(q, k, 1e-3), negative_weights(q, k, 1e3)
    assert (w_cold[:, 0] > 0.99).all() and (w_hot - 0.2).abs().max() < 1e-3
    with pytest.raises(ValueError, match="at least 2"):
        info_nce(q[:1], k[:1], 0.1)
    with pytest.raises(ValueError, match="tau"):
        info_nce(q, k, -1.0)
