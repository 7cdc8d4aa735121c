"""Unit tests for lib.rl.returns (discounted returns by backward iteration)."""
import numpy as np
import pytest

from lib.rl.returns import check_gamma, discounted_returns, episode_returns


def forward_sum(rewards, gamma, dones=None, bootstrap=0.0):
    """Reference: G_t = sum_k gamma^k r_{t+k} up to the episode's end, by explicit forward sums."""
    T = len(rewards)
    dones = np.zeros(T, bool) if dones is None else np.asarray(dones, bool)
    out = np.zeros(T)
    for t in range(T):
        g, disc = 0.0, 1.0
        for k in range(t, T):
            g += disc * rewards[k]
            if dones[k]:
                break
            disc *= gamma
        else:
            g += disc * bootstrap
        out[t] = g
    return out


def test_single_episode_closed_form():
    r = np.array([1.0, 0.0, 2.0, -1.0])
    g = discounted_returns(r, 0.5)
    np.testing.assert_allclose(g, [1 + 0 + 0.5 - 0.125, 0 + 1 - 0.25, 2 - 0.5, -1])
    np.testing.assert_allclose(discounted_returns(r, 1.0), np.cumsum(r[::-1])[::-1])
    np.testing.assert_array_equal(discounted_returns(r, 0.0), r)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 1.0])
def test_matches_forward_sum_with_dones_and_bootstrap(gamma):
    rng = np.random.default_rng(0)
    for _ in range(30):
        T = int(rng.integers(1, 25))
        r = rng.normal(size=T)
        d = rng.random(T) < 0.2
        b = float(rng.normal())
        np.testing.assert_allclose(discounted_returns(r, gamma, d, b), forward_sum(r, gamma, d, b), atol=1e-12)
        np.testing.assert_allclose(discounted_returns(r, gamma, d), forward_sum(r, gamma, d), atol=1e-12)


def test_done_blocks_leakage_and_bootstrap_ignored_after_done():
    r = np.array([1.0, 1.0, 10.0])
    d = np.array([0, 1, 0])
    g = discounted_returns(r, 1.0, d)
    np.testing.assert_allclose(g, [2.0, 1.0, 10.0])  # the 10 of the next episode never leaks back
    g = discounted_returns(r, 1.0, np.array([0, 0, 1]), bootstrap=100.0)
    np.testing.assert_allclose(g, [12.0, 11.0, 10.0])  # last step ended: bootstrap unused
    g = discounted_returns(r, 0.5, np.array([0, 1, 0]), bootstrap=4.0)
    np.testing.assert_allclose(g, [1.5, 1.0, 12.0])


def test_batch_equals_per_env_loop():
    rng = np.random.default_rng(1)
    T, N = 17, 5
    r = rng.normal(size=(T, N))
    d = rng.random((T, N)) < 0.15
    b = rng.normal(size=N)
    G = discounted_returns(r, 0.9, d, b)
    assert G.shape == (T, N) and G.dtype == np.float64
    for n in range(N):
        np.testing.assert_array_equal(G[:, n], discounted_returns(r[:, n], 0.9, d[:, n], b[n]))


def test_accepts_torch_and_lists():
    torch = pytest.importorskip("torch", reason="torch is an optional input type")
    r = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(discounted_returns(torch.tensor(r), 0.5), discounted_returns(np.array(r), 0.5))
    np.testing.assert_allclose(discounted_returns(r, 0.5), [2.75, 3.5, 3.0])


def test_validation_errors():
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([1.0], 1.5)
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([1.0], -0.1)
    with pytest.raises(TypeError, match="gamma"):
        discounted_returns([1.0], "0.9")
    with pytest.raises(TypeError, match="gamma"):
        check_gamma(True)
    with pytest.raises(ValueError, match="shape"):
        discounted_returns(np.zeros((2, 2, 2)), 0.9)
    with pytest.raises(ValueError, match="empty"):
        discounted_returns(np.zeros(0), 0.9)
    with pytest.raises(ValueError, match="dones has shape"):
        discounted_returns(np.zeros(3), 0.9, dones=np.zeros(2))
    with pytest.raises(ValueError, match="0/1"):
        discounted_returns(np.zeros(3), 0.9, dones=np.array([0, 2, 0]))
    with pytest.raises(ValueError, match="bootstrap has shape"):
        discounted_returns(np.zeros((3, 2)), 0.9, bootstrap=np.zeros(3))
    with pytest.raises(TypeError, match="numeric"):
        discounted_returns(np.array(["a", "b"]), 0.9)


def test_episode_returns():
    assert episode_returns([1, 2, 3, 4, 5], [0, 1, 0, 0, 1]) == [3.0, 12.0]
    assert episode_returns([1, 2, 3], [0, 0, 0]) == []  # unfinished tail not counted
    with pytest.raises(ValueError):
        episode_returns([1, 2], [0])
