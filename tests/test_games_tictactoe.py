"""Tic-tac-toe: the rules, the protocol, and the exact solution's known facts."""
import numpy as np
import pytest

from lib.games import tictactoe as T


def test_rules_and_protocol():
    s = T.TicTacToe()
    assert s.to_play() == 0 and s.legal_actions() == tuple(range(9)) and not s.is_terminal()
    s = s.apply(4)
    assert s.to_play() == 1 and 4 not in s.legal_actions()
    for a in (0, 1, 8, 2, 5, 7):  # O 0, X 1, O 8, X 2, O 5, X 7: X holds 1-4-7
        s = s.apply(a)
    assert s.is_terminal() and s.winner() == 0 and s.to_play() == 1
    assert s.terminal_value() == -1.0 and s.legal_actions() == ()
    draw = T.TicTacToe([0, 1, 0, 0, 1, 1, 1, 0, 0])
    assert draw.is_terminal() and draw.terminal_value() == 0.0
    assert s.encode().shape == (2, 3, 3) and s.encode().dtype == np.float32
    assert T.TicTacToe(s.board) == s and hash(T.TicTacToe(s.board)) == hash(s)


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="9 entries"):
        T.TicTacToe([0] * 8)
    with pytest.raises(ValueError, match="X moves first"):
        T.TicTacToe([1] + [None] * 8)
    with pytest.raises(ValueError, match="illegal move"):
        T.TicTacToe().apply(4).apply(4)
    with pytest.raises(ValueError, match="non-terminal"):
        T.TicTacToe().terminal_value()
    with pytest.raises(TypeError, match="TicTacToe"):
        T.value("x")


def test_exact_solution_known_facts():
    values = T.solve()
    assert len(values) == 5478  # reachable positions, the classic count
    assert values[T.TicTacToe()] == 0  # a draw under perfect play
    assert set(T.action_values(T.TicTacToe()).values()) == {0}  # every first move draws
    # after X takes a corner, O must take the centre
    assert T.optimal_moves(T.TicTacToe().apply(0)) == frozenset({4})
    # X to move with two in a row wins at once
    s = T.TicTacToe([0, 0, None, 1, 1, None, None, None, None])
    assert T.value(s) == 1 and 2 in T.optimal_moves(s)
    # negamax consistency: a position's value is the best of its moves' values
    for pos, v in list(values.items())[::37]:
        if not pos.is_terminal():
            assert v == max(T.action_values(pos).values())
    assert T.optimal_moves(T.TicTacToe([0, 1, 0, 0, 1, 1, 1, 0, 0])) == frozenset()
