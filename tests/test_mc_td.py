"""Unit tests and cross-checks for lib.rl.mc_td (MC, TD(0), n-step TD, SARSA, Q-learning, offline)."""
import gymnasium as gym
import numpy as np
import pytest

from lib.rl import envs  # noqa: F401
from lib.rl import mc_td as M
from lib.rl import tabular as T
from lib.rl.envs import rollout

TRUE_RW = np.arange(1, 6) / 6


@pytest.fixture(scope="module")
def walk():
    env = gym.make("Book/RandomWalk-v0")
    mdp = T.from_env(env)
    eps = M.generate_episodes(env, np.full((7, 2), 0.5), 300, seed=0)
    return env, mdp.terminal, eps


def test_generate_episodes_shapes_and_seeding(walk):
    env, _, eps = walk
    ep = eps[0]
    assert len(ep.states) == len(ep.rewards) + 1 == len(ep.actions) + 1 and ep.terminated
    assert ep.states[0] == 3 and ep.states[-1] in (0, 6)
    again = M.generate_episodes(env, np.full((7, 2), 0.5), 5, seed=0)
    for a, b in zip(again, eps[:5]):
        np.testing.assert_array_equal(a.states, b.states)
    cut = M.generate_episodes(env, np.ones(7, dtype=int) * 0, 2, seed=0, max_steps=1)
    assert not cut[0].terminated and len(cut[0].rewards) == 1


def test_mc_recovers_random_walk_values(walk):
    _, term, eps = walk
    for first in (True, False):
        r = M.mc_prediction(eps, 7, 1.0, first_visit=first, terminal=term)
        np.testing.assert_allclose(r.V[1:6], TRUE_RW, atol=0.05)
        assert r.history.shape == (301, 7)
    # first-visit sample average is the plain mean of first-visit returns
    ep_returns = np.array([e.rewards.sum() for e in eps])
    assert M.mc_prediction(eps, 7, 1.0, terminal=term).V[3] == pytest.approx(ep_returns.mean())


def test_td0_converges_to_true_values(walk):
    env, term, _ = walk
    eps = M.generate_episodes(env, np.full((7, 2), 0.5), 3000, seed=1)
    r = M.td0_prediction(eps, 7, 1.0, 0.01, v0=0.5, terminal=term)
    np.testing.assert_allclose(r.V[1:6], TRUE_RW, atol=0.05)
    assert M.rms_error(r.history, np.r_[0, TRUE_RW, 0], states=slice(1, 6))[-1] < 0.03


def test_td0_trace_is_consistent(walk):
    _, term, eps = walk
    r = M.td0_prediction(eps[:3], 7, 0.9, 0.1, v0=0.5, terminal=term, trace=True)
    tr = r.trace
    n = sum(len(e.rewards) for e in eps[:3])
    assert len(tr["td_error"]) == n
    # replay the trace: each TD error is target - V(s) before the update
    V = np.full(7, 0.5)
    V[term] = 0
    for s, tgt, d in zip(tr["state"], tr["target"], tr["td_error"]):
        assert d == pytest.approx(tgt - V[s])
        V[s] += 0.1 * d
    np.testing.assert_allclose(V, r.V)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_nstep_n1_equals_td0_exactly(walk, gamma):
    _, term, eps = walk
    a = M.td0_prediction(eps, 7, gamma, 0.1, v0=0.5, terminal=term)
    b = M.nstep_td_prediction(eps, 7, 1, gamma, 0.1, v0=0.5, terminal=term)
    np.testing.assert_array_equal(a.history, b.history)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_nstep_long_equals_mc_exactly(walk, gamma):
    _, term, eps = walk
    L = max(len(e.rewards) for e in eps)
    a = M.mc_prediction(eps, 7, gamma, alpha=0.1, first_visit=False, v0=0.5, terminal=term)
    for n in (L, L + 5, 10_000):
        b = M.nstep_td_prediction(eps, 7, n, gamma, 0.1, v0=0.5, terminal=term)
        np.testing.assert_array_equal(a.history, b.history)
    # and an intermediate n differs from both
    c = M.nstep_td_prediction(eps, 7, 3, gamma, 0.1, v0=0.5, terminal=term)
    assert not np.array_equal(c.history, a.history)


def test_exercise_references_match_lib(walk):
    from lib.exercises.rl_basics import _nstep_ref, _q_update_ref, _td0_ref
    V = np.array([0.0, 0.3, 0.7, 0.0])
    ep = M.Episode(np.array([1, 2, 3]), np.array([1, 1]), np.array([0.5, 1.0]), True)
    r = M.td0_prediction([ep], 4, 0.9, 0.5, v0=V)
    v = _td0_ref(V, 1, 0.5, 2, False, 0.5, 0.9)
    v = _td0_ref(v, 2, 1.0, 3, True, 0.5, 0.9)
    np.testing.assert_array_equal(r.V, v)
    assert _nstep_ref([1.0, 2.0], 3.0, 0.5) == pytest.approx(1 + 0.5 * 2 + 0.25 * 3)
    Q = np.zeros((2, 2))
    np.testing.assert_allclose(_q_update_ref(Q, 0, 1, 1.0, 1, True, 0.5, 0.9), [[0, 0.5], [0, 0]])


def test_epsilon_greedy_probs_and_sampling():
    p = M.epsilon_greedy_probs([1.0, 3.0, 3.0, 0.0], 0.2)
    np.testing.assert_allclose(p, [0.05, 0.45, 0.45, 0.05])
    rng = np.random.default_rng(0)
    q = np.array([1.0, 3.0, 3.0, 0.0])
    counts = np.bincount([M.epsilon_greedy_action(q, 0.2, rng) for _ in range(40_000)], minlength=4)
    np.testing.assert_allclose(counts / 40_000, p, atol=0.01)
    with pytest.raises(ValueError):
        M.epsilon_greedy_probs([1.0], 1.5)
    # greedy with epsilon 0 (the sampler Dyna-Q and feudal Q-learning use too)
    assert M.epsilon_greedy_action(np.array([0.0, 1.0]), 0.0, np.random.default_rng(0)) == 1


