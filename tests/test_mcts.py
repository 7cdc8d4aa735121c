"""MCTS: the four steps keep the tree consistent, the scores are UCT's and PUCT's, and the
search finds what the exact solver knows."""
import math

import pytest

from lib import mcts as M
from lib.games import tictactoe as T


def test_config_validation():
    with pytest.raises(ValueError):
        M.MCTSConfig(simulations=0)
    with pytest.raises(ValueError):
        M.MCTSConfig(c=-1.0)
    with pytest.raises(ValueError):
        M.MCTSConfig(selection="ucb")
    with pytest.raises(TypeError, match="MCTSConfig"):
        M.MCTS(T.TicTacToe(), {"simulations": 3})
    with pytest.raises(TypeError, match="must offer"):
        M.MCTS(object(), M.MCTSConfig())
    with pytest.raises(ValueError, match="non-terminal"):
        M.search(T.TicTacToe([0, 1, 0, 0, 1, 1, 1, 0, 0]), M.MCTSConfig())
    with pytest.raises(ValueError, match="snapshot_at"):
        M.search(T.TicTacToe(), M.MCTSConfig(simulations=5), snapshot_at=[6])


@pytest.mark.parametrize("selection", ["uct", "puct"])
def test_every_step_keeps_the_tree_consistent(selection):
    tree = M.MCTS(T.TicTacToe(), M.MCTSConfig(selection=selection, seed=3))
    its = []
    for _ in range(300):
        its.append(tree.iterate())
        assert M.tree_violations(tree.root) == []
    assert M.tree_violations(tree.root, its) == []
    # a corrupted W is caught
    child = next(iter(tree.root.children.values()))
    child.W += 1.0
    assert M.tree_violations(tree.root, its)
    child.N += 1
    assert any("n_leaf" in v for v in M.tree_violations(tree.root))


def test_uct_steps_one_at_a_time():
    tree = M.MCTS(T.TicTacToe(), M.MCTSConfig(seed=1))
    path = tree.select()
    assert path == [tree.root]  # the root has untried moves: selection stops there
    child, value = tree.expand(path)
    assert value is None and path[-1] is child and len(tree.root.untried) == 8
    v, moves = tree.simulate(child)
    s = child.state
    for a in moves:
        s = s.apply(a)
    assert s.is_terminal()
    want = s.terminal_value() * (1 if s.to_play() == child.state.to_play() else -1)
    assert v == want
    tree.backup(path, v, child.state.to_play())
    # the child's W is for X, who moved into it: minus O's value
    assert child.N == 1 and child.W == -v and tree.root.N == 1


def test_scores_match_their_formulas():
    assert M.uct_score(0.5, 100, 10, 2.0) == pytest.approx(0.5 + 2 * math.sqrt(math.log(100) / 10))
    assert M.puct_score(0.5, 0.2, 100, 9, 1.5) == pytest.approx(0.5 + 1.5 * 0.2 * 10 / 10)
    with pytest.raises(ValueError):
        M.uct_score(0.0, 5, 0, 1.0)
    with pytest.raises(ValueError):
        M.puct_score(0.0, 1.5, 5, 1, 1.0)
    tree = M.MCTS(T.TicTacToe(), M.MCTSConfig(seed=0))
    for _ in range(50):
        tree.iterate()
    ch = next(iter(tree.root.children.values()))
    assert tree.score(tree.root, ch) == pytest.approx(
        M.uct_score(ch.Q, tree.root.N, ch.N, tree.cfg.c))


def test_search_finds_the_win_and_the_block():
    win = T.TicTacToe([0, 0, None, 1, 1, None, None, None, None])  # X wins at 2
    block = T.TicTacToe([0, None, None, 1, 1, None, 0, None, None])  # X must block 5
    for sel in ("uct", "puct"):
        cfg = M.MCTSConfig(simulations=300, selection=sel, seed=0)
        assert M.search(win, cfg).best_action() == 2
        r = M.search(block, cfg)
        assert r.best_action() in T.optimal_moves(block)
    r = M.search(win, M.MCTSConfig(simulations=2000, seed=0), snapshot_at=[10, 2000])
    assert set(r.snapshots) == {10, 2000}
    assert r.q[r.actions.index(2)] == 1.0  # the winning move's every visit is a win


def test_visits_concentrate_on_optimal_moves():
    s = T.TicTacToe().apply(0)  # O must answer the corner with the centre
    share = []
    for sims in (50, 3000):
        r = M.search(s, M.MCTSConfig(simulations=sims, seed=0))
        share.append(r.visits[r.actions.index(4)] / sum(r.visits))
    assert share[1] > share[0] and share[1] > 0.5


def test_all_lines_is_exhaustive_and_finds_losses():
    def first_legal(s):
        return s.legal_actions()[0]

    rep = M.all_lines(T.TicTacToe(), first_legal, T.optimal_moves, 0)
    assert rep.losses > 0 and rep.losing_line is not None
    perfect = M.all_lines(T.TicTacToe(), lambda s: min(T.optimal_moves(s)), T.optimal_moves, 1)
    assert perfect.losses == 0 and perfect.wins == 0 and perfect.draws == perfect.lines > 1
    with pytest.raises(ValueError, match="player 0 or 1"):
        M.all_lines(T.TicTacToe(), first_legal, T.optimal_moves, 2)


def test_one_player_problem_never_flips():
    class Walk:  # reach 3 in at most 3 steps of +1 or +2; value 1 if exactly 3
        def __init__(self, x=0, t=0):
            self.x, self.t = x, t

        def to_play(self):
            return 0

        def legal_actions(self):
            return () if self.x >= 3 or self.t == 3 else (1, 2)

        def is_terminal(self):
            return not self.legal_actions()

        def apply(self, a):
            return Walk(self.x + a, self.t + 1)

        def terminal_value(self):
            return 1.0 if self.x == 3 else 0.0

    r = M.search(Walk(), M.MCTSConfig(simulations=200, seed=0), record=True)
    assert M.tree_violations(r.root, r.iterations) == []
    assert all(0 <= q <= 1 for q in r.q) and r.root.W >= 0


def test_mcts_player_is_deterministic_per_position():
    p1 = M.mcts_player(M.MCTSConfig(simulations=50, seed=4))
    p2 = M.mcts_player(M.MCTSConfig(simulations=50, seed=4))
    s = T.TicTacToe().apply(0).apply(4)
    assert p1(s) == p2(s) == p1(s) and len(p1.memo) == 1


def test_puct_descends_and_never_recreates_children():
    # regression: PUCT once left an expanded node's `untried` list full, so selection stopped at
    # depth 1 and every visit re-created that node's children (a one-ply search in disguise)
    s = M.MCTS(T.TicTacToe(), M.MCTSConfig(simulations=400, selection="puct", seed=0))
    for _ in range(400):
        s.iterate()
    assert M.tree_violations(s.root) == []
    assert s.n_nodes == len(list(s.root.nodes()))  # every node created is still in the tree
    depth = max(len(list(_ancestors(n))) for n in s.root.nodes())
    assert depth >= 4, depth


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node
