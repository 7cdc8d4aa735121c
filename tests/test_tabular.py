"""Unit tests and cross-checks for lib.rl.tabular (exact DP on gymnasium toy-text tables)."""
import gymnasium as gym
import numpy as np
import pytest

from lib.rl import envs  # noqa: F401  (registers Book/ environments)
from lib.rl import tabular as T
from lib.rl.envs import rollout


@pytest.fixture(scope="module")
def frozen():
    return T.from_env(gym.make("FrozenLake-v1"))


@pytest.fixture(scope="module")
def cliff():
    return T.from_env(gym.make("CliffWalking-v1"))


def test_tables_from_toy_text(frozen, cliff):
    assert (frozen.n_states, frozen.n_actions) == (16, 4)
    np.testing.assert_allclose(frozen.P.sum(-1) + frozen.P_end, 1.0)
    assert set(np.flatnonzero(frozen.terminal)) == {5, 7, 11, 12, 15}  # holes and goal
    assert frozen.start[0] == 1.0
    # slippery: intended direction and both perpendicular ones, 1/3 each (from state 0, 'down')
    np.testing.assert_allclose(frozen.P[0, 1, [0, 4]], [1 / 3, 1 / 3])
    assert np.flatnonzero(cliff.terminal).tolist() == [47]
    assert cliff.R[36, 1] == -100 and cliff.P[36, 1, 36] == 1.0  # the cliff sends you back to the start
    taxi = T.from_env(gym.make("Taxi-v4"))
    assert (taxi.n_states, taxi.n_actions) == (500, 6)


def test_policy_evaluation_satisfies_bellman(frozen):
    gamma = 0.95
    pi = np.random.default_rng(0).dirichlet(np.ones(4), size=16)
    V = T.policy_evaluation(frozen, pi, gamma)
    Q = T.q_from_v(frozen, V, gamma)
    np.testing.assert_allclose(T.v_from_q(Q, pi), V, atol=1e-10)
    np.testing.assert_allclose(V[frozen.terminal], 0.0)
    # iterative evaluation converges to the same values
    hist = T.iterative_policy_evaluation(frozen, pi, gamma, sweeps=800)
    np.testing.assert_allclose(hist[-1], V, atol=1e-10)
    assert hist.shape == (801, 16)


def test_policy_evaluation_matches_monte_carlo_in_env():
    env = gym.make("FrozenLake-v1")
    mdp = T.from_env(env)
    pi = np.zeros(16, dtype=int) + 2  # always 'right'
    V = T.policy_evaluation(mdp, pi, 1.0)  # gamma=1: probability of reaching the goal
    wins = [rollout(env, lambda o, rng: 2, seed=s).total_reward for s in range(2000)]
    assert abs(np.mean(wins) - V[0]) < 3 * np.sqrt(V[0] * (1 - V[0]) / 2000) + 1e-3


def test_value_iteration_equals_policy_iteration_on_frozenlake(frozen):
    for gamma in (0.9, 0.99):
        vi = T.value_iteration(frozen, gamma, tol=1e-12)
        pi = T.policy_iteration(frozen, gamma)
        np.testing.assert_allclose(vi.V, pi.V, atol=1e-9)
        # each greedy policy achieves the optimum when evaluated exactly
        np.testing.assert_allclose(T.policy_evaluation(frozen, vi.policy, gamma), pi.V, atol=1e-9)
        np.testing.assert_allclose(vi.V, vi.Q.max(1), atol=1e-9)
    assert pi.iterations < 20 < vi.iterations


def test_cliffwalking_optimal_return_is_minus_13(cliff):
    vi = T.value_iteration(cliff, 1.0)
    pi = T.policy_iteration(cliff, 1.0)
    assert vi.V[36] == pytest.approx(-13.0) and pi.V[36] == pytest.approx(-13.0)
    env = gym.make("CliffWalking-v1")
    tr = rollout(env, lambda o, rng: int(vi.policy[o]), seed=0, max_steps=100)
    assert tr.total_reward == -13.0 and tr.length == 13 and tr.ended_by == "terminated"


