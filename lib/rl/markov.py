"""Markov chains: validation, stationary distribution three ways, simulation.

A chain is a row-stochastic matrix ``P`` (shape (S, S), ``P[i, j] = Pr(next = j | now = i)``).
Its stationary distribution ``pi`` solves ``pi P = pi`` with ``sum(pi) = 1``:

* :func:`stationary_power` — repeat ``pi <- pi P`` from a start distribution (power iteration);
* :func:`stationary_eigen` — the left eigenvector of ``P`` for eigenvalue 1, normalised;
* :func:`simulate_chain` + :func:`visit_frequencies` — the long-run fraction of time in each state.

Book: seed-37, seed-44, seed-45
"""
from __future__ import annotations

import numpy as np


def check_transition_matrix(P) -> np.ndarray:
    """Validate a row-stochastic (S, S) matrix; returns it as float64."""
    P = np.asarray(P)
    if P.dtype == object or not np.issubdtype(P.dtype, np.number):
        raise TypeError(f"P must be numeric, got dtype {P.dtype}")
    P = P.astype(np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"P must be a square (S, S) matrix, got shape {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-10):
        raise ValueError("every row of P must be a probability distribution (non-negative, summing to 1)")
    return P


def stationary_power(P, pi0=None, tol: float = 1e-13, max_iter: int = 100_000):
    """Power iteration ``pi <- pi P`` until the L1 change is below ``tol``.

    Returns ``(pi, history)`` where ``history`` (shape (iters + 1, S)) holds every iterate, so
    convergence can be plotted. Raises ``RuntimeError`` if it does not converge (e.g. a periodic
    chain started off its stationary distribution).
    """
    P = check_transition_matrix(P)
    S = P.shape[0]
    pi = np.full(S, 1.0 / S) if pi0 is None else np.asarray(pi0, dtype=np.float64)
    if pi.shape != (S,) or np.any(pi < 0) or not np.isclose(pi.sum(), 1.0):
        raise ValueError(f"pi0 must be a probability vector of length {S}")
    hist = [pi]
    for _ in range(max_iter):
        new = pi @ P
        hist.append(new)
        if np.abs(new - pi).sum() < tol:
            return new, np.array(hist)
        pi = new
    raise RuntimeError(f"power iteration did not converge in {max_iter} steps (periodic chain?)")


def stationary_eigen(P) -> np.ndarray:
    """The left eigenvector of ``P`` for the eigenvalue closest to 1, normalised to sum to 1.

    Raises ``ValueError`` when eigenvalue 1 is not simple (the chain has several closed classes,
    so the stationary distribution is not unique).
    """
    P = check_transition_matrix(P)
    w, vecs = np.linalg.eig(P.T)
    close = np.abs(w - 1.0) < 1e-9
    if close.sum() != 1:
        raise ValueError(f"eigenvalue 1 has multiplicity {int(close.sum())}: the stationary distribution "
                         "is not unique (the chain is reducible)")
    v = np.real(vecs[:, np.argmax(close)])
    return v / v.sum()


def simulate_chain(P, start: int, steps: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Sample a trajectory of ``steps`` transitions from ``start``; returns ``steps + 1`` states."""
    P = check_transition_matrix(P)
    S = P.shape[0]
    if not 0 <= int(start) < S:
        raise ValueError(f"start must be in [0, {S}), got {start}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0
    u = rng.random(steps)
    out = np.empty(steps + 1, dtype=np.int64)
    out[0] = s = int(start)
    for t in range(steps):
        s = int(np.searchsorted(cdf[s], u[t], side="right"))
        out[t + 1] = s
    return out


def visit_frequencies(states, n_states: int) -> np.ndarray:
    """Fraction of time spent in each state, shape (n_states,)."""
    states = np.asarray(states)
    if states.ndim != 1 or states.size == 0:
        raise ValueError(f"states must be a non-empty 1-D array, got shape {states.shape}")
    if np.any(states < 0) or np.any(states >= n_states):
        raise ValueError(f"states must lie in [0, {n_states})")
    return np.bincount(states, minlength=n_states) / states.size


__all__ = ["check_transition_matrix", "stationary_power", "stationary_eigen", "simulate_chain",
           "visit_frequencies"]
