"""Tabular gridworlds with explicit transition tables: mazes, rooms and reward maps for IRL.

A layout is a list of equal-length strings: ``#`` wall, ``.`` free, ``S`` start, ``G`` goal
(terminal). Free cells are numbered row by row; actions are 0 up, 1 right, 2 down, 3 left.
A move into a wall or off the grid leaves the agent in place. With ``slip > 0`` the intended
move is replaced by a uniformly random one with that probability.

:class:`GridWorld` is a ``gymnasium.Env`` (``Discrete`` observations and actions), so any
tabular agent written for Gymnasium runs on it, and it also exposes the model:
``P`` (S, A, S) transition probabilities and ``R`` (S, A) expected rewards.

Book: seed-51, seed-58, seed-59, seed-60, seed-61, seed-62
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

ACTIONS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left
ACTION_NAMES = ("up", "right", "down", "left")

#: Sutton & Barto's Dyna maze (6 x 9): start on the left, goal top right.
DYNA_MAZE = [
    ".......#G",
    "..#....#.",
    "S.#....#.",
    "..#......",
    ".....#...",
    ".........",
]

#: Four rooms (11 x 11 interior, after Sutton, Precup & Singh 1999) with doorways.
FOUR_ROOMS = [
    "#############",
    "#S....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#.....#",
    "#.....#.....#",
    "##.####.....#",
    "#.....###.###",
    "#.....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#....G#",
    "#############",
]


def rooms_layout(n: int = 3, room: int = 5, door_offset: int | None = None) -> list[str]:
    """An ``n x n`` grid of square rooms (``room`` cells wide) joined by one-cell doorways.

    Start in the top-left room's corner, goal in the bottom-right room's far corner.
    """
    if n < 1 or room < 2:
        raise ValueError(f"need n >= 1 rooms per side and room >= 2 cells, got n={n}, room={room}")
    door = room // 2 if door_offset is None else int(door_offset)
    if not 0 <= door < room:
        raise ValueError(f"door_offset must be in [0, {room}), got {door}")
    size = n * (room + 1) + 1
    g = [["#"] * size for _ in range(size)]
    for i in range(n):
        for j in range(n):
            r0, c0 = 1 + i * (room + 1), 1 + j * (room + 1)
            for r in range(room):
                for c in range(room):
                    g[r0 + r][c0 + c] = "."
            if j < n - 1:
                g[r0 + door][c0 + room] = "."      # door east
            if i < n - 1:
                g[r0 + room][c0 + door] = "."      # door south
    g[1][1] = "S"
    g[size - 2][size - 2] = "G"
    return ["".join(row) for row in g]


def open_grid(height: int, width: int, start=(0, 0), goal=None) -> list[str]:
    """A wall-free ``height x width`` layout (goal optional: IRL grids often have none)."""
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    g = [["."] * width for _ in range(height)]
    for name, cell, mark in (("start", start, "S"), ("goal", goal, "G")):
        if cell is None:
            continue
        try:
            r, c = (int(x) for x in cell)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a (row, column) pair, got {cell!r}") from None
        if not (0 <= r < height and 0 <= c < width):
            raise ValueError(f"{name} {tuple(cell)} lies outside the {height} x {width} grid")
        g[r][c] = mark
    return ["".join(r) for r in g]


class GridWorld(gym.Env):
    """A gridworld MDP from a layout (see module docstring).

    Parameters
    ----------
    layout : list of strings.
    step_reward : reward of every move (e.g. -0.01 or 0).
    goal_reward : reward for entering a goal cell (the episode then terminates).
    slip : probability that a random action replaces the chosen one.
    max_steps : episodes are truncated after this many steps.
    cell_reward : optional (H, W) array of rewards for *entering* each cell, added to the above
        (used for IRL reward maps).
    """

    metadata = {"render_modes": []}

    def __init__(self, layout, step_reward: float = 0.0, goal_reward: float = 1.0, slip: float = 0.0,
                 max_steps: int = 200, cell_reward=None):
        if not isinstance(layout, (list, tuple)) or not layout or not all(isinstance(r, str) for r in layout):
            raise TypeError("layout must be a non-empty list of strings")
        if len({len(r) for r in layout}) != 1:
            raise ValueError("all layout rows must have the same length")
        bad = set("".join(layout)) - set("#.SG")
        if bad:
            raise ValueError(f"layout may only use '#', '.', 'S', 'G'; found {sorted(bad)}")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.layout = list(layout)
        self.height, self.width = len(layout), len(layout[0])
        self.cells = [(r, c) for r in range(self.height) for c in range(self.width) if layout[r][c] != "#"]
        if not self.cells:
            raise ValueError("layout has no free cell")
        self.index = {rc: i for i, rc in enumerate(self.cells)}
        starts = [self.index[(r, c)] for (r, c) in self.cells if layout[r][c] == "S"]
        self.start_states = starts or [0]
        self.goal_states = [self.index[(r, c)] for (r, c) in self.cells if layout[r][c] == "G"]
        self.terminal = np.zeros(len(self.cells), dtype=bool)
        self.terminal[self.goal_states] = True
        self.slip, self.max_steps = float(slip), int(max_steps)
        self.step_reward, self.goal_reward = float(step_reward), float(goal_reward)
        if cell_reward is not None:
            cell_reward = np.asarray(cell_reward, dtype=np.float64)
            if cell_reward.shape != (self.height, self.width):
                raise ValueError(f"cell_reward must have shape {(self.height, self.width)}, got {cell_reward.shape}")
        self.cell_reward = cell_reward
        self.n_states, self.n_actions = len(self.cells), len(ACTIONS)
        self.observation_space = gym.spaces.Discrete(self.n_states)
        self.action_space = gym.spaces.Discrete(self.n_actions)
        self._build_model()
        self.state, self.t = self.start_states[0], 0
        self.np_random_ = np.random.default_rng(0)

    # ---- model
    def move(self, s: int, a: int) -> int:
        """Deterministic successor of state ``s`` under action ``a`` (walls block)."""
        r, c = self.cells[s]
        dr, dc = ACTIONS[a]
        nr, nc = r + dr, c + dc
        if 0 <= nr < self.height and 0 <= nc < self.width and self.layout[nr][nc] != "#":
            return self.index[(nr, nc)]
        return s

    def state_reward(self, s_next: int) -> float:
        """Reward for entering ``s_next`` (excluding the step cost)."""
        r = self.goal_reward if self.terminal[s_next] else 0.0
        if self.cell_reward is not None:
            r += self.cell_reward[self.cells[s_next]]
        return r

    def _build_model(self):
        S, A = self.n_states, self.n_actions
        P = np.zeros((S, A, S))
        for s in range(S):
            if self.terminal[s]:
                P[s, :, s] = 1.0       # absorbing
                continue
            for a in range(A):
                P[s, a, self.move(s, a)] += 1.0 - self.slip
                for b in range(A):
                    P[s, a, self.move(s, b)] += self.slip / A
        self.P = P
        enter = np.array([self.state_reward(s) for s in range(S)])
        R = self.step_reward + P @ enter
        R[self.terminal] = 0.0
        self.R = R

    # ---- gymnasium API
    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.np_random_ = np.random.default_rng(seed)
        self.state = int(self.start_states[self.np_random_.integers(len(self.start_states))])
        self.t = 0
        return self.state, {}

    def step(self, action):
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)) and not (
                isinstance(action, np.ndarray) and action.ndim == 0 and np.issubdtype(action.dtype, np.integer)):
            raise ValueError(f"action must be an integer in [0, {self.n_actions}), got {action!r}")
        a = int(action)
        if not 0 <= a < self.n_actions:
            raise ValueError(f"action must be in [0, {self.n_actions}), got {action}")
        if self.slip > 0 and self.np_random_.random() < self.slip:
            a = int(self.np_random_.integers(self.n_actions))
        s2 = self.move(self.state, a)
        reward = self.step_reward + self.state_reward(s2)
        self.state, self.t = s2, self.t + 1
        terminated = bool(self.terminal[s2])
        truncated = (not terminated) and self.t >= self.max_steps
        return s2, float(reward), terminated, truncated, {}

    # ---- helpers for plots
    def to_grid(self, values, fill=np.nan) -> np.ndarray:
        """Place a per-state vector (S,) on the (H, W) grid (walls get ``fill``)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (self.n_states,):
            raise ValueError(f"values must have shape ({self.n_states},), got {values.shape}")
        g = np.full((self.height, self.width), fill, dtype=np.float64)
        for s, (r, c) in enumerate(self.cells):
            g[r, c] = values[s]
        return g

    def state_of(self, row: int, col: int) -> int:
        if (row, col) not in self.index:
            raise ValueError(f"({row}, {col}) is a wall or outside the grid")
        return self.index[(row, col)]


