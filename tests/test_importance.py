"""Importance sampling: unbiasedness, the exp(mu^2) - 1 weight variance, support failure, validation."""
import numpy as np
import pytest

from lib.rl.importance import (effective_sample_size, gaussian_shift_experiment, importance_weights, is_estimate,
                               log_normal_pdf)


def test_unbiased_and_weight_variance_matches_theory():
    rng = np.random.default_rng(0)
    res = gaussian_shift_experiment(lambda x: x ** 2, [0.0, 0.5, 1.0], n=1000, n_repeats=400, rng=rng)
    est = res["estimates"]
    se = est.std(1) / np.sqrt(est.shape[1])
    assert np.all(np.abs(est.mean(1) - 1.0) < 4 * se + 1e-12)          # E_p[x^2] = 1
    np.testing.assert_allclose(res["weight_var"], res["weight_var_theory"], rtol=0.1, atol=1e-9)
    assert np.all(np.diff(est.var(1)) > 0) and np.all(np.diff(res["ess"]) < 0)


def test_missing_support_biases_the_estimate():
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=200_000))                  # q = half-normal: never samples x < 0
    logq = log_normal_pdf(x) + np.log(2)
    est = is_estimate(x, log_normal_pdf(x), logq)         # E_p[x] = 0 under p = N(0, 1)
    assert abs(est - 1 / np.sqrt(2 * np.pi)) < 0.01       # converges to E_p[x 1{x>0}] instead


def test_self_normalized_and_ess():
    x = np.array([0.0, 1.0, 2.0])
    assert is_estimate(x, np.zeros(3), np.zeros(3)) == 1.0
    assert np.isclose(is_estimate(x, np.log([1, 1, 2.0]), np.zeros(3), self_normalized=True), 5 / 4)
    assert effective_sample_size(np.ones(10)) == 10.0
    assert np.isclose(effective_sample_size(np.array([1.0, 0.0, 0.0])), 1.0)


def test_validation():
    with pytest.raises(ValueError, match="differ in shape"):
        importance_weights(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="q\\(x\\) = 0"):
        importance_weights(np.zeros(2), np.array([0.0, -np.inf]))
    with pytest.raises(ValueError, match="1-D"):
        is_estimate(np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="sigma"):
        log_normal_pdf(0.0, sigma=0.0)
    with pytest.raises(TypeError):
        gaussian_shift_experiment(3, [0.0], 10, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        effective_sample_size(np.array([-1.0, 1.0]))
