import numpy as np
import pytest

from lib.rl.dyna import dyna_q
from lib.rl.gridworld import DYNA_MAZE, GridWorld


def test_planning_speeds_up_learning():
    steps = {}
    for n in (0, 10):
        runs = [dyna_q(GridWorld(DYNA_MAZE, max_steps=3000), 15, n, seed=s).steps_per_episode for s in range(3)]
        steps[n] = np.mean(runs, axis=0)
    assert steps[10][1:6].sum() < steps[0][1:6].sum() / 2


def test_update_counts_and_result():
    r = dyna_q(GridWorld(DYNA_MAZE, max_steps=3000), 5, 3, seed=0)
    assert r.updates == r.steps_per_episode.sum() * 4
    assert r.reached_goal.all() and r.Q.shape == (47, 4)
    assert np.all(r.returns == 1.0)


def test_single_transition_update_matches_formula():
    env = GridWorld(["SG"], max_steps=5)          # one step right reaches the goal
    r = dyna_q(env, 1, 0, alpha=0.5, gamma=0.9, epsilon=0.0, seed=0, q_init=0.0)
    # greedy ties broken at random: every step updates Q[s, a] += 0.5 * (target - Q)
    assert r.Q[0, 1] == pytest.approx(0.5)


def test_errors():
    env = GridWorld(DYNA_MAZE)
    with pytest.raises(ValueError, match="n_planning"):
        dyna_q(env, 1, -1)
    with pytest.raises(ValueError, match="alpha"):
        dyna_q(env, 1, 0, alpha=0.0)
    with pytest.raises(ValueError, match="n_episodes"):
        dyna_q(env, 0)