def value_iteration(P, R, gamma: float, tol: float = 1e-10):
    """Optimal ``V`` (S,) and ``Q`` (S, A) of the tables ``P`` (S, A, S), ``R`` (S, A) (goal states absorbing
    with zero reward), solved by :func:`lib.rl.tabular.value_iteration` (the book's one implementation)."""
    from .tabular import TabularMDP, value_iteration as _vi

    P = np.asarray(P, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2] or R.shape != P.shape[:2]:
        raise ValueError(f"P must be (S, A, S) and R (S, A); got {P.shape}, {R.shape}")
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must be in [0, 1) for these tables (absorbing goals), got {gamma}")
    S, A = R.shape
    mdp = TabularMDP(P, R, np.zeros((S, A)), np.zeros(S, dtype=bool), np.full(S, 1.0 / S))
    res = _vi(mdp, gamma, tol=tol)
    return res.V, res.Q


__all__ = ["ACTIONS", "ACTION_NAMES", "DYNA_MAZE", "FOUR_ROOMS", "rooms_layout", "open_grid", "GridWorld",
           "value_iteration"]


class OneHotObservation(gym.ObservationWrapper):
    """Present a ``Discrete`` observation as a one-hot float32 vector (for neural agents)."""

    def __init__(self, env):
        super().__init__(env)
        if not isinstance(env.observation_space, gym.spaces.Discrete):
            raise TypeError("OneHotObservation needs a Discrete observation space")
        self.n = int(env.observation_space.n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)

    def observation(self, s):
        o = np.zeros(self.n, dtype=np.float32)
        o[int(s)] = 1.0
        return o


__all__ += ["OneHotObservation"]
