"""Is one model really better than the other?  Paired tests on the same test set.

Both models are scored on the same test images, so their errors are paired:
McNemar's exact test looks only at the images on which they disagree, and a
bootstrap over test images gives confidence intervals for each accuracy and
for their difference.  Every function here is pure; randomness comes from an
explicit seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binom

from reportgen.core import text
from reportgen.evaluate import arrays

DEFAULT_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
DEFAULT_RESAMPLES = 1_000
# Resampled indices are drawn this many at a time (int64: 32 MiB), so memory
# stays bounded whatever the test-set size and resample count.
BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test: ``b`` first right & second wrong, ``c`` first wrong & second right."""

    b: int
    c: int
    p_value: float


@dataclass(frozen=True)
class Interval:
    """A percentile-bootstrap confidence interval around a point estimate."""

    estimate: float
    low: float
    high: float
    level: float
    resamples: int


@dataclass(frozen=True)
class Significance:
    """The paired comparison of two models, ready for ``metrics.json``."""

    models: tuple[str, str]
    mcnemar: McNemar
    difference: Interval
    alpha: float
    significant: bool
    verdict: str


# --------------------------------------------------------------------------- validation


def _paired(first: ArrayLike, second: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = arrays.correctness(first, "first_correct")
    b = arrays.correctness(second, "second_correct")
    arrays.same_length(a, b, ("first_correct", "second_correct"), "paired test images")
    return a, b


# --------------------------------------------------------------------------- McNemar


def mcnemar(first_correct: ArrayLike, second_correct: ArrayLike) -> McNemar:
    """Exact two-sided McNemar test on two models' paired correctness.

    Parameters
    ----------
    first_correct, second_correct : array-like of bool, shape (n,)
        Whether each model classified test image ``i`` correctly.

    Returns
    -------
    McNemar
        ``b`` (first right, second wrong), ``c`` (first wrong, second right) and
        ``p = min(1, 2·P(X ≤ min(b, c)))`` with ``X ~ Bin(b + c, 1/2)``; ``p = 1``
        when the models never disagree.
    """
    a, s = _paired(first_correct, second_correct)
    b = int(np.count_nonzero(a & ~s))
    c = int(np.count_nonzero(~a & s))
    if b + c == 0:
        return McNemar(b, c, 1.0)
    p_value = min(1.0, 2.0 * float(binom.cdf(min(b, c), b + c, 0.5)))
    return McNemar(b, c, p_value)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_accuracies(
    correct: ArrayLike, *, resamples: int = DEFAULT_RESAMPLES, seed: int
) -> np.ndarray:
    """Return the accuracy of each model on each bootstrap resample of the test set.

    Parameters
    ----------
    correct : array-like of bool, shape (n,) or (k, n)
        Correctness of one model, or of ``k`` models on the same ``n`` images.
    resamples : int, default 1000
        Number of resamples; each draws ``n`` test indices with replacement.
    seed : int
        Seed of ``np.random.default_rng``.  The drawn indices depend only on
        ``seed``, ``n`` and ``resamples``, so every model (and every call) sees
        the same resamples: the intervals are paired.

    Returns
    -------
    ndarray of float64, shape (resamples, k)
        Row ``r`` holds each model's accuracy on resample ``r``.
    """
    matrix = np.asarray(correct)
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if matrix.ndim != 2:
        raise ValueError(f"correct must be 1-D or 2-D (models × images); got shape {matrix.shape}")
    rows = np.stack([arrays.correctness(row, f"correct[{i}]") for i, row in enumerate(matrix)])
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}")
    n = rows.shape[1]
    counts = np.empty((resamples, rows.shape[0]), dtype=np.int64)
    for start, index in resample_indices(n, resamples=resamples, seed=seed):
        for model, row in enumerate(rows):
            counts[start : start + len(index), model] = row[index].sum(axis=1)
    # Integer counts over n: the same floats however the work is chunked.
    return counts / n


def resample_indices(n: int, *, resamples: int, seed: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield the bootstrap's resampled test positions, a chunk at a time.

    Each item is ``(first resample, positions [chunk, n])``; the positions
    depend only on ``n``, ``resamples`` and ``seed``.  Every interval of a
    run draws from here, so the accuracy's and the per-class intervals rest
    on the same resamples.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}")
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        yield start, rng.integers(0, n, size=(stop - start, n))  # [chunk, n]


