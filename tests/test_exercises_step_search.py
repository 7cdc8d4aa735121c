"""The step-search exercise checkers accept correct answers and reject wrong ones."""
import collections
import math

from lib.exercises import step_search as ex


def _uct_pick(q, n, n_parent, c):
    s = [qi + c * math.sqrt(math.log(n_parent) / ni) for qi, ni in zip(q, n)]
    return s.index(max(s))


def test_select_child_checker():
    assert ex.check_select_child(ex.select_child_reference, trials=10)
    assert ex.check_select_child(_uct_pick)
    # greedy on Q ignores the exploration bonus; most visits is the final choice, not selection
    assert not ex.check_select_child(lambda q, n, n_parent, c: q.index(max(q)))
    assert not ex.check_select_child(lambda q, n, n_parent, c: n.index(max(n)))
    # the bonus with sqrt(n_parent / n) instead of sqrt(ln n_parent / n)
    assert not ex.check_select_child(lambda q, n, n_parent, c: max(
        range(len(q)), key=lambda i: q[i] + c * math.sqrt(n_parent / n[i])))

    def stub(*a, **k):
        raise NotImplementedError

    rep = ex.check_select_child(stub)
    assert not rep and not rep.attempted


def test_step_priors_checker():
    assert ex.check_step_priors(ex.step_priors_reference, trials=10)

    def ok(texts):
        c = collections.Counter(texts)
        return {t: c[t] / len(texts) for t in c}

    assert ex.check_step_priors(ok)
    assert not ex.check_step_priors(lambda texts: {t: 1 / len(set(texts)) for t in texts})
    assert not ex.check_step_priors(lambda texts: dict(collections.Counter(texts)))


def test_reference_matches_lib_selection():
    """The reference picks what lib.mcts's selection step picks."""
    from lib import mcts as MC

    class Leaf:
        def __init__(self, acts=()):
            self.acts = list(acts)

        def to_play(self):
            return 0

        def legal_actions(self):
            return self.acts

        def apply(self, a):
            return Leaf()

        def is_terminal(self):
            return not self.acts

        def terminal_value(self):
            return 0.0

    tree = MC.MCTS(Leaf("abc"), MC.MCTSConfig(simulations=1, c=0.7))
    q, n = [0.5, 1.0, 0.0], [4, 2, 1]
    for a, qi, ni in zip("abc", q, n):
        ch = tree._child(tree.root, a)
        ch.N, ch.W = ni, qi * ni
    tree.root.untried = []
    tree.root.N = sum(n)
    picked = tree.select()[1].action
    assert picked == "abc"[ex.select_child_reference(q, n, sum(n), 0.7)]
