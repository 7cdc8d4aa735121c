"""AlphaZero in miniature: the pieces are right, and a short run is reproducible and learns."""
import numpy as np
import pytest
import torch

from lib import alphazero as AZ
from lib.games import tictactoe as T


def test_config_validation():
    with pytest.raises(ValueError):
        AZ.AlphaZeroConfig(iterations=0)
    with pytest.raises(ValueError):
        AZ.AlphaZeroConfig(noise_fraction=1.5)
    with pytest.raises(ValueError):
        AZ.AlphaZeroConfig(c_puct=0.0)
    with pytest.raises(TypeError, match="AlphaZeroConfig"):
        AZ.train_alphazero({"iterations": 1})


def test_symmetries_map_lines_to_lines():
    lines = {frozenset(l) for l in T.LINES}
    assert len({tuple(q) for q in AZ.SYMMETRIES}) == 8
    for q in AZ.SYMMETRIES:
        assert sorted(q) == list(range(9))
        inv = np.argsort(q)
        assert {frozenset(int(inv[i]) for i in l) for l in lines} == lines


def test_visit_distribution():
    np.testing.assert_allclose(AZ.visit_distribution([1, 3], 1.0), [0.25, 0.75])
    np.testing.assert_allclose(AZ.visit_distribution([1, 3], 0.0), [0.0, 1.0])
    np.testing.assert_allclose(AZ.visit_distribution([1, 2], 0.5), [0.2, 0.8])
    with pytest.raises(ValueError, match="counts"):
        AZ.visit_distribution([0, 0])
    with pytest.raises(ValueError, match="temperature"):
        AZ.visit_distribution([1, 2], -1)


def test_network_table_and_self_play():
    torch.manual_seed(0)
    net = AZ.PolicyValueNet(16)
    table = AZ.network_table(net)
    assert len(table) == 4520  # non-terminal reachable positions
    for s in list(table)[:50]:
        pri, v = table[s]
        assert len(pri) == len(s.legal_actions()) and abs(sum(pri) - 1) < 1e-5 and -1 <= v <= 1
    import random

    rows = AZ.self_play_game(table, AZ.AlphaZeroConfig(simulations=8), random.Random(0))
    s = T.TicTacToe()
    for k, (pos, pi, z) in enumerate(rows):
        assert pos == s and abs(pi.sum() - 1) < 1e-5 and pi[~AZ.legal_mask(pos)].sum() == 0
        if k + 1 < len(rows):
            s = s.apply(next(a for a in range(9) if rows[k + 1][0].board[a] != s.board[a]))
    zs = [z for _, _, z in rows]
    assert all(zs[i] == -zs[i + 1] for i in range(len(zs) - 1))  # players alternate


def test_tactician_wins_and_blocks():
    p = AZ.tactician(0)
    assert p(T.TicTacToe([0, 0, None, 1, 1, None, None, None, None])) == 2  # win
    assert p(T.TicTacToe([0, None, None, 1, 1, None, 0, None, None])) == 5  # block
    assert AZ.match_score(lambda s: min(T.optimal_moves(s)), AZ.random_player, 6, 0) >= 0.5


def test_short_run_is_reproducible_and_learns():
    cfg = AZ.AlphaZeroConfig(iterations=4, games_per_iteration=16, eval_every=4,
                             eval_positions=60, eval_games=4, seed=3)
    a = AZ.train_alphazero(cfg)
    b = AZ.train_alphazero(cfg)
    assert a.history == b.history
    assert a.history[-1]["raw_accuracy"] > a.history[0]["raw_accuracy"] + 0.1