def test_random_walk_values_and_enumeration():
    env = gym.make("Book/RandomWalk-v0")
    mdp = T.from_env(env)
    uniform = np.full((7, 2), 0.5)
    V = T.policy_evaluation(mdp, uniform, 1.0)
    np.testing.assert_allclose(V[1:6], np.arange(1, 6) / 6, atol=1e-12)
    # depth-limited exhaustive search converges to the value from below (rewards are >= 0)
    vals = [T.enumerate_trajectories(env, uniform, 3, 1.0, d).value for d in (2, 6, 12, 20)]
    assert all(a <= b + 1e-15 for a, b in zip(vals, vals[1:])) and abs(vals[-1] - 0.5) < 0.05


def test_enumeration_is_exact_on_travel():
    env = gym.make("Book/Travel-v0")
    mdp = T.from_env(env)
    pi = np.tile([0.3, 0.7], (6, 1))
    tree = T.enumerate_trajectories(env, pi, 0, 1.0, max_depth=10)
    assert tree.probs.sum() == pytest.approx(1.0)
    assert tree.value == pytest.approx(T.policy_evaluation(mdp, pi, 1.0)[0], abs=1e-12)
    assert set(tree.lengths.tolist()) <= {2, 3}
    assert T.enumerate_trajectories(env, pi, 0, 1.0, max_depth=0).value == 0.0


def test_induced_chain_and_greedy():
    env = gym.make("Book/Travel-v0")
    mdp = T.from_env(env)
    P_pi, R_pi = T.induced_chain(mdp, np.zeros(6, dtype=int))
    np.testing.assert_allclose(P_pi[0], [0, 0.8, 0, 0.2, 0, 0])
    assert R_pi[0] == pytest.approx(0.8 * 1.0 + 0.2 * -2.0)
    np.testing.assert_array_equal(T.greedy(np.array([[1.0, 1.0], [0.0, 2.0]])), [0, 1])


class _NoTable(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)


