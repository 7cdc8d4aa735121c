"""The ORM/PRM exercise checkers accept correct answers and reject wrong ones."""
import numpy as np

from lib.exercises import prm as ex


def test_prefix_labels_checker():
    assert ex.check_prefix_labels(ex.prefix_labels_reference, trials=10)

    def ok(valid):
        return list(np.cumprod(np.asarray(valid, dtype=bool)).astype(bool))

    assert ex.check_prefix_labels(ok)

    def copy_checker(valid):  # the checker's own verdicts: a right-looking step after a wrong one passes
        return list(valid)

    assert not ex.check_prefix_labels(copy_checker)

    def off_by_one(valid):  # judges step k by the steps before it only
        out, good = [], True
        for v in valid:
            out.append(good)
            good = good and v
        return out

    assert not ex.check_prefix_labels(off_by_one)

    def stub(valid):
        raise NotImplementedError

    rep = ex.check_prefix_labels(stub)
    assert not rep and not rep.attempted


def test_aggregate_checker():
    assert ex.check_aggregate(ex.aggregate_reference, trials=10)

    def ok(step_probs, how):
        p = np.asarray(step_probs, dtype=float)
        return p.min() if how == "min" else np.exp(np.log(p).sum())

    assert ex.check_aggregate(ok)

    def mean_instead(step_probs, how):
        return float(np.mean(step_probs))

    assert not ex.check_aggregate(mean_instead)

    def swapped(step_probs, how):
        p = np.asarray(step_probs, dtype=float)
        return float(p.prod() if how == "min" else p.min())

    assert not ex.check_aggregate(swapped)
