import numpy as np
import pytest

from lib.rl.dyna import dyna_q
from lib.rl.feudal import COMMANDS, feudal_q, room_map
from lib.rl.gridworld import DYNA_MAZE, GridWorld, rooms_layout


def test_room_map():
    env = GridWorld(rooms_layout(2, 3))
    rooms, n = room_map(env, 3)
    assert n == 2 and set(rooms.tolist()) == {0, 1, 2, 3}
    assert rooms[env.state_of(1, 1)] == 0 and rooms[env.state_of(5, 5)] == 3
    with pytest.raises(ValueError):
        room_map(GridWorld(DYNA_MAZE), 3)


def test_feudal_beats_flat_q_on_sparse_rooms():
    fe, fl = [], []
    for seed in range(2):
        f = feudal_q(GridWorld(rooms_layout(3, 5), max_steps=400), 5, 80, seed=seed)
        q = dyna_q(GridWorld(rooms_layout(3, 5), max_steps=400), 80, 0, alpha=0.2, gamma=0.99, seed=seed)
        fe.append(f.reached_goal.sum())
        fl.append(q.reached_goal.sum())
    assert np.mean(fe) > 2 * np.mean(fl)
    assert f.Q_manager.shape == (9, len(COMMANDS)) and f.Q_worker.shape[0] == len(COMMANDS)


def test_errors():
    with pytest.raises(TypeError):
        feudal_q(object(), 5, 1)
    with pytest.raises(ValueError):
        feudal_q(GridWorld(rooms_layout(2, 3)), 3, 1, max_command_steps=0)