def test_check_control_args():
    assert M.check_control_args(3, 0.5, 0.9, 0.1) == 0.9
    for bad, match in (((0, 0.5, 0.9, 0.1), "n_episodes"), ((3, 0.0, 0.9, 0.1), "alpha"),
                       ((3, 0.5, 1.5, 0.1), "gamma"), ((3, 0.5, 0.9, 1.5), "epsilon")):
        with pytest.raises(ValueError, match=match):
            M.check_control_args(*bad)


def test_cliff_sarsa_safe_q_learning_optimal():
    env = gym.make("CliffWalking-v1")
    rs = M.sarsa(env, 500, alpha=0.5, epsilon=0.1, seed=0)
    rq = M.q_learning(env, 500, alpha=0.5, epsilon=0.1, seed=0)
    re = M.expected_sarsa(env, 300, alpha=0.5, epsilon=0.1, seed=0)
    def greedy_path(Q):
        return rollout(env, lambda o, rng: int(np.argmax(Q[o])), seed=0, max_steps=200)
    ps, pq, pe = greedy_path(rs.Q), greedy_path(rq.Q), greedy_path(re.Q)
    assert pq.total_reward == -13.0                      # Q-learning learns the optimal (cliff-edge) path
    assert ps.ended_by == "terminated" and ps.length > 13  # SARSA's path keeps away from the edge
    assert pe.ended_by == "terminated"
    # rows of the grid visited: SARSA's path goes higher (smaller row index) than Q-learning's
    assert min(np.asarray(ps.observations) // 12) < min(np.asarray(pq.observations) // 12)
    # online returns while exploring: SARSA's are better (it avoids falling)
    assert rs.returns[-200:].mean() > rq.returns[-200:].mean()
    # deterministic
    np.testing.assert_array_equal(M.q_learning(env, 20, seed=3).Q, M.q_learning(env, 20, seed=3).Q)


def test_epsilon_schedule_in_control():
    env = gym.make("CliffWalking-v1")
    r = M.q_learning(env, 30, epsilon=lambda e: max(0.0, 0.5 - e / 20), seed=0)
    assert r.epsilons[0] == 0.5 and r.epsilons[-1] == 0.0
    with pytest.raises(ValueError, match="schedule"):
        M.q_learning(env, 3, epsilon=lambda e: 2.0)


def test_offline_q_learning_from_logged_data():
    env = gym.make("CliffWalking-v1")
    data = M.collect_transitions(env, np.full((48, 4), 0.25), 20, seed=0, max_steps=500)
    assert len(data) > 1000 and data.terminated.sum() <= 20
    Q, counts = M.offline_q_learning(data, 48, 4, gamma=1.0, alpha=0.5, sweeps=15, seed=0)
    assert counts.sum() == len(data)
    path = rollout(env, lambda o, rng: int(np.argmax(Q[o])), seed=0, max_steps=100)
    assert path.total_reward == -13.0
    # unlogged pairs keep q0
    assert np.all(Q[counts == 0] == 0.0)


def test_validation_errors(walk):
    env, term, eps = walk
    with pytest.raises(ValueError, match="gamma"):
        M.td0_prediction(eps, 7, 1.1, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        M.td0_prediction(eps, 7, 1.0, 0.0)
    with pytest.raises(ValueError, match="n must"):
        M.nstep_td_prediction(eps, 7, 0, 1.0, 0.1)
    with pytest.raises(ValueError, match="v0"):
        M.mc_prediction(eps, 7, v0=np.zeros(3))
    with pytest.raises(ValueError, match="states must lie"):
        M.mc_prediction(eps, 4)
    with pytest.raises(TypeError):
        M.mc_prediction(eps[0], 7)
    with pytest.raises(TypeError, match="Discrete"):
        M.q_learning(gym.make("CartPole-v1"), 2)
    with pytest.raises(TypeError, match="Discrete"):
        M.generate_episodes(gym.make("MountainCarContinuous-v0"), lambda s, r: 0, 1, 0)
    with pytest.raises(ValueError, match="policy"):
        M.generate_episodes(env, np.ones((7, 3)) / 3, 1, 0)
    with pytest.raises(TypeError):
        M.offline_q_learning("data", 2, 2)
    with pytest.raises(ValueError, match="rms|states"):
        M.rms_error(np.zeros((3, 4)), np.zeros(5))


def test_record_false_keeps_first_and_last(walk):
    _, term, eps = walk
    for fn, kw in ((M.mc_prediction, {}), (M.td0_prediction, {"alpha": 0.1}),
                   (M.nstep_td_prediction, {"n": 2, "alpha": 0.1})):
        full = fn(eps[:20], 7, gamma=1.0, terminal=term, **kw)
        short = fn(eps[:20], 7, gamma=1.0, terminal=term, record=False, **kw)
        assert short.history.shape == (2, 7)
        np.testing.assert_array_equal(short.history, full.history[[0, -1]])


def test_td_control_names_its_kinds():
    import gymnasium as gym

    env = gym.make("CliffWalking-v1")
    with pytest.raises(ValueError, match="kind"):
        M.td_control("double", env, 1, 0.5, 1.0, 0.1)
    a, b = M.td_control("q", env, 3, 0.5, 1.0, 0.1, seed=2), M.q_learning(env, 3, 0.5, 1.0, 0.1, seed=2)
    assert np.array_equal(a.Q, b.Q)
