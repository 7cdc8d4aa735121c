"""Unit tests for lib.rl.bandits: schedules, agents, regret."""
import numpy as np
import pytest

from lib.rl import bandits as B

ARMS = [0.2, 0.5, 0.55, 0.45, 0.3]


def test_schedules_hit_their_endpoints():
    lin = B.linear_schedule(1.0, 0.05, 100)
    exp = B.exponential_schedule(1.0, 0.01, 50)
    assert lin(0) == 1.0 and lin(100) == 0.05 and lin(10_000) == 0.05
    assert lin(50) == pytest.approx(0.525)
    assert exp(0) == 1.0 and exp(50) == 0.01 and exp(25) == pytest.approx(0.1)
    assert B.constant_schedule(0.2)(123) == 0.2
    assert all(lin(t) >= lin(t + 1) for t in range(120))
    for bad in (lambda: B.linear_schedule(1.5, 0, 10), lambda: B.linear_schedule(1, 0, 0),
                lambda: B.exponential_schedule(1, 0, 10), lambda: B.constant_schedule(-0.1)):
        with pytest.raises(ValueError):
            bad()


def test_bandit_pulls_and_validation():
    rng = np.random.default_rng(0)
    b = B.BernoulliBandit(ARMS)
    assert np.mean([b.pull(2, rng) for _ in range(20_000)]) == pytest.approx(0.55, abs=0.02)
    g = B.GaussianBandit([0.0, 1.0], sd=0.5)
    assert np.mean([g.pull(1, rng) for _ in range(20_000)]) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError):
        B.BernoulliBandit([0.5, 1.2])
    with pytest.raises(ValueError):
        B.BernoulliBandit([0.5])
    with pytest.raises(ValueError):
        b.pull(5, rng)
    with pytest.raises(ValueError):
        B.GaussianBandit([0, 1], sd=0)


def test_ucb_scores():
    s = B.ucb_scores([0.5, 0.2, 0.0], [2, 8, 0], t=10, c=1.0)
    np.testing.assert_allclose(s[:2], [0.5 + np.sqrt(np.log(10) / 2), 0.2 + np.sqrt(np.log(10) / 8)])
    assert s[2] == np.inf
    with pytest.raises(ValueError):
        B.ucb_scores([0.1], [1, 2], 3)


def test_sample_average_estimates():
    agent = B.EpsilonGreedyAgent(3, epsilon=1.0)
    for a, r in [(0, 1.0), (0, 0.0), (1, 2.0), (0, 1.0)]:
        agent.update(a, r)
    np.testing.assert_allclose(agent.Q, [2 / 3, 2.0, 0.0])
    np.testing.assert_array_equal(agent.N, [3, 1, 0])


def test_regret_ucb_and_thompson_beat_greedy():
    bandit = B.BernoulliBandit(ARMS)
    seeds = range(12)
    final = {}
    for name, make in [("greedy", lambda: B.GreedyAgent(5)), ("ucb", lambda: B.UCBAgent(5, c=1.0)),
                       ("ts", lambda: B.ThompsonAgent(5)), ("eps", lambda: B.EpsilonGreedyAgent(5, 0.1))]:
        R = B.regret_curves(make, bandit, 1500, seeds)
        assert R.shape == (12, 1500) and np.all(np.diff(R, axis=1) >= -1e-12)  # regret never decreases
        final[name] = R[:, -1].mean()
    assert final["ucb"] < final["greedy"] and final["ts"] < final["greedy"]
    # deterministic under seeding
    a = B.run_bandit(B.ThompsonAgent(5), bandit, 200, seed=7)
    b = B.run_bandit(B.ThompsonAgent(5), bandit, 200, seed=7)
    np.testing.assert_array_equal(a.arms, b.arms)


def test_gaussian_thompson_and_linear_contextual():
    bandit = B.GaussianBandit([0.0, 0.3, 1.0], sd=1.0)
    run = B.run_bandit(B.ThompsonAgent(3, prior="gaussian"), bandit, 1000, seed=0)
    assert np.mean(run.arms[-300:] == 2) > 0.8
    rng = np.random.default_rng(0)
    lin = B.LinearEpsilonGreedy(2, dim=3, epsilon=0.1)
    correct = []
    for _ in range(800):
        x = np.append(rng.normal(size=2), 1.0)
        label = int(x[0] > 0)
        a = lin.select(x, rng)
        correct.append(a == label)
        lin.update(x, a, float(a == label))
    assert np.mean(correct[-300:]) > 0.8
    with pytest.raises(ValueError):
        lin.predict(np.zeros(2))


def test_agent_validation():
    with pytest.raises(ValueError):
        B.GreedyAgent(1)
    with pytest.raises(ValueError):
        B.UCBAgent(3, c=-1)
    with pytest.raises(ValueError):
        B.ThompsonAgent(3, prior="gamma")
    with pytest.raises(ValueError):
        B.ThompsonAgent(2).update(0, 0.5)
    with pytest.raises(ValueError, match="arms"):
        B.run_bandit(B.GreedyAgent(3), B.BernoulliBandit(ARMS), 10, 0)
    with pytest.raises(ValueError):
        B.run_bandit(B.GreedyAgent(5), B.BernoulliBandit(ARMS), 0, 0)
