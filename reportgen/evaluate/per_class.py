"""Per-class uncertainty and per-class differences between two models.

A model's precision, recall and F1 per class get percentile-bootstrap
intervals from the very resamples of its accuracy interval
(:func:`reportgen.stats.resample_indices`), so every interval of a run
rests on the same draws.  Between two models, each class's recall
difference gets a paired interval from the same resamples and an exact
McNemar test on that class's test images (the recall difference is exactly
``(c − b) / support``); testing every class at once calls for a correction,
and Holm's step-down method controls the family-wise error without
assuming the tests are independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import csr_matrix

from reportgen.core import text
from reportgen.evaluate import arrays, statistics

LISTED = 5  # classes a verdict names; it counts the others


@dataclass(frozen=True)
class Bounds:
    """The two ends of an interval."""

    low: float
    high: float


@dataclass(frozen=True)
class ClassIntervals:
    """Bootstrap intervals of one class's precision, recall and F1."""

    label: int
    precision: Bounds
    recall: Bounds
    f1: Bounds


@dataclass(frozen=True)
class ClassCounts:
    """Per resample: each class's support, and per model its predictions and correct ones."""

    support: np.ndarray  # [R, K] int64
    predicted: np.ndarray  # [R, M, K] int64
    correct: np.ndarray  # [R, M, K] int64


@dataclass(frozen=True)
class RecallDifference:
    """One class's recall, first and second model, and their paired comparison."""

    label: int
    support: int
    first_recall: float
    second_recall: float
    estimate: float  # second − first
    low: float
    high: float
    b: int  # images of this class only the first model gets right
    c: int  # … only the second model gets right
    p_value: float
    p_adjusted: float  # Holm
    significant: bool


@dataclass(frozen=True)
class RecallComparison:
    """Every class's recall difference between two models, Holm-corrected, and the verdict."""

    models: tuple[str, str]
    rows: list[RecallDifference]
    level: float
    resamples: int
    alpha: float
    verdict: str


# --------------------------------------------------------------------------- bootstrap counts