def percentile_interval(
    samples: ArrayLike, *, estimate: float, level: float = DEFAULT_LEVEL
) -> Interval:
    """Return the central ``level`` percentile interval of bootstrap ``samples``.

    Parameters
    ----------
    samples : array-like of float, shape (resamples,)
        One statistic per resample.
    estimate : float
        The statistic on the full sample, reported alongside the interval.
    level : float, default 0.95
        Coverage of the interval, in (0, 1).

    Returns
    -------
    Interval
    """
    arrays.level(level)
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"samples must be a non-empty 1-D array; got shape {values.shape}")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), level, int(values.size))


def accuracy_interval(
    correct: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Return a seeded percentile-bootstrap confidence interval of one model's accuracy.

    Parameters
    ----------
    correct : array-like of bool, shape (n,)
        Whether the model classified each test image correctly.
    resamples : int, default 1000
    seed : int
    level : float, default 0.95

    Returns
    -------
    Interval
        Around the observed accuracy.
    """
    row = arrays.correctness(correct, "correct")
    samples = bootstrap_accuracies(row, resamples=resamples, seed=seed)[:, 0]
    return percentile_interval(samples, estimate=float(row.mean()), level=level)


def difference_interval(
    first_correct: ArrayLike,
    second_correct: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Return a paired percentile-bootstrap interval of ``accuracy(second) − accuracy(first)``.

    Parameters
    ----------
    first_correct, second_correct : array-like of bool, shape (n,)
    resamples : int, default 1000
    seed : int
    level : float, default 0.95

    Returns
    -------
    Interval
        Around the observed difference; each resample scores both models on
        the same images.
    """
    a, s = _paired(first_correct, second_correct)
    samples = bootstrap_accuracies(np.stack([a, s]), resamples=resamples, seed=seed)
    estimate = float(s.mean()) - float(a.mean())
    return percentile_interval(samples[:, 1] - samples[:, 0], estimate=estimate, level=level)


# --------------------------------------------------------------------------- verdict


def verdict(
    first: str, second: str, *, difference: Interval, mcnemar: McNemar, alpha: float
) -> str:
    """Return one plain sentence stating which model is more accurate and whether it matters."""
    if difference.estimate > 0:
        claim = f"The {second} model is more accurate than the {first} model"
    elif difference.estimate < 0:
        claim = f"The {second} model is less accurate than the {first} model"
    else:
        claim = f"The {second} and {first} models are equally accurate"
    low, high = text.pp(difference.low), text.pp(difference.high)
    interval = f"{text.level(difference.level)} CI {low} to {high}"
    matters = "is" if mcnemar.p_value < alpha else "is not"
    return (
        f"{claim} ({text.pp(difference.estimate)}, {interval}); "
        f"McNemar {text.p_equals(mcnemar.p_value)} "
        f"(α = {alpha:g}), so the difference {matters} statistically significant."
    )


def compare(
    first_correct: ArrayLike,
    second_correct: ArrayLike,
    *,
    names: tuple[str, str],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int,
    level: float = DEFAULT_LEVEL,
    alpha: float = DEFAULT_ALPHA,
) -> Significance:
    """Compare two models scored on the same test images.

    Parameters
    ----------
    first_correct, second_correct : array-like of bool, shape (n,)
        Per-image correctness of the first and second model.
    names : tuple of str
        The two models' names, used in the verdict.
    resamples : int, default 1000
        Bootstrap resamples for the interval of the difference.
    seed : int
        Bootstrap seed.
    level : float, default 0.95
        Coverage of the interval.
    alpha : float, default 0.05
        Significance threshold of McNemar's test.

    Returns
    -------
    Significance
        McNemar's test, the interval of ``second − first`` accuracy and a verdict.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), e.g. 0.05; got {alpha!r}")
    test = mcnemar(first_correct, second_correct)
    difference = difference_interval(
        first_correct, second_correct, resamples=resamples, seed=seed, level=level
    )
    first, second = names
    sentence = verdict(first, second, difference=difference, mcnemar=test, alpha=alpha)
    return Significance((first, second), test, difference, alpha, test.p_value < alpha, sentence)
