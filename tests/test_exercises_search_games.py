"""The Part 9 search exercise checkers accept correct answers and reject wrong ones."""
import math

from lib.exercises import search_games as ex


def test_uct_checker():
    assert ex.check_uct(ex.uct_reference, trials=10)
    assert ex.check_uct(lambda q, n_parent, n, c: q + c * math.sqrt(math.log(n_parent) / n))
    assert not ex.check_uct(lambda q, n_parent, n, c: q + c * math.sqrt(n_parent / n))
    assert not ex.check_uct(lambda q, n_parent, n, c: q + c * math.log(n_parent) / n)

    def stub(*a, **k):
        raise NotImplementedError

    rep = ex.check_uct(stub)
    assert not rep and not rep.attempted


def test_puct_checker():
    assert ex.check_puct(ex.puct_reference, trials=10)
    assert ex.check_puct(lambda q, prior, n_parent, n, c: q + c * prior * math.sqrt(n_parent) / (1 + n))
    assert not ex.check_puct(lambda q, prior, n_parent, n, c: q + c * prior * math.sqrt(n_parent) / max(n, 1))
    assert not ex.check_puct(lambda q, prior, n_parent, n, c: q + c * math.sqrt(n_parent) / (1 + n))


def test_visit_distribution_checker():
    import numpy as np

    assert ex.check_visit_distribution(ex.visit_distribution_reference, trials=10)

    def ok(visits, temperature):
        n = np.asarray(visits, float)
        if temperature == 0:
            return (n == n.max()).astype(float)
        w = n ** (1 / temperature)
        return w / w.sum()

    assert ex.check_visit_distribution(ok)
    assert not ex.check_visit_distribution(lambda visits, temperature: np.asarray(visits) / np.sum(visits))
    assert not ex.check_visit_distribution(
        lambda visits, temperature: ok(visits, 1.0 if temperature == 0 else temperature))