def bootstrap_class_counts(
    y_true: ArrayLike,
    predictions: Sequence[ArrayLike],
    *,
    classes: int,
    resamples: int,
    seed: int,
) -> ClassCounts:
    """Return per-class counts on every bootstrap resample of the test set.

    The resamples are :func:`reportgen.stats.resample_indices` for ``seed``:
    with the seed of the accuracy intervals, the same draws.  Counts are
    integers, so the result does not depend on how the draws are chunked.
    """
    truth = arrays.labels(y_true, "y_true", classes=classes)
    preds = [
        arrays.labels(p, f"predictions[{m}]", classes=classes) for m, p in enumerate(predictions)
    ]
    for m, p in enumerate(preds):
        if p.shape != truth.shape:
            raise ValueError(f"predictions[{m}] has {p.size} entries for {truth.size} labels")
    n = truth.size
    positions = np.arange(n)

    def indicator(labels: np.ndarray, keep: np.ndarray | None = None) -> csr_matrix:
        """Return the sparse [K, n] matrix with a one at (label of i, i) for each kept i."""
        chosen = positions if keep is None else positions[keep]
        ones = np.ones(chosen.size, dtype=np.int64)
        return csr_matrix((ones, (labels[chosen], chosen)), shape=(classes, n))

    # A resample is a count of draws per test image; each class's count in it is the sum of
    # its images' counts: one sparse product per count kind, exact in integers.
    sums = [indicator(truth)]
    for p in preds:
        sums += [indicator(p), indicator(p, p == truth)]
    counts = np.empty((len(sums), resamples, classes), dtype=np.int64)
    for start, index in statistics.resample_indices(n, resamples=resamples, seed=seed):
        rows = len(index)
        index *= rows  # one bincount for all rows, laid out [n, rows]: CSR @ C-ordered is fast
        index += np.arange(rows)[:, np.newaxis]
        drawn = np.bincount(index.ravel(), minlength=n * rows).reshape(n, rows)
        for kind, matrix in enumerate(sums):
            counts[kind, start : start + rows] = (matrix @ drawn).T
    support, predicted, correct = counts[0], counts[1::2], counts[2::2]
    by_model = (np.ascontiguousarray(c.transpose(1, 0, 2)) for c in (predicted, correct))
    return ClassCounts(support, *by_model)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Return numerator / denominator, 0 where the denominator is 0 (zero_division=0)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def scores(
    support: np.ndarray, predicted: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return precision, recall and F1 from per-class counts (0 where undefined)."""
    return (
        _ratio(correct, predicted),
        _ratio(correct, support),
        _ratio(2 * correct, support + predicted),
    )


def _bounds(samples: np.ndarray, level: float) -> Bounds:
    interval = statistics.percentile_interval(samples, estimate=0.0, level=level)
    return Bounds(interval.low, interval.high)


def class_intervals(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    classes: int,
    resamples: int,
    seed: int,
    level: float = statistics.DEFAULT_LEVEL,
) -> list[ClassIntervals]:
    """Return percentile-bootstrap intervals of each class's precision, recall and F1.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
        Test labels and one model's predictions.
    classes : int
        Number of classes; one row per class, class 0 first.
    resamples, seed : int
        The bootstrap of the accuracy interval, to reuse its draws.
    level : float, default 0.95

    Returns
    -------
    list of ClassIntervals
    """
    counts = bootstrap_class_counts(
        y_true, [y_pred], classes=classes, resamples=resamples, seed=seed
    )
    precision, recall, f1 = scores(
        counts.support, counts.predicted[:, 0], counts.correct[:, 0]
    )  # each [R, K]
    return [
        ClassIntervals(
            label,
            _bounds(precision[:, label], level),
            _bounds(recall[:, label], level),
            _bounds(f1[:, label], level),
        )
        for label in range(classes)
    ]


# --------------------------------------------------------------------------- differences


def holm(p_values: ArrayLike) -> np.ndarray:
    """Return Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by (m − i + 1), kept at
    least as large as the adjusted value before it, and capped at 1; a
    hypothesis is rejected at level α when its adjusted value is below α.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D; got shape {p.shape}")
    if ((p < 0) | (p > 1) | ~np.isfinite(p)).any():
        raise ValueError("p_values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def recall_differences(
    y_true: ArrayLike,
    first_pred: ArrayLike,
    second_pred: ArrayLike,
    *,
    names: tuple[str, str],
    class_names: Sequence[str],
    resamples: int,
    seed: int,
    level: float = statistics.DEFAULT_LEVEL,
    alpha: float = statistics.DEFAULT_ALPHA,
) -> RecallComparison:
    """Compare two models' recall class by class on the same test images.

    Parameters
    ----------
    y_true, first_pred, second_pred : array-like of int, shape (n,)
        Test labels and the two models' predictions.
    names : tuple of str
        The models' names, for the verdict.
    class_names : sequence of str
        Name of class i at position i, for the verdict.
    resamples, seed : int
        The accuracy intervals' bootstrap, so the intervals are paired with them.
    level, alpha : float
        Interval coverage and the family-wise significance level.

    Returns
    -------
    RecallComparison
        One row per class (class 0 first): recalls, ``second − first`` with a
        paired percentile-bootstrap interval, the exact McNemar test on the
        class's images, its Holm-adjusted p-value, and a verdict sentence.
    """
    classes = len(class_names)
    truth = arrays.labels(y_true, "y_true", classes=classes)
    first = arrays.labels(first_pred, "first_pred", classes=classes)
    second = arrays.labels(second_pred, "second_pred", classes=classes)
    counts = bootstrap_class_counts(
        truth, [first, second], classes=classes, resamples=resamples, seed=seed
    )
    _, recall, _ = scores(counts.support[:, np.newaxis], counts.predicted, counts.correct)
    sampled = recall[:, 1] - recall[:, 0]  # [R, K]
    rows = []
    tests = []
    for label in range(classes):
        mine = truth == label
        support = int(mine.sum())
        if support:
            test = statistics.mcnemar(first[mine] == label, second[mine] == label)
        else:
            test = statistics.McNemar(0, 0, 1.0)
        tests.append(test)
        first_recall = float((first[mine] == label).mean()) if support else 0.0
        second_recall = float((second[mine] == label).mean()) if support else 0.0
        rows.append((label, support, first_recall, second_recall))
    adjusted = holm([t.p_value for t in tests])
    result = []
    for (label, support, r1, r2), test, p_adj in zip(rows, tests, adjusted, strict=True):
        bounds = _bounds(sampled[:, label], level)
        result.append(
            RecallDifference(
                label=label, support=support, first_recall=r1, second_recall=r2,
                estimate=r2 - r1, low=bounds.low, high=bounds.high, b=test.b, c=test.c,
                p_value=test.p_value, p_adjusted=float(p_adj), significant=bool(p_adj < alpha),
            )
        )  # fmt: skip
    sentence = recall_verdict(names, result, class_names, level=level, alpha=alpha)
    return RecallComparison(names, result, level, resamples, alpha, sentence)


def _difference(row: RecallDifference, class_names: Sequence[str], level: float) -> str:
    pp = text.pp
    return (
        f"{text.class_phrase(class_names[row.label])} ({pp(row.estimate)}, {text.level(level)} CI "
        f"{pp(row.low)} to {pp(row.high)}, adjusted {text.p_equals(row.p_adjusted)})"
    )


def _listed(rows: Sequence[RecallDifference], class_names: Sequence[str], level: float) -> str:
    """Return the classes of ``rows`` for a sentence: the first few with numbers, then a count.

    With many classes, a verdict naming every one of them would run to pages.
    """
    listed = text.join_some([_difference(r, class_names, level) for r in rows], LISTED)
    return listed if len(rows) <= LISTED else f"{len(rows):,} classes, most clearly {listed}"


def recall_verdict(
    names: tuple[str, str],
    rows: Sequence[RecallDifference],
    class_names: Sequence[str],
    *,
    level: float,
    alpha: float,
) -> str:
    """Return one or two plain sentences: on which classes the second model's recall differs."""
    first, second = names
    correction = f"after Holm’s correction for {len(rows)} classes (α = {alpha:g})"
    ranked = sorted(rows, key=lambda r: (-abs(r.estimate), -r.support, class_names[r.label]))
    better = [r for r in ranked if r.significant and r.estimate > 0]
    worse = [r for r in ranked if r.significant and r.estimate < 0]
    if not better and not worse:
        largest = _difference(ranked[0], class_names, level)
        return (
            f"No per-class recall difference between the {first} and {second} models is "
            f"significant {correction}; the largest is on {largest}."
        )
    claims = []
    if better:
        listed = _listed(better, class_names, level)
        claims.append(f"the {second} model’s recall is significantly higher on {listed}")
    if worse:
        listed = _listed(worse, class_names, level)
        subject = "it" if better else f"the {second} model’s recall"
        claims.append(f"{subject} is significantly lower on {listed}")
    return f"Compared with the {first} model, {'; '.join(claims)}, {correction}."
