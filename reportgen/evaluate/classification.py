"""Predictions -> classification metrics: accuracy, per-class scores, confusions, galleries.

Every function is pure: label arrays and confusion matrices in, the types of
``metrics.json`` (:mod:`reportgen.artifacts.metrics`) out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from reportgen.artifacts.model_metrics import (
    AverageScores,
    Bounds,
    ClassError,
    ClassificationReport,
    ClassScores,
    ConfusedPair,
    PairGallery,
    PairSource,
)
from reportgen.evaluate import per_class


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the fraction of matching labels."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def top_k_correct(proba: np.ndarray, y_true: np.ndarray, *, k: int) -> np.ndarray:
    """Return, per image, whether its label is among the ``k`` most probable classes.

    Classes are ranked by probability, ties going to the lower index (as
    ``argmax`` does), so ``k = 1`` gives exactly the predictions' correctness.
    ``proba`` is ``[N, classes]``; the result is ``[N]`` bool.
    """
    y = np.asarray(y_true)
    rows = np.arange(len(y))
    true = proba[rows, y][:, np.newaxis]  # [N, 1]
    lower = np.arange(proba.shape[1])[np.newaxis, :] < y[:, np.newaxis]  # [N, classes]
    ahead = (proba > true) | ((proba == true) & lower)  # classes ranked before the label
    return np.count_nonzero(ahead, axis=1) < k


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int, resamples: int, seed: int
) -> ClassificationReport:
    """Return per-class precision/recall/F1/support plus accuracy and macro/weighted/micro averages.

    Classes absent from both arrays get zeros rather than a warning, so small
    generated test sets report every label.  Each class's scores get
    percentile-bootstrap intervals from the resamples ``resamples`` and
    ``seed`` draw: pass the accuracy interval's, and they share its draws.
    """
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    intervals = per_class.class_intervals(
        y_true, y_pred, classes=num_classes, resamples=resamples, seed=seed
    )
    averages = {}
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        averages[f"{average}_avg"] = AverageScores(
            precision=float(p), recall=float(r), f1=float(f), support=len(y_true)
        )
    classes = [
        ClassScores(label=label, precision=float(precision[label]), recall=float(recall[label]),
                    f1=float(f1[label]), support=int(support[label]),
                    precision_ci=_bounds(intervals[label].precision),
                    recall_ci=_bounds(intervals[label].recall),
                    f1_ci=_bounds(intervals[label].f1))
        for label in labels
    ]  # fmt: skip
    return ClassificationReport(classes=classes, accuracy=accuracy(y_true, y_pred), **averages)


def _bounds(interval: per_class.Bounds) -> Bounds:
    return Bounds(low=interval.low, high=interval.high)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Return the class × class count matrix: rows are true labels, columns predictions."""
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))


def class_errors(matrix: np.ndarray) -> list[ClassError]:
    """Return, per class, its error rate (1 − recall) and most frequent wrong prediction."""
    rows = []
    for label in range(matrix.shape[0]):
        row = matrix[label]
        support = int(row.sum())
        wrong = row.copy()
        wrong[label] = 0
        errors = int(wrong.sum())
        top = int(np.argmax(wrong))  # lowest label wins ties: deterministic
        rows.append(
            ClassError(
                label=label,
                support=support,
                errors=errors,
                error_rate=errors / support if support else 0.0,
                top_wrong_prediction=top if errors else None,
                top_wrong_count=int(wrong[top]) if errors else 0,
            )
        )
    return rows


def worst_classes(
    errors: Sequence[ClassError], *, names: Sequence[str], count: int = 3
) -> list[int]:
    """Return the labels with the highest error rate, ties to the larger class, then by name.

    ``names[label]`` is each class's name: with many classes, several often share
    the worst rate, and the one with more test images is the surer claim.
    """
    ranked = sorted(errors, key=lambda row: (-row.error_rate, -row.support, names[row.label]))
    return [row.label for row in ranked[:count] if row.errors > 0]


def most_confused_pairs(matrix: np.ndarray, *, count: int) -> list[ConfusedPair]:
    """Return the ``count`` largest off-diagonal cells, largest first (ties: lowest labels)."""
    labels = range(matrix.shape[0])
    cells = [
        (int(matrix[t, p]), t, p) for t in labels for p in labels if t != p and matrix[t, p] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [ConfusedPair(true=t, pred=p, count=n) for n, t, p in cells[:count]]


def misclassified_indices(y_true: np.ndarray, y_pred: np.ndarray, *, limit: int) -> list[int]:
    """Return the positions of the first ``limit`` wrong predictions, in test-set order."""
    return [int(i) for i in np.flatnonzero(y_true != y_pred)[:limit]]


def pair_indices(
    y_true: np.ndarray, y_pred: np.ndarray, *, true: int, pred: int, limit: int
) -> list[int]:
    """Return the positions of the first ``limit`` images of ``true`` predicted as ``pred``."""
    return [int(i) for i in np.flatnonzero((y_true == true) & (y_pred == pred))[:limit]]


def pair_galleries(
    matrix: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    configured: Sequence[tuple[int, int]],
    auto: int,
    limit: int,
    figure: Callable[[int, int], str],
) -> list[PairGallery]:
    """Return the confused-pair galleries: every configured pair, then ``auto`` more.

    The automatic pairs are the most confused cells of ``matrix`` that are not
    configured already, so a run always shows ``auto`` additional pairs when
    the model makes that many distinct confusions.  Each gallery holds the
    total ``count`` and the positions of its first ``limit`` images, lowest
    test index first; a configured pair the model never makes has ``count`` 0.
    ``figure(true, pred)`` names the gallery's figure.
    """
    chosen: list[tuple[int, int, PairSource]] = [
        (int(t), int(p), "config") for t, p in dict.fromkeys(configured)
    ]
    taken = {(t, p) for t, p, _ in chosen}
    ranked = most_confused_pairs(matrix, count=auto + len(taken))
    found: list[tuple[int, int, PairSource]] = [
        (c.true, c.pred, "auto") for c in ranked if (c.true, c.pred) not in taken
    ]
    return [
        PairGallery(
            true=t,
            pred=p,
            count=int(matrix[t, p]),
            indices=pair_indices(y_true, y_pred, true=t, pred=p, limit=limit),
            source=source,
            figure=figure(t, p),
        )
        for t, p, source in chosen + found[:auto]
    ]
