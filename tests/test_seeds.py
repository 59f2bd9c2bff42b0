"""Tests for the statistics over seeds, against independent computations (NumPy, SciPy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from reportgen.evaluate import seeds
from reportgen.evaluate.statistics import Interval

ACCURACIES = [0.9712, 0.9688, 0.9731, 0.9705, 0.9694]
BETTER = [0.9790, 0.9771, 0.9802, 0.9779, 0.9769]


def test_mean_and_sd_match_numpy() -> None:
    summary = seeds.summarize(ACCURACIES, seed=1)
    assert summary.mean == pytest.approx(np.mean(ACCURACIES), abs=1e-15)
    assert summary.sd == pytest.approx(np.std(ACCURACIES, ddof=1), abs=1e-15)
    assert summary.sd == pytest.approx(scipy_stats.tstd(ACCURACIES), abs=1e-15)
    assert summary.values == tuple(ACCURACIES)


def test_bootstrap_is_the_percentile_interval_of_resampled_means() -> None:
    rng = np.random.default_rng(7)
    index = rng.integers(0, 5, size=(10_000, 5))
    means = np.asarray(ACCURACIES)[index].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    interval = seeds.summarize(ACCURACIES, seed=7).interval
    assert interval is not None
    assert (interval.low, interval.high) == (low, high)
    assert interval.estimate == pytest.approx(np.mean(ACCURACIES))


def test_bootstrap_agrees_with_scipy() -> None:
    values = np.random.default_rng(3).normal(0.97, 0.002, size=12)
    ours = seeds.summarize(values, seed=11, resamples=20_000).interval
    theirs = scipy_stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, method="percentile",
        confidence_level=0.95, random_state=np.random.default_rng(5),
    ).confidence_interval  # fmt: skip
    assert ours is not None
    assert ours.low == pytest.approx(theirs.low, abs=2e-4)
    assert ours.high == pytest.approx(theirs.high, abs=2e-4)


def test_one_seed_has_no_spread() -> None:
    summary = seeds.summarize([0.97], seed=0)
    assert (summary.mean, summary.sd, summary.interval) == (0.97, None, None)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [([0.1, 0.2, 0.3], [0.2, 0.3, 0.4], 1.0), ([0.1, 0.2], [0.1, 0.1], 0.25),
     ([0.5] * 4, [0.5] * 4, 0.5), ([0.3, 0.3, 0.3], [0.1, 0.4, 0.3], 0.5)],
)  # fmt: skip
def test_probability_of_improvement_counts_ties_half(
    first: list[float], second: list[float], expected: float
) -> None:
    assert seeds.probability_of_improvement(first, second) == expected
    d = np.asarray(second) - np.asarray(first)
    assert expected == np.mean(np.where(d > 0, 1.0, np.where(d == 0, 0.5, 0.0)))


def test_paired_difference_matches_an_independent_computation() -> None:
    result = seeds.paired_difference(
        ACCURACIES, BETTER, names=("baseline", "regularized"),
        significant=[True, True, False, True, True], seed=4,
    )  # fmt: skip
    d = np.asarray(BETTER) - np.asarray(ACCURACIES)
    assert result.differences == tuple(d)
    assert result.mean == pytest.approx(d.mean(), abs=1e-15)
    assert result.sd == pytest.approx(np.std(d, ddof=1), abs=1e-15)
    # The paired t-test on the same differences agrees that zero is far outside.
    assert scipy_stats.ttest_rel(BETTER, ACCURACIES).pvalue < 0.001
    assert result.interval is not None and result.interval.low > 0
    assert (result.wins, result.ties, result.losses, result.probability) == (5, 0, 0, 1.0)
    assert (result.significant_tests, result.tests) == (4, 5)
    assert result.seed_sd == pytest.approx(max(np.std(ACCURACIES, ddof=1), np.std(BETTER, ddof=1)))
    assert result.exceeds is True
    sentence = seeds.difference_sentence(result)
    assert sentence.startswith("Over 5 seeds, test accuracy is higher for regularized than for "
                               "baseline by +0.76 pp on average")  # fmt: skip
    assert "4 of 5 per-seed McNemar tests are significant" in sentence
    assert "is larger than the seed-to-seed variation" in sentence


def test_a_difference_within_seed_noise_does_not_exceed_it() -> None:
    noisy = [0.970, 0.980, 0.960, 0.975, 0.965]
    shifted = [0.972, 0.981, 0.963, 0.976, 0.966]  # +0.14 pp on average, sd ≈ 0.8 pp
    result = seeds.paired_difference(noisy, shifted, names=("a", "b"), seed=0)
    assert result.interval is not None and result.interval.low > 0  # consistently higher …
    assert result.exceeds is False  # … but by less than one seed's spread
    assert "not larger than the seed-to-seed variation" in seeds.difference_sentence(result)


def test_two_seeds_make_no_claim_about_the_seed_to_seed_variation() -> None:
    # Far apart and consistent: with three or more seeds this difference exceeds the variation.
    result = seeds.paired_difference([0.90, 0.91], [0.95, 0.96], names=("a", "b"), seed=0)
    assert result.exceeds is None and result.sd is not None  # a spread, but no claim
    sentence = seeds.difference_sentence(result)
    assert sentence.endswith(
        "With 2 seeds, no claim is made about the seed-to-seed variation: "
        "it takes at least 3 seeds to estimate."
    )
    assert "larger than" not in sentence
    three = seeds.paired_difference([0.90, 0.91, 0.905], [0.95, 0.96, 0.955], names=("a", "b"),
                                    seed=0)  # fmt: skip
    assert three.exceeds is True


@pytest.mark.parametrize(
    ("mean", "low", "high", "sds", "expected"),
    [(0.01, 0.005, 0.015, (0.002, 0.003), True), (0.01, -0.001, 0.02, (0.002, 0.003), False),
     (-0.01, -0.015, -0.005, (0.002, 0.003), True), (0.002, 0.001, 0.003, (0.002, 0.003), False),
     (0.01, 0.005, 0.015, (None, 0.003), None)],
)  # fmt: skip
def test_exceeds_seed_variation_definition(
    mean: float, low: float, high: float, sds: tuple[float | None, float | None],
    expected: bool | None,
) -> None:  # fmt: skip
    interval = Interval(mean, low, high, 0.95, 1000)
    assert seeds.exceeds_seed_variation(mean, interval, *sds) is expected


def test_paired_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="one value per seed each"):
        seeds.paired_difference([0.1, 0.2], [0.1], names=("a", "b"), seed=0)
    with pytest.raises(ValueError, match="finite"):
        seeds.summarize([0.1, float("nan")], seed=0)


def test_identical_runs_are_called_identical() -> None:
    result = seeds.paired_difference(ACCURACIES, ACCURACIES, names=("a", "b"), seed=0)
    assert (result.mean, result.probability, result.exceeds) == (0.0, 0.5, False)
    assert seeds.difference_sentence(result) == (
        "Over 5 seeds, test accuracy is the same for b as for a on every seed."
    )
