"""How much does training variance move a result?  Statistics over seeds.

One run's McNemar test and bootstrap intervals resample the *test set*;
they say nothing about another seed, data order or initialisation, which
for small networks moves accuracy about as much as the difference between
two models (Bouthillier et al., MLSys 2021).  The functions here take one
value per seed — e.g. each seed's test accuracy — and summarise the spread
over seeds; paired comparisons pair values of the same seed, which saw the
same validation split, initialisation seed and batch order.

Every function is pure; the bootstrap draws from an explicit seed.

**Larger than the seed-to-seed variation** (:func:`exceeds_seed_variation`)
means both of: the bootstrap interval of the mean paired difference excludes
zero, *and* the mean paired difference is larger in size than the standard
deviation over seeds of each of the two configurations.  The first says the
average difference is not a product of which seeds were drawn; the second
that it is larger than what changing the seed alone does to one
configuration, so a single pair of runs would usually rank them the same
way.  With fewer than :data:`MIN_SEEDS_FOR_VARIATION` seeds a standard
deviation and a bootstrap interval over seeds are too unstable to decide
either, so no claim is made: the answer is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from reportgen.core import text
from reportgen.evaluate import arrays
from reportgen.evaluate.statistics import DEFAULT_LEVEL, Interval, percentile_interval

SEED_RESAMPLES = 10_000  # seeds are few: ten thousand resamples cost nothing
# Two seeds give a standard deviation from one difference and a bootstrap over four
# resamples: too little to say whether a difference is larger than what seeds change.
MIN_SEEDS_FOR_VARIATION = 3


@dataclass(frozen=True)
class SeedSummary:
    """One metric over seeds: every value, their mean, spread and bootstrap interval."""

    values: tuple[float, ...]  # one per seed, in the sweep's seed order
    mean: float
    sd: float | None  # sample standard deviation (n − 1); None with one seed
    interval: Interval | None  # percentile bootstrap of the mean over seeds; None with one seed


@dataclass(frozen=True)
class PairedDifference:
    """``second − first`` seed by seed, and what it says about the two."""

    first: str
    second: str
    differences: tuple[float, ...]  # second − first, one per seed
    mean: float
    sd: float | None
    interval: Interval | None  # of the mean difference, over seeds
    probability: float  # P(second beats first) over seeds, ties counted half
    wins: int  # seeds on which second is higher
    ties: int
    losses: int
    seed_sd: float | None  # the larger of the two configurations' sd over seeds
    exceeds: bool | None  # larger than the seed-to-seed variation (None: too few seeds)
    significant_tests: int | None  # per-seed McNemar tests with p < alpha (None: not tested)
    tests: int


def sample_sd(values: ArrayLike) -> float | None:
    """Return the sample standard deviation (``ddof=1``), or None for a single value."""
    array = arrays.values(values, "values")
    return float(np.std(array, ddof=1)) if array.size > 1 else None


def bootstrap_means(values: ArrayLike, *, resamples: int = SEED_RESAMPLES, seed: int) -> np.ndarray:
    """Return the mean of each of ``resamples`` resamples of the seeds, drawn with replacement.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One value per seed.
    resamples : int
    seed : int
        Seed of ``np.random.default_rng``: the drawn seed indices depend only
        on it, ``n`` and ``resamples``, so two metrics of the same seeds are
        resampled alike.

    Returns
    -------
    ndarray of float64, shape (resamples,)
    """
    array = arrays.values(values, "values")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, array.size, size=(resamples, array.size))  # [resamples, n]
    return array[index].mean(axis=1)


def summarize(
    values: ArrayLike, *, resamples: int = SEED_RESAMPLES, seed: int, level: float = DEFAULT_LEVEL
) -> SeedSummary:
    """Return the mean, sample sd and percentile-bootstrap interval of the mean over seeds."""
    array = arrays.values(values, "values")
    mean = float(array.mean())
    if array.size == 1:
        return SeedSummary((mean,), mean, None, None)
    samples = bootstrap_means(array, resamples=resamples, seed=seed)
    interval = percentile_interval(samples, estimate=mean, level=level)
    return SeedSummary(tuple(float(v) for v in array), mean, sample_sd(array), interval)


def probability_of_improvement(first: ArrayLike, second: ArrayLike) -> float:
    """Return the share of seeds on which ``second`` beats ``first``, a tie counting half."""
    a, b = _paired(first, second)
    wins = np.count_nonzero(b > a)
    ties = np.count_nonzero(b == a)
    return float((wins + 0.5 * ties) / a.size)


def _paired(first: ArrayLike, second: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = arrays.values(first, "first"), arrays.values(second, "second")
    arrays.same_length(a, b, ("first", "second"), "one value per seed each")
    return a, b


def exceeds_seed_variation(
    mean: float, interval: Interval | None, sd_first: float | None, sd_second: float | None
) -> bool | None:
    """Return whether a mean paired difference is larger than the seed-to-seed variation.

    True when the interval excludes zero and ``|mean|`` exceeds both
    standard deviations (see the module docstring); None with one seed.
    """
    if interval is None or sd_first is None or sd_second is None:
        return None
    excludes_zero = interval.low > 0 or interval.high < 0
    return bool(excludes_zero and abs(mean) > max(sd_first, sd_second))


def paired_difference(
    first: ArrayLike,
    second: ArrayLike,
    *,
    names: tuple[str, str],
    significant: Sequence[bool] | None = None,
    resamples: int = SEED_RESAMPLES,
    seed: int,
    level: float = DEFAULT_LEVEL,
) -> PairedDifference:
    """Compare two configurations seed by seed.

    Parameters
    ----------
    first, second : array-like of float, shape (n,)
        One value per seed; position ``i`` of both comes from the same seed.
    names : tuple of str
        What ``first`` and ``second`` are, for the sentence.
    significant : sequence of bool, optional
        Per seed, whether that seed's McNemar test of the two was significant.
    resamples, seed, level
        The bootstrap over seeds of the mean difference.
    """
    a, b = _paired(first, second)
    differences = b - a
    summary = summarize(differences, resamples=resamples, seed=seed, level=level)
    sd_a, sd_b = sample_sd(a), sample_sd(b)
    seed_sd = None if sd_a is None or sd_b is None else max(sd_a, sd_b)
    tests = 0 if significant is None else len(significant)
    if significant is not None and tests != a.size:
        raise ValueError(f"significant needs one entry per seed; got {tests} for {a.size} seeds")
    return PairedDifference(
        first=names[0],
        second=names[1],
        differences=tuple(float(d) for d in differences),
        mean=summary.mean,
        sd=summary.sd,
        interval=summary.interval,
        probability=probability_of_improvement(a, b),
        wins=int(np.count_nonzero(differences > 0)),
        ties=int(np.count_nonzero(differences == 0)),
        losses=int(np.count_nonzero(differences < 0)),
        seed_sd=seed_sd,
        exceeds=exceeds_seed_variation(summary.mean, summary.interval, sd_a, sd_b)
        if a.size >= MIN_SEEDS_FOR_VARIATION
        else None,
        significant_tests=None if significant is None else sum(bool(s) for s in significant),
        tests=tests,
    )


def difference_sentence(difference: PairedDifference, *, metric: str = "test accuracy") -> str:
    """Return one plain sentence: which is higher, by how much, and whether seeds explain it."""
    d = difference
    seeds = text.count(len(d.differences), "seed")
    if not any(d.differences):  # e.g. a model the swept key does not touch
        return f"Over {seeds}, {metric} is the same for {d.second} as for {d.first} on every seed."
    if d.mean == 0:
        claim = f"{metric} is the same for {d.second} as for {d.first} on average"
    else:
        direction = "higher" if d.mean > 0 else "lower"
        claim = f"{metric} is {direction} for {d.second} than for {d.first}"
        claim += f" by {text.pp(d.mean)} on average"
    parts = [f"Over {seeds}, {claim}"]
    if d.interval is not None:
        low, high = text.pp(d.interval.low), text.pp(d.interval.high)
        parts.append(f" ({text.level(d.interval.level)} bootstrap CI over seeds {low} to {high})")
    parts.append(
        f"; it is higher on {d.wins} of {len(d.differences)} seeds "
        f"(probability of improvement {d.probability:.2f})"
    )
    if d.significant_tests is not None:
        parts.append(
            f", and {d.significant_tests} of {d.tests} per-seed McNemar tests are significant"
        )
    parts.append(". ")
    if len(d.differences) == 1:
        parts.append("With one seed, the seed-to-seed variation cannot be measured.")
    elif d.exceeds is None:
        parts.append(
            f"With {seeds}, no claim is made about the seed-to-seed variation: "
            f"it takes at least {MIN_SEEDS_FOR_VARIATION} seeds to estimate."
        )
    elif d.exceeds:
        parts.append(
            f"The difference is larger than the seed-to-seed variation "
            f"(standard deviation over seeds up to {text.pp(d.seed_sd).lstrip('+')})."
        )
    else:
        parts.append(
            f"The difference is not larger than the seed-to-seed variation "
            f"(standard deviation over seeds up to {text.pp(d.seed_sd).lstrip('+')}): "
            "other seeds could reverse it."
        )
    return "".join(parts)
