"""Feudal (manager/worker) Q-learning on a rooms gridworld, after Dayan & Hinton (1993).

* The **manager** sees only which room the agent is in (information hiding) and, every time
  the previous command ends, issues a command ``c``: go to the room north / east / south / west,
  or ``search`` the current room. It learns ``Q_m(room, c)`` by SMDP Q-learning from the
  *extrinsic* reward collected while the command ran, discounted by its duration.
* The **worker** sees the cell and the command and learns ``Q_w(c, s, a)`` from an *intrinsic*
  reward (reward hiding): +1 for entering the commanded room (for ``search``: the extrinsic
  goal reward). A command ends when the agent leaves its room, reaches the goal, or after
  ``max_command_steps`` steps.

Because the worker's skills ("leave through the east door") are reused by the manager from
every room, a sparse reward far away is found much faster than by flat Q-learning.

Book: seed-62
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .mc_td import check_control_args, epsilon_greedy_action
from .gridworld import GridWorld

COMMANDS = ("north", "east", "south", "west", "search")
_DIRS = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}


def room_map(env: GridWorld, room: int) -> tuple[np.ndarray, int]:
    """Room index of every state for a :func:`rooms_layout` grid of ``room``-wide rooms.

    Doorway cells belong to the room on their north/west side. Returns (room_of_state (S,), n_per_side).
    """
    if room < 2:
        raise ValueError(f"room must be >= 2, got {room}")
    n = (env.height - 1) // (room + 1)
    if n * (room + 1) + 1 != env.height or env.height != env.width:
        raise ValueError("env is not a square rooms_layout grid with this room size")
    rooms = np.empty(env.n_states, dtype=np.int64)
    for s, (r, c) in enumerate(env.cells):
        i, j = min((r - 1) // (room + 1), n - 1), min((c - 1) // (room + 1), n - 1)
        rooms[s] = i * n + j
    return rooms, n


@dataclasses.dataclass
class FeudalRun:
    Q_manager: np.ndarray      # (n_rooms, 5)
    Q_worker: np.ndarray       # (5, S, A)
    steps_per_episode: np.ndarray
    reached_goal: np.ndarray
    commands_per_episode: np.ndarray


def feudal_q(env: GridWorld, room: int, n_episodes: int, alpha: float = 0.2, gamma: float = 0.99,
             epsilon: float = 0.1, manager_alpha: float = 0.2, manager_epsilon: float = 0.1,
             max_command_steps: int = 25, seed: int = 0) -> FeudalRun:
    """Train the two-level feudal agent for ``n_episodes`` (each capped by ``env.max_steps``)."""
    gamma = check_control_args(n_episodes, alpha, gamma, epsilon)
    if not isinstance(env, GridWorld):
        raise TypeError("feudal_q needs a lib.rl.gridworld.GridWorld (it uses the room structure)")
    if max_command_steps < 1:
        raise ValueError(f"max_command_steps must be >= 1, got {max_command_steps}")
    rooms, n = room_map(env, room)
    rng = np.random.default_rng(seed)
    S, A, C = env.n_states, env.n_actions, len(COMMANDS)
    Qm = np.zeros((n * n, C))
    Qw = np.zeros((C, S, A))
    steps = np.zeros(n_episodes, dtype=np.int64)
    goal = np.zeros(n_episodes, dtype=bool)
    ncmd = np.zeros(n_episodes, dtype=np.int64)

    def target_room(rm: int, c: int) -> int:
        i, j = divmod(rm, n)
        if c == 4:
            return rm
        di, dj = _DIRS[c]
        ti, tj = i + di, j + dj
        return ti * n + tj if 0 <= ti < n and 0 <= tj < n else -1

    s, _ = env.reset(seed=seed)
    for ep in range(n_episodes):
        if ep > 0:
            s, _ = env.reset()
        done = False
        while not done:
            rm = rooms[s]
            c = epsilon_greedy_action(Qm[rm], manager_epsilon, rng)
            tgt = target_room(rm, c)
            ncmd[ep] += 1
            ext, disc, k = 0.0, 1.0, 0
            while True:
                a = epsilon_greedy_action(Qw[c, s], epsilon, rng)
                s2, r, term, trunc, _ = env.step(a)
                steps[ep] += 1
                ext += disc * r
                disc *= gamma
                k += 1
                left = rooms[s2] != rm
                if c == 4:
                    r_int, w_end = r, term or left
                else:
                    r_int, w_end = float(rooms[s2] == tgt), left or term
                Qw[c, s, a] += alpha * (r_int + (0.0 if w_end else gamma * Qw[c, s2].max()) - Qw[c, s, a])
                s = s2
                done = term or trunc
                if done:
                    goal[ep] = bool(term)
                if w_end or done or k >= max_command_steps:
                    break
            boot = 0.0 if (done and goal[ep]) else disc * Qm[rooms[s]].max()
            Qm[rm, c] += manager_alpha * (ext + boot - Qm[rm, c])
    return FeudalRun(Qm, Qw, steps, goal, ncmd)


__all__ = ["COMMANDS", "room_map", "FeudalRun", "feudal_q"]
