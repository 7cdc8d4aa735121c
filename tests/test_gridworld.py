import numpy as np
import pytest

from lib.rl.gridworld import (DYNA_MAZE, FOUR_ROOMS, GridWorld, OneHotObservation, open_grid, rooms_layout,
                              value_iteration)


def test_model_matches_sampled_steps():
    env = GridWorld(DYNA_MAZE, step_reward=-0.01, slip=0.2, max_steps=50)
    assert np.allclose(env.P.sum(-1), 1.0)
    rng = np.random.default_rng(0)
    s, a = env.state_of(2, 0), 1
    counts = np.zeros(env.n_states)
    env.reset(seed=0)
    for _ in range(4000):
        env.state = s
        s2, *_ = env.step(a)
        counts[s2] += 1
    assert np.abs(counts / counts.sum() - env.P[s, a]).max() < 0.03
    assert rng is not None


def test_walls_goal_and_truncation():
    env = GridWorld(["S#G", "..."], max_steps=3)
    s, _ = env.reset(seed=0)
    assert env.move(s, 1) == s                # wall to the right
    assert env.move(s, 0) == s                # grid edge
    s2, r, term, trunc, _ = env.step(2)       # down
    assert (r, term, trunc) == (0.0, False, False)
    env.step(1)
    s4, r, term, trunc, _ = env.step(1)       # right: bottom-right corner (not the goal)
    assert trunc and not term
    env.reset()
    env.state = env.state_of(1, 2)
    _, r, term, _, _ = env.step(0)            # up into G
    assert term and r == 1.0


def test_value_iteration_is_bellman_optimal():
    env = GridWorld(FOUR_ROOMS, step_reward=-0.01, slip=0.1)
    V, Q = value_iteration(env.P, env.R, 0.95)
    assert np.allclose(Q, env.R + 0.95 * env.P @ V, atol=1e-8)
    assert np.allclose(V, Q.max(1), atol=1e-8)
    assert V[env.goal_states[0]] == 0.0
    # a deterministic corridor: V(s) = gamma^(distance - 1) * goal reward
    line = GridWorld(["S...G"])
    V, _ = value_iteration(line.P, line.R, 0.9)
    assert np.allclose(V[:4], 0.9 ** np.array([3, 2, 1, 0]))


def test_layout_helpers_and_errors():
    lay = rooms_layout(3, 5)
    assert len(lay) == 19 and lay[1][1] == "S" and lay[17][17] == "G"
    assert open_grid(2, 3, goal=(1, 2)) == ["S..", "..G"]
    with pytest.raises(ValueError, match="same length"):
        GridWorld(["..", "."])
    with pytest.raises(ValueError, match="only use"):
        GridWorld([".x"])
    with pytest.raises(ValueError, match="slip"):
        GridWorld([".."], slip=2.0)
    env = GridWorld(DYNA_MAZE)
    with pytest.raises(ValueError, match="wall"):
        env.state_of(1, 2)
    with pytest.raises(ValueError, match="action"):
        env.step(7)
    with pytest.raises(ValueError, match="values"):
        env.to_grid(np.zeros(3))
    with pytest.raises(ValueError):
        value_iteration(env.P, env.R, 1.0)


def test_one_hot_wrapper():
    env = OneHotObservation(GridWorld(DYNA_MAZE))
    o, _ = env.reset(seed=0)
    assert o.shape == (47,) and o.sum() == 1.0


def test_open_grid_rejects_cells_outside_the_grid():
    # regressions: goal=(5, 5) raised IndexError, start=(-1, 0) silently wrapped to the last row
    with pytest.raises(ValueError, match=r"goal \(5, 5\) lies outside the 3 x 3 grid"):
        open_grid(3, 3, goal=(5, 5))
    with pytest.raises(ValueError, match=r"start \(-1, 0\) lies outside"):
        open_grid(3, 3, start=(-1, 0))
    with pytest.raises(ValueError, match="pair"):
        open_grid(3, 3, goal=5)
    with pytest.raises(ValueError, match="positive integer"):
        open_grid(0, 3)
    assert open_grid(2, 3, start=(0, 0), goal=(1, 2)) == ["S..", "..G"]


def test_step_rejects_non_integer_actions():
    # regression: step(1.5) ran as action 1
    env = GridWorld(open_grid(3, 3, goal=(2, 2)))
    env.reset(seed=0)
    for bad in (1.5, "1", True, np.array([1])):
        with pytest.raises(ValueError, match="action must be an integer"):
            env.step(bad)
    env.reset(seed=0)
    expected = env.move(env.state, 1)
    for good in (1, np.int64(1), np.array(1)):
        env.reset(seed=0)
        assert env.step(good)[0] == expected
