"""One-vs-rest ROC and precision–recall: how well each class's probability ranks its images.

Accuracy looks at the top class only; these curves look at the whole
probability of one class against all others, at every threshold.
scikit-learn computes them; this module only chooses what to compute,
handles a class with no test image (its area is undefined, reported as
None), and thins the curves for drawing, so that a figure's cost does not
grow with the test set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

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


def rankings(proba: ArrayLike, labels: ArrayLike) -> Rankings:
    """Return each class's one-vs-rest ROC AUC and average precision, and their averages.

    Macro averages are over the classes whose areas are defined (None when
    none is); micro averages pool every (image, class) pair into one
    binary problem.
    """
    p, y = _inputs(proba, labels)
    truth = one_hot(y, p.shape[1])
    rows = []
    for label in range(p.shape[1]):
        positives = int(truth[:, label].sum())
        defined = _defined(positives, len(y))
        auc = _area(roc_auc_score(truth[:, label], p[:, label])) if defined else None
        ap = _area(average_precision_score(truth[:, label], p[:, label])) if defined else None
        rows.append(ClassRanking(label, positives, auc, ap))
    aucs = [r.auc for r in rows if r.auc is not None]
    aps = [r.average_precision for r in rows if r.average_precision is not None]
    return Rankings(
        classes=rows,
        macro_auc=_area(np.mean(aucs)) if aucs else None,
        micro_auc=_area(roc_auc_score(truth.ravel(), p.ravel())),
        macro_average_precision=_area(np.mean(aps)) if aps else None,
        micro_average_precision=_area(average_precision_score(truth.ravel(), p.ravel())),
    )


def thin(x: np.ndarray, y: np.ndarray, *, points: int = DRAW_POINTS) -> Curve:
    """Return at most ``points`` of a curve: evenly spaced along it, both ends kept."""
    if len(x) <= points:
        return Curve(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    keep = np.unique(np.round(np.linspace(0, len(x) - 1, points)).astype(np.int64))
    return Curve(np.asarray(x[keep], dtype=np.float64), np.asarray(y[keep], dtype=np.float64))


def roc_curves(proba: ArrayLike, labels: ArrayLike) -> tuple[list[Curve | None], Curve]:
    """Return each class's ROC curve (false-positive rate, true-positive rate) and the micro one.

    A class whose ROC is undefined (no positives or no negatives) gets None.
    """
    p, y = _inputs(proba, labels)
    truth = one_hot(y, p.shape[1])
    curves: list[Curve | None] = []
    for label in range(p.shape[1]):
        if not _defined(int(truth[:, label].sum()), len(y)):
            curves.append(None)
            continue
        fpr, tpr, _ = roc_curve(truth[:, label], p[:, label])
        curves.append(thin(fpr, tpr))
    fpr, tpr, _ = roc_curve(truth.ravel(), p.ravel())
    return curves, thin(fpr, tpr)


def pr_curves(proba: ArrayLike, labels: ArrayLike) -> tuple[list[Curve | None], Curve]:
    """Return each class's precision–recall curve (recall, precision) and the micro one."""
    p, y = _inputs(proba, labels)
    truth = one_hot(y, p.shape[1])
    curves: list[Curve | None] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no positive class": handled as None
        for label in range(p.shape[1]):
            if not _defined(int(truth[:, label].sum()), len(y)):
                curves.append(None)
                continue
            precision, recall, _ = precision_recall_curve(truth[:, label], p[:, label])
            curves.append(thin(recall, precision))
        precision, recall, _ = precision_recall_curve(truth.ravel(), p.ravel())
    return curves, thin(recall, precision)
