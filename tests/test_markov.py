"""Unit tests for lib.rl.markov: stationary distributions three ways."""
import numpy as np
import pytest

from lib.rl.markov import (check_transition_matrix, simulate_chain, stationary_eigen, stationary_power,
                           visit_frequencies)

P3 = np.array([[0.5, 0.4, 0.1], [0.2, 0.6, 0.2], [0.3, 0.1, 0.6]])


def test_known_two_state_chain():
    a, b = 0.3, 0.1
    P = np.array([[1 - a, a], [b, 1 - b]])
    exact = np.array([b, a]) / (a + b)
    np.testing.assert_allclose(stationary_eigen(P), exact, atol=1e-12)
    pi, hist = stationary_power(P)
    np.testing.assert_allclose(pi, exact, atol=1e-10)
    assert hist.shape[1] == 2 and hist.shape[0] > 2


def test_three_estimates_agree_and_fixed_point():
    pe = stationary_eigen(P3)
    pp, _ = stationary_power(P3, pi0=np.array([1.0, 0, 0]))
    np.testing.assert_allclose(pe @ P3, pe, atol=1e-12)
    np.testing.assert_allclose(pp, pe, atol=1e-10)
    states = simulate_chain(P3, 0, 200_000, rng=0)
    freq = visit_frequencies(states, 3)
    np.testing.assert_allclose(freq, pe, atol=0.01)
    np.testing.assert_array_equal(states, simulate_chain(P3, 0, 200_000, rng=0))  # seeded


def test_simulation_follows_transition_probabilities():
    states = simulate_chain(P3, 1, 100_000, rng=np.random.default_rng(3))
    counts = np.zeros((3, 3))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), P3, atol=0.01)


def test_errors():
    with pytest.raises(ValueError, match="square"):
        check_transition_matrix(np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="probability"):
        check_transition_matrix([[0.5, 0.4], [0.5, 0.5]])
    with pytest.raises(TypeError):
        check_transition_matrix(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="not unique"):
        stationary_eigen(np.eye(2))
    with pytest.raises(RuntimeError, match="periodic"):
        stationary_power(np.array([[0.0, 1.0], [1.0, 0.0]]), pi0=np.array([1.0, 0.0]), max_iter=100)
    with pytest.raises(ValueError, match="pi0"):
        stationary_power(P3, pi0=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="start"):
        simulate_chain(P3, 3, 10)
    with pytest.raises(ValueError):
        visit_frequencies(np.array([0, 5]), 3)