def test_validation_errors(frozen):
    with pytest.raises(ValueError, match="gamma"):
        T.policy_evaluation(frozen, np.zeros(16, dtype=int), 1.5)
    with pytest.raises(ValueError, match="shape"):
        T.policy_evaluation(frozen, np.zeros((16, 3)), 0.9)
    with pytest.raises(ValueError, match="integer actions"):
        T.policy_evaluation(frozen, np.full(16, 7), 0.9)
    with pytest.raises(ValueError, match="probability"):
        T.policy_evaluation(frozen, np.ones((16, 4)), 0.9)
    with pytest.raises(ValueError, match="shape"):
        T.q_from_v(frozen, np.zeros(5), 0.9)
    with pytest.raises(TypeError, match="Discrete"):
        T.from_env(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="table"):
        T.from_env(_NoTable())
    with pytest.raises(TypeError):
        T.value_iteration("not an mdp", 0.9)
    with pytest.raises(ValueError, match="shape"):
        T.TabularMDP(np.zeros((2, 2, 3)), np.zeros((2, 2)), np.ones((2, 2)), np.zeros(2), [1, 0])
    with pytest.raises(ValueError, match="must be 1"):
        T.TabularMDP(np.zeros((2, 2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2), [1, 0])
    # an improper policy under gamma=1 (walk into the wall forever) is singular
    with pytest.raises(ValueError, match="singular"):
        T.policy_evaluation(T.from_env(gym.make("CliffWalking-v1")), np.zeros(48, dtype=int), 1.0)


# --- Published values: Sutton & Barto (2018), Example 4.1 and Figures 3.2 / 3.5 ---------------
# The book prints them rounded to one decimal (Example 4.1: whole numbers), so each is asserted
# to half a unit in the last printed digit.
_MOVES = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # up, right, down, left


def _sb_small_gridworld() -> T.TabularMDP:
    """Example 4.1: 4x4 grid, the two shaded corners terminal, -1 per step, off-grid = stay."""
    S, A = 16, 4
    P, R, P_end = np.zeros((S, A, S)), np.full((S, A), -1.0), np.zeros((S, A))
    terminal = np.zeros(S, bool)
    terminal[[0, 15]] = True
    for s in range(S):
        r, c = divmod(s, 4)
        for a, (dr, dc) in enumerate(_MOVES):
            if terminal[s]:
                P_end[s, a], R[s, a] = 1.0, 0.0
                continue
            r2, c2 = min(max(r + dr, 0), 3), min(max(c + dc, 0), 3)
            s2 = 4 * r2 + c2
            if terminal[s2]:
                P_end[s, a] = 1.0
            else:
                P[s, a, s2] = 1.0
    start = np.where(terminal, 0.0, 1.0 / 14)
    return T.TabularMDP(P, R, P_end, terminal, start)


def _sb_gridworld_5x5() -> T.TabularMDP:
    """Example 3.5: 5x5 continuing grid; A=(0,1) -> A'=(4,1) pays 10, B=(0,3) -> B'=(2,3)
    pays 5, a move off the grid pays -1 and stays, every other move pays 0."""
    S, A = 25, 4
    P, R = np.zeros((S, A, S)), np.zeros((S, A))
    for s in range(S):
        r, c = divmod(s, 5)
        for a, (dr, dc) in enumerate(_MOVES):
            if (r, c) == (0, 1):
                P[s, a, 5 * 4 + 1], R[s, a] = 1.0, 10.0
            elif (r, c) == (0, 3):
                P[s, a, 5 * 2 + 3], R[s, a] = 1.0, 5.0
            elif 0 <= r + dr < 5 and 0 <= c + dc < 5:
                P[s, a, 5 * (r + dr) + c + dc] = 1.0
            else:
                P[s, a, s], R[s, a] = 1.0, -1.0
    return T.TabularMDP(P, R, np.zeros((S, A)), np.zeros(S, bool), np.full(S, 1 / S))


def test_sutton_barto_example_4_1_random_policy():
    V = T.policy_evaluation(_sb_small_gridworld(), np.full((16, 4), 0.25), 1.0)
    published = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
    np.testing.assert_allclose(V.reshape(4, 4), published, atol=0.5)
    # iterative policy evaluation converges to the same table (the example's point)
    Vk = T.iterative_policy_evaluation(_sb_small_gridworld(), np.full((16, 4), 0.25), 1.0, sweeps=1000)
    np.testing.assert_allclose(Vk[-1], V, atol=1e-6)


def test_sutton_barto_figure_3_2_and_3_5():
    mdp = _sb_gridworld_5x5()
    V = T.policy_evaluation(mdp, np.full((25, 4), 0.25), 0.9)
    fig_3_2 = [[3.3, 8.8, 4.4, 5.3, 1.5], [1.5, 3.0, 2.3, 1.9, 0.5], [0.1, 0.7, 0.7, 0.4, -0.4],
               [-1.0, -0.4, -0.4, -0.6, -1.2], [-1.9, -1.3, -1.2, -1.4, -2.0]]
    np.testing.assert_allclose(V.reshape(5, 5), fig_3_2, atol=0.05 + 1e-9)
    V_star = T.value_iteration(mdp, 0.9, tol=1e-12).V
    fig_3_5 = [[22.0, 24.4, 22.0, 19.4, 17.5], [19.8, 22.0, 19.8, 17.8, 16.0],
               [17.8, 19.8, 17.8, 16.0, 14.4], [16.0, 17.8, 16.0, 14.4, 13.0],
               [14.4, 16.0, 14.4, 13.0, 11.7]]
    np.testing.assert_allclose(V_star.reshape(5, 5), fig_3_5, atol=0.05 + 1e-9)
    assert round(V[1], 1) == 8.8 and round(V_star[1], 1) == 24.4  # v(A), v*(A)
