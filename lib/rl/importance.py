"""Importance sampling: expectations under ``p`` from samples of ``q``.

``E_p[f(X)] = E_q[w(X) f(X)]`` with ``w = p / q``, valid when ``q > 0`` wherever ``p f != 0``.
The ordinary estimator averages ``w f`` (unbiased); the self-normalised one divides by the sum
of weights (biased, consistent, often lower variance). For ``p = N(0, 1)`` and ``q = N(mu, 1)``
the weights' second moment is known in closed form, ``E_q[w^2] = exp(mu^2) = exp(2 KL(p||q))``,
so the variance blow-up with mismatch can be checked against theory. PPO's ratio
``pi_theta / pi_old`` is exactly such a weight.

Book: seed-69
"""
from __future__ import annotations

import numpy as np


def _arr(x, name):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
    return a


def importance_weights(logp, logq) -> np.ndarray:
    """``w = exp(logp - logq)`` for samples drawn from ``q`` (1-D arrays of equal length)."""
    logp, logq = _arr(logp, "logp"), _arr(logq, "logq")
    if logp.shape != logq.shape:
        raise ValueError(f"logp and logq differ in shape: {logp.shape} vs {logq.shape}")
    if np.any(np.isinf(logq) & (logq < 0)):
        raise ValueError("a sample has q(x) = 0: it cannot have been drawn from q")
    return np.exp(logp - logq)


def is_estimate(fx, logp, logq, self_normalized: bool = False) -> float:
    """Importance-sampling estimate of ``E_p[f]`` from values ``fx = f(x_i)``, ``x_i ~ q``."""
    fx = _arr(fx, "fx")
    w = importance_weights(logp, logq)
    if fx.shape != w.shape:
        raise ValueError(f"fx has shape {fx.shape}, expected {w.shape}")
    if self_normalized:
        s = w.sum()
        if s == 0:
            raise ValueError("all weights are zero: q never samples where p has mass")
        return float((w * fx).sum() / s)
    return float((w * fx).mean())


def effective_sample_size(w) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (n for equal weights, ~1 if one dominates)."""
    w = _arr(w, "w")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    return float(w.sum() ** 2 / max((w ** 2).sum(), 1e-300))


def log_normal_pdf(x, mu: float = 0.0, sigma: float = 1.0) -> np.ndarray:
    """Log-density of ``N(mu, sigma^2)`` at ``x``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    x = np.asarray(x, dtype=np.float64)
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def gaussian_shift_experiment(f, mus, n: int, n_repeats: int, rng: np.random.Generator,
                              self_normalized: bool = False) -> dict:
    """Estimate ``E_p[f]``, ``p = N(0,1)``, from ``n`` samples of ``q = N(mu, 1)``, ``n_repeats`` times per mu.

    Returns ``{"mu", "kl", "estimates" (len(mus), n_repeats), "weight_var" (empirical Var_q[w]),
    "weight_var_theory" (exp(mu^2) - 1), "ess" (mean effective sample size)}``.
    """
    if not callable(f):
        raise TypeError("f must be a function of a numpy array")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator")
    if n < 1 or n_repeats < 2:
        raise ValueError("need n >= 1 and n_repeats >= 2")
    mus = np.asarray(mus, dtype=np.float64)
    est = np.empty((len(mus), n_repeats))
    wvar = np.empty(len(mus))
    ess = np.empty(len(mus))
    for i, mu in enumerate(mus):
        x = rng.normal(mu, 1.0, size=(n_repeats, n))
        w = np.exp(log_normal_pdf(x) - log_normal_pdf(x, mu))
        fx = f(x)
        if self_normalized:
            est[i] = (w * fx).sum(1) / w.sum(1)
        else:
            est[i] = (w * fx).mean(1)
        wvar[i] = w.var()
        ess[i] = np.mean(w.sum(1) ** 2 / (w ** 2).sum(1))
    return {"mu": mus, "kl": mus ** 2 / 2, "estimates": est, "weight_var": wvar,
            "weight_var_theory": np.expm1(mus ** 2), "ess": ess}


__all__ = ["importance_weights", "is_estimate", "effective_sample_size", "log_normal_pdf",
           "gaussian_shift_experiment"]
