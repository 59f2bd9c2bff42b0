"""One-vs-rest ROC and precision–recall: how well each class's probability ranks its images.

Accuracy looks at the top class only; these curves look at the whole
probability of one class against all others, at every threshold.
The arithmetic is scikit-learn's (``roc_curve``, ``roc_auc_score``,
``precision_recall_curve``, ``average_precision_score``), operation for
operation, so the numbers are the same to the last bit; it is done here on
plain arrays because scikit-learn validates its inputs on every call, which
with hundreds of classes cost far more than the sorting itself.  This module
also handles a class with no test image (its area is undefined, reported as
None), and thins the curves for drawing, so that a figure's cost does not
grow with the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import trapezoid

from reportgen.evaluate import arrays

# Points kept per curve for drawing: far more than a 6.7-inch figure can
# show apart, and bounded whatever the number of test images.
DRAW_POINTS = 400


@dataclass(frozen=True)
class ClassRanking:
    """One class against the rest: its areas, None when the class has no test image."""

    label: int
    positives: int
    auc: float | None
    average_precision: float | None


@dataclass(frozen=True)
class Rankings:
    """Per-class and averaged areas under the ROC and precision–recall curves."""

    classes: list[ClassRanking]
    macro_auc: float | None
    micro_auc: float
    macro_average_precision: float | None
    micro_average_precision: float


@dataclass(frozen=True)
class Curve:
    """One curve to draw: x and y points, thinned to at most :data:`DRAW_POINTS`."""

    x: np.ndarray
    y: np.ndarray


def _inputs(proba: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = arrays.scores(proba, "proba")
    return p, arrays.labels(labels, "labels", classes=p.shape[1], rows=p.shape[0])


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """Return ``[N, classes]`` 0/1 indicators of ``labels``."""
    return (labels[:, np.newaxis] == np.arange(classes)).astype(np.int64)


def _defined(positives: int, total: int) -> bool:
    """Both areas need positives; the ROC also needs negatives."""
    return 0 < positives < total


def _area(value: float | np.floating) -> float:
    """Return an area as a float in [0, 1]: summation can overshoot 1 by a rounding step."""
    return min(1.0, max(0.0, float(value)))


def positives_at_thresholds(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the true and false positives above each distinct score, highest score first.

    Position ``i`` counts the images scored at least the ``i``-th highest
    distinct score (scikit-learn's ``confusion_matrix_at_thresholds``);
    ``truth`` is 0/1.  Ties in the sort do not matter: only the counts at
    the end of each run of equal scores are kept.
    """
    order = np.argsort(score, kind="stable")[::-1]
    ranked = score[order]
    last = np.concatenate([np.nonzero(np.diff(ranked))[0], [len(score) - 1]])
    true_positives = np.cumsum(truth[order], dtype=np.float64)[last]
    false_positives = 1 + last.astype(np.float64) - true_positives
    return true_positives, false_positives


