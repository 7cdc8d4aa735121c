"""Binary-classification metrics written out: counts, precision, recall, F1, the ROC and
precision-recall curves, ROC AUC and average precision.

Book: seed-119.

Conventions (those of scikit-learn, which ``tests/test_metrics.py`` checks them against):

* ``labels`` are 0/1 (or bool), ``scores`` are finite reals, higher meaning "more positive";
  a threshold ``t`` predicts positive when ``score >= t``;
* the curves walk the *distinct* scores from the highest down, so tied scores enter together
  (a tie between a positive and a negative is a diagonal step of the ROC curve and counts as
  half a correctly ordered pair in the AUC);
* precision of an empty prediction set is defined as 0 for :func:`precision_recall_f1`
  (scikit-learn's ``zero_division=0``) and as 1 at the start of the PR curve (recall 0).

Sections: :func:`confusion_counts`, :func:`f1_from_counts`, :func:`precision_recall_f1`,
:func:`roc_curve`, :func:`roc_auc`, :func:`precision_recall_curve`,
:func:`average_precision`, :func:`rank_auc` (the AUC as a probability over pairs).
"""
from __future__ import annotations

import numpy as np


def _labels(labels, name: str = "labels") -> np.ndarray:
    try:
        y = np.asarray(labels)
    except Exception:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a 1-D sequence of 0/1 values") from None
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{name} must be 1-D and non-empty, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        raise TypeError(f"{name} must be 0/1 numbers or bools, got dtype {y.dtype}")
    if not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(f"{name} must be binary (0 or 1), found {bad.tolist()}")
    return y.astype(np.int64)


def _labels_scores(labels, scores, need_both: bool = True):
    y = _labels(labels)
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("scores must be a 1-D sequence of real numbers") from None
    if s.shape != y.shape:
        raise ValueError(f"labels and scores must have equal lengths, got {y.shape} and {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf)")
    if need_both and (y.sum() == 0 or y.sum() == y.size):
        raise ValueError("need at least one positive and one negative label for a curve")
    return y, s


def confusion_counts(labels, predictions) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of binary ``predictions`` against binary ``labels`` (equal lengths)."""
    y = _labels(labels)
    p = _labels(predictions, "predictions")
    if p.shape != y.shape:
        raise ValueError(f"labels and predictions must have equal lengths, got {y.shape} and {p.shape}")
    tp = int(np.sum((p == 1) & (y == 1)))
    fp = int(np.sum((p == 1) & (y == 0)))
    fn = int(np.sum((p == 0) & (y == 1)))
    tn = int(np.sum((p == 0) & (y == 0)))
    return tp, fp, fn, tn


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 = 2 tp / (2 tp + fp + fn), the harmonic mean of precision and recall (0 when there
    is no positive label and no positive prediction). Counts are non-negative integers."""
    for name, v in (("tp", tp), ("fp", fp), ("fn", fn)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    denom = 2 * tp + fp + fn
    return 0.0 if denom == 0 else 2 * tp / denom


def precision_recall_f1(labels, predictions) -> tuple[float, float, float]:
    """Precision tp/(tp+fp), recall tp/(tp+fn) and F1 of binary predictions (0 where a
    denominator is 0)."""
    tp, fp, fn, _ = confusion_counts(labels, predictions)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, f1_from_counts(tp, fp, fn)


def _cumulative(y: np.ndarray, s: np.ndarray):
    """True and false positives above each distinct threshold, thresholds descending."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = last_of_run + 1 - tps
    return tps.astype(float), fps.astype(float), s_sorted[last_of_run]


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct score, from ``(0, 0)`` (threshold +inf)
    to ``(1, 1)``; equals ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``."""
    y, s = _labels_scores(labels, scores)
    tps, fps, thr = _cumulative(y, s)
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve by the trapezoid rule (ties give diagonal steps)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def rank_auc(labels, scores) -> float:
    """The AUC as a probability: P(score of a random positive > score of a random negative),
    ties counted as 1/2 (the Mann-Whitney statistic over all positive-negative pairs)."""
    y, s = _labels_scores(labels, scores)
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` at every distinct score from the highest down,
    preceded by the point recall 0, precision 1 (threshold +inf)."""
    y, s = _labels_scores(labels, scores)
    tps, fps, thr = _cumulative(y, s)
    precision = np.r_[1.0, tps / (tps + fps)]
    recall = np.r_[0.0, tps / tps[-1]]
    return precision, recall, np.r_[np.inf, thr]


def average_precision(labels, scores) -> float:
    """AP = sum_k (R_k - R_{k-1}) P_k over the distinct thresholds: precision weighted by the
    recall each threshold adds (a step function, no interpolation); equals
    ``sklearn.metrics.average_precision_score``."""
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(recall) * precision[1:]))
