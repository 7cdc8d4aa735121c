"""Tic-tac-toe as a search problem, and its exact minimax solution.

A :class:`TicTacToe` position is immutable and hashable; it offers the small protocol that
:mod:`lib.mcts` searches over (``to_play``, ``legal_actions``, ``apply``, ``is_terminal``,
``terminal_value``). :func:`solve` computes, by memoised negamax over the 5478 positions
reachable from the empty board, the value of every position for the player to move
(+1 win, 0 draw, -1 loss under perfect play), and :func:`optimal_moves` gives the set of moves
that keep that value. Squares are numbered 0..8 row by row; X (player 0) moves first.

Book: seed-96, seed-97
"""
from __future__ import annotations

import functools

import numpy as np

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
SYMBOLS = {0: "X", 1: "O"}
# for each square, the other two squares of every line through it
_THROUGH = tuple(tuple(tuple(q for q in line if q != sq) for line in LINES if sq in line)
                 for sq in range(9))


def _winner(board: tuple) -> int | None:
    for a, b, c in LINES:
        if board[a] is not None and board[a] == board[b] == board[c]:
            return board[a]
    return None


class TicTacToe:
    """A tic-tac-toe position: ``board`` is a tuple of 9 entries, each ``None``, 0 (X) or 1 (O).

    The player to move is derived from the counts (X moves first), so only reachable-looking
    boards are accepted: ``ValueError`` otherwise.
    """

    __slots__ = ("board", "_to_play", "_winner", "_legal")

    def __init__(self, board=None):
        board = (None,) * 9 if board is None else tuple(board)
        if len(board) != 9 or any(v not in (None, 0, 1) for v in board):
            raise ValueError(f"board must be 9 entries of None, 0 (X) or 1 (O), got {board!r}")
        nx, no = board.count(0), board.count(1)
        if nx - no not in (0, 1):
            raise ValueError(f"X moves first: expected #X - #O in (0, 1), got {nx} X and {no} O")
        self.board = board
        self._to_play = 0 if nx == no else 1
        self._winner = _winner(board)
        full = None not in board
        self._legal = () if (self._winner is not None or full) else tuple(
            i for i, v in enumerate(board) if v is None)

    # --- the search protocol -------------------------------------------------------------
    def to_play(self) -> int:
        """The player to move: 0 (X) or 1 (O)."""
        return self._to_play

    def legal_actions(self) -> tuple:
        """Empty squares, ascending; empty at a terminal position."""
        return self._legal

    def is_terminal(self) -> bool:
        return not self._legal

    def apply(self, action: int) -> "TicTacToe":
        """The position after the player to move plays on square ``action``."""
        if action not in self._legal:
            raise ValueError(f"illegal move {action!r}: legal moves are {list(self._legal)}")
        b = list(self.board)
        b[action] = me = self._to_play
        # the rules are checked once at the root; a move only needs the lines through it
        new = object.__new__(TicTacToe)
        new.board = board = tuple(b)
        new._to_play = 1 - me
        new._winner = me if any(board[x] == board[y] == me for x, y in _THROUGH[action]) else None
        new._legal = () if new._winner is not None else tuple(
            i for i in self._legal if i != action)
        return new

    def terminal_value(self) -> float:
        """At a terminal position, its value for the player to move: -1 if the opponent has
        just completed a line, 0 for a draw."""
        if self._legal:
            raise ValueError("terminal_value of a non-terminal position")
        return 0.0 if self._winner is None else (1.0 if self._winner == self._to_play else -1.0)

    # --- helpers -------------------------------------------------------------------------
    def winner(self) -> int | None:
        return self._winner

    def encode(self) -> np.ndarray:
        """(2, 3, 3) float32 planes from the mover's point of view: own stones, opponent's."""
        me = self._to_play
        own = [1.0 if v == me else 0.0 for v in self.board]
        opp = [1.0 if v == 1 - me else 0.0 for v in self.board]
        return np.array([own, opp], dtype=np.float32).reshape(2, 3, 3)

    def __str__(self) -> str:
        cells = [SYMBOLS.get(v, ".") for v in self.board]
        return "\n".join(" ".join(cells[r * 3:r * 3 + 3]) for r in range(3))

    def __repr__(self) -> str:
        return "TicTacToe(" + "".join(SYMBOLS.get(v, ".") for v in self.board) + ")"

    def __eq__(self, other) -> bool:
        return isinstance(other, TicTacToe) and self.board == other.board

    def __hash__(self) -> int:
        return hash(self.board)


@functools.lru_cache(maxsize=None)
def _negamax(board: tuple) -> int:
    s = TicTacToe(board)
    if s.is_terminal():
        return int(s.terminal_value())
    return max(-_negamax(s.apply(a).board) for a in s.legal_actions())


def value(state: TicTacToe) -> int:
    """Exact value of ``state`` for the player to move: +1 win, 0 draw, -1 loss."""
    if not isinstance(state, TicTacToe):
        raise TypeError(f"expected a TicTacToe position, got {type(state).__name__}")
    return _negamax(state.board)


def action_values(state: TicTacToe) -> dict:
    """Exact value, for the player to move, of each legal move (minus the child's value)."""
    return {a: -value(state.apply(a)) for a in state.legal_actions()}


def optimal_moves(state: TicTacToe) -> frozenset:
    """The legal moves that keep the position's exact value (empty at a terminal position)."""
    q = action_values(state)
    if not q:
        return frozenset()
    best = max(q.values())
    return frozenset(a for a, v in q.items() if v == best)


def reachable_positions() -> list:
    """Every position reachable from the empty board by legal play (5478 of them)."""
    seen, stack = {TicTacToe()}, [TicTacToe()]
    while stack:
        s = stack.pop()
        for a in s.legal_actions():
            c = s.apply(a)
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return sorted(seen, key=lambda s: (9 - s.board.count(None), repr(s)))


def solve() -> dict:
    """``{position: exact value for the player to move}`` over all reachable positions."""
    return {s: value(s) for s in reachable_positions()}