def roc_points(
    true_positives: np.ndarray, false_positives: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the ROC curve (false-positive rate, true-positive rate) from ``(0, 0)``.

    Points on a straight segment are dropped (scikit-learn's ``drop_intermediate``).
    Both rates need positives and negatives (:func:`_defined`).
    """
    tps, fps = true_positives, false_positives
    if len(fps) > 2:
        bends = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.where(np.concatenate([[True], bends, [True]]))[0]
        fps, tps = fps[keep], tps[keep]
    tps = np.concatenate([[0.0], tps])
    fps = np.concatenate([[0.0], fps])
    return fps / fps[-1], tps / tps[-1]


def pr_points(
    true_positives: np.ndarray, false_positives: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the precision–recall curve (precision, recall), ending at recall 0, precision 1."""
    predicted = true_positives + false_positives
    precision = np.where(predicted != 0, np.divide(true_positives, predicted), 0.0)
    recall = true_positives / true_positives[-1]
    return (
        np.concatenate((np.flip(precision), [1.0])),
        np.concatenate((np.flip(recall), [0.0])),
    )


def roc_area(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray) -> float:
    """Return the area under a ROC curve by the trapezoidal rule."""
    return float(trapezoid(true_positive_rate, false_positive_rate))


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Return the average precision: precision summed over the steps of recall."""
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


Counts = tuple[np.ndarray, np.ndarray]  # true and false positives at each distinct score


@dataclass(frozen=True)
class _Counted:
    """Every class's counts at its thresholds (None where undefined), and the pooled ones."""

    positives: list[int]
    classes: list[Counts | None]
    micro: Counts


def _counted(proba: ArrayLike, labels: ArrayLike) -> _Counted:
    """Return the counts every area and curve of ``proba`` is computed from, each sorted once."""
    p, y = _inputs(proba, labels)
    truth = one_hot(y, p.shape[1])
    # One class's scores and truths contiguous: sorting a strided column is slower.
    scores_by_class, truth_by_class = np.ascontiguousarray(p.T), np.ascontiguousarray(truth.T)
    positives = truth_by_class.sum(axis=1).tolist()
    classes = [
        positives_at_thresholds(truth_by_class[label], scores_by_class[label])
        if _defined(count, len(y))
        else None
        for label, count in enumerate(positives)
    ]
    return _Counted(positives, classes, positives_at_thresholds(truth.ravel(), p.ravel()))


def _areas(counts: Counts) -> tuple[float, float]:
    """Return one binary problem's ROC AUC and average precision, clipped to [0, 1]."""
    return _area(roc_area(*roc_points(*counts))), _area(average_precision(*pr_points(*counts)))


def rankings(proba: ArrayLike, labels: ArrayLike) -> Rankings:
    """Return each class's one-vs-rest ROC AUC and average precision, and their averages.

    Macro averages are over the classes whose areas are defined (None when
    none is); micro averages pool every (image, class) pair into one
    binary problem.
    """
    return _rankings(_counted(proba, labels))


def _rankings(counted: _Counted) -> Rankings:
    rows = []
    for label, (positives, counts) in enumerate(
        zip(counted.positives, counted.classes, strict=True)
    ):
        auc, ap = (None, None) if counts is None else _areas(counts)
        rows.append(ClassRanking(label, positives, auc, ap))
    aucs = [r.auc for r in rows if r.auc is not None]
    aps = [r.average_precision for r in rows if r.average_precision is not None]
    micro_auc, micro_ap = _areas(counted.micro)
    return Rankings(
        classes=rows,
        macro_auc=_area(np.mean(aucs)) if aucs else None,
        micro_auc=micro_auc,
        macro_average_precision=_area(np.mean(aps)) if aps else None,
        micro_average_precision=micro_ap,
    )


def thin(x: np.ndarray, y: np.ndarray, *, points: int = DRAW_POINTS) -> Curve:
    """Return at most ``points`` of a curve: evenly spaced along it, both ends kept."""
    if len(x) <= points:
        return Curve(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    keep = np.unique(np.round(np.linspace(0, len(x) - 1, points)).astype(np.int64))
    return Curve(np.asarray(x[keep], dtype=np.float64), np.asarray(y[keep], dtype=np.float64))


@dataclass(frozen=True)
class Curves:
    """Every class's ROC and precision–recall curves to draw (None: undefined), and the micro."""

    roc: list[Curve | None]
    roc_micro: Curve
    pr: list[Curve | None]
    pr_micro: Curve


def _roc_curve(counts: Counts) -> Curve:
    return thin(*roc_points(*counts))


def _pr_curve(counts: Counts) -> Curve:
    precision, recall = pr_points(*counts)
    return thin(recall, precision)


def curves(proba: ArrayLike, labels: ArrayLike) -> Curves:
    """Return each class's ROC and precision–recall curves and the micro ones, sorting once.

    The ROC is (false-positive rate, true-positive rate), the precision–recall
    curve (recall, precision); a class whose curves are undefined (no
    positives or no negatives) gets None.
    """
    return _curves(_counted(proba, labels))


def _curves(counted: _Counted) -> Curves:
    return Curves(
        roc=[None if c is None else _roc_curve(c) for c in counted.classes],
        roc_micro=_roc_curve(counted.micro),
        pr=[None if c is None else _pr_curve(c) for c in counted.classes],
        pr_micro=_pr_curve(counted.micro),
    )


@dataclass(frozen=True)
class Ranked:
    """A model's areas (``metrics.json``) and curves (its figures), from one count."""

    rankings: Rankings
    curves: Curves


def ranked(proba: ArrayLike, labels: ArrayLike) -> Ranked:
    """Return :func:`rankings` and :func:`curves` of ``proba``, sorting each class once for both.

    Sorting is nearly all of either's cost (a second at 300 classes and
    6,000 test images), so a run ranks each model once.
    """
    counted = _counted(proba, labels)
    return Ranked(_rankings(counted), _curves(counted))


def roc_curves(proba: ArrayLike, labels: ArrayLike) -> tuple[list[Curve | None], Curve]:
    """Return each class's ROC curve (false-positive rate, true-positive rate) and the micro one.

    A class whose ROC is undefined (no positives or no negatives) gets None.
    """
    drawn = curves(proba, labels)
    return drawn.roc, drawn.roc_micro


def pr_curves(proba: ArrayLike, labels: ArrayLike) -> tuple[list[Curve | None], Curve]:
    """Return each class's precision–recall curve (recall, precision) and the micro one."""
    drawn = curves(proba, labels)
    return drawn.pr, drawn.pr_micro
