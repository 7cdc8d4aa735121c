"""lib.metrics equals scikit-learn on random and heavily tied inputs, and rejects bad input."""
import numpy as np
import pytest
from sklearn import metrics as skm

from lib import metrics as M


def _cases():
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        y[0], y[1] = 0, 1
        if trial % 3 == 0:
            s = rng.integers(0, 4, n).astype(float)       # many ties
        elif trial % 3 == 1:
            s = rng.normal(size=n) + y                     # informative
        else:
            s = rng.random(n)
        yield y, s


@pytest.mark.parametrize("y,s", list(_cases()))
def test_equal_to_sklearn(y, s):
    fpr, tpr, thr = M.roc_curve(y, s)
    fpr_s, tpr_s, thr_s = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_s)
    np.testing.assert_allclose(tpr, tpr_s)
    np.testing.assert_allclose(thr[1:], thr_s[1:])
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.rank_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(
        skm.average_precision_score(y, s), abs=1e-12)
    # sklearn's PR curve runs the other way and stops once recall reaches 1
    p, r, t = M.precision_recall_curve(y, s)
    p_s, r_s, t_s = skm.precision_recall_curve(y, s)
    k = len(t_s)
    np.testing.assert_allclose(p[1:k + 1], p_s[:-1][::-1])
    np.testing.assert_allclose(r[1:k + 1], r_s[:-1][::-1])
    np.testing.assert_allclose(t[1:k + 1], t_s[::-1])
    pred = (s >= np.median(s)).astype(int)
    prec, rec, f1 = M.precision_recall_f1(y, pred)
    assert prec == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert rec == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert f1 == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert M.confusion_counts(y, pred) == (tp, fp, fn, tn)


def test_edge_values():
    assert M.roc_auc([0, 1], [0.3, 0.3]) == 0.5          # a tie is a diagonal step
    assert M.roc_auc([0, 0, 1, 1], [0, 1, 2, 3]) == 1.0
    assert M.roc_auc([1, 1, 0, 0], [0, 1, 2, 3]) == 0.0
    assert M.average_precision([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0
    assert M.f1_from_counts(0, 0, 0) == 0.0
    assert M.f1_from_counts(3, 1, 2) == pytest.approx(6 / 9)
    assert M.precision_recall_f1([0, 0, 1], [0, 0, 0]) == (0.0, 0.0, 0.0)
    assert M.confusion_counts([True, False], [True, True]) == (1, 1, 0, 0)


def test_validation_errors():
    with pytest.raises(ValueError, match="binary"):
        M.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="equal lengths"):
        M.roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        M.average_precision([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="one positive and one negative"):
        M.roc_curve([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-empty"):
        M.confusion_counts([], [])
    with pytest.raises(TypeError, match="0/1"):
        M.confusion_counts(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        M.f1_from_counts(-1, 0, 0)
    with pytest.raises(ValueError, match="equal lengths"):
        M.confusion_counts([0, 1], [0, 1, 1])
