"""Paired statistics: McNemar against scipy, the bootstrap against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from reportgen.core.text import p_equals
from reportgen.evaluate import statistics


def paired_correctness(b: int, c: int, both: int, neither: int, seed: int = 0) -> tuple:
    """Return shuffled correctness vectors with exactly ``b`` and ``c`` discordant images."""
    first = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    second = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    order = np.random.default_rng(seed).permutation(len(first))
    return first[order], second[order]


@pytest.mark.parametrize(
    ("b", "c"), [(0, 1), (1, 0), (3, 3), (5, 12), (40, 25), (0, 9), (120, 171), (2, 50)]
)
def test_mcnemar_matches_scipy_binomtest(b: int, c: int) -> None:
    first, second = paired_correctness(b, c, both=500, neither=30)
    result = statistics.mcnemar(first, second)
    assert (result.b, result.c) == (b, c)
    expected = binomtest(min(b, c), b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)


def test_mcnemar_without_disagreement_is_one() -> None:
    first, second = paired_correctness(0, 0, both=50, neither=5)
    assert statistics.mcnemar(first, second) == statistics.McNemar(0, 0, 1.0)


def test_mcnemar_accepts_zero_one_integers() -> None:
    assert statistics.mcnemar([1, 0, 1, 1], [0, 1, 1, 0]) == statistics.McNemar(2, 1, 1.0)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ([True, False], [True], "same length.*got 2 and 1"),
        ([], [], "empty"),
        ([[True]], [[True]], "1-D"),
        ([0, 2], [1, 1], "booleans"),
    ],
)
def test_mcnemar_rejects_bad_input(first: list, second: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        statistics.mcnemar(first, second)


def loop_bootstrap(first: np.ndarray, second: np.ndarray, resamples: int, seed: int) -> tuple:
    """The textbook bootstrap, one resample at a time: an independent reference."""
    rng = np.random.default_rng(seed)
    n = len(first)
    acc_first, acc_second = [], []
    for _ in range(resamples):
        index = rng.integers(0, n, size=n)
        acc_first.append(sum(bool(first[i]) for i in index) / n)
        acc_second.append(sum(bool(second[i]) for i in index) / n)
    diffs = [s - f for f, s in zip(acc_first, acc_second, strict=True)]
    return (
        tuple(np.percentile(acc_first, [2.5, 97.5])),
        tuple(np.percentile(diffs, [2.5, 97.5])),
    )


@pytest.mark.parametrize("n", [97, 400])
def test_bootstrap_matches_an_independent_loop(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(n)
    first = rng.random(n) < 0.8
    second = rng.random(n) < 0.85
    # Small chunks exercise the memory-bounded path: chunking must not change the draws.
    monkeypatch.setattr(statistics, "BOOTSTRAP_CHUNK_ELEMENTS", 3 * n)
    accuracy = statistics.accuracy_interval(first, resamples=250, seed=7)
    difference = statistics.difference_interval(first, second, resamples=250, seed=7)
    (low, high), (diff_low, diff_high) = loop_bootstrap(first, second, 250, seed=7)
    assert (accuracy.low, accuracy.high) == pytest.approx((low, high), abs=1e-12)
    assert (difference.low, difference.high) == pytest.approx((diff_low, diff_high), abs=1e-12)
    assert accuracy.estimate == pytest.approx(first.mean())
    assert difference.estimate == pytest.approx(second.mean() - first.mean())
    assert accuracy.low <= accuracy.estimate <= accuracy.high
    assert (accuracy.level, accuracy.resamples) == (0.95, 250)


def test_bootstrap_is_seeded_and_paired() -> None:
    rng = np.random.default_rng(1)
    correct = rng.random((2, 300)) < 0.9
    a = statistics.bootstrap_accuracies(correct, resamples=120, seed=3)
    b = statistics.bootstrap_accuracies(correct, resamples=120, seed=3)
    assert a.shape == (120, 2)
    assert np.array_equal(a, b)
    # Each model alone sees the same resamples as both together.
    alone = statistics.bootstrap_accuracies(correct[1], resamples=120, seed=3)
    assert np.array_equal(alone[:, 0], a[:, 1])
    assert not np.array_equal(a, statistics.bootstrap_accuracies(correct, resamples=120, seed=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resamples": 0, "seed": 0}, "resamples must be at least 1"),
        ({"resamples": 10, "seed": 0, "level": 1.5}, r"level must be in \(0, 1\)"),
    ],
)
def test_bootstrap_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        statistics.accuracy_interval([True, False, True], **kwargs)


def test_difference_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        statistics.difference_interval([True] * 5, [True] * 4, seed=0)


@pytest.mark.parametrize(
    ("b", "c", "claim", "significant"),
    [
        (10, 60, "The second model is more accurate than the first model (+", True),
        (60, 10, "The second model is less accurate than the first model (\N{MINUS SIGN}", True),
        (12, 15, "The second model is more accurate than the first model (+", False),
        (7, 7, "The second and first models are equally accurate (+0.00 pp", False),
    ],
)
def test_compare_verdict(b: int, c: int, claim: str, significant: bool) -> None:
    first, second = paired_correctness(b, c, both=900, neither=20)
    result = statistics.compare(first, second, names=("first", "second"), resamples=200, seed=0)
    assert result.significant is significant
    assert result.models == ("first", "second")
    assert result.verdict.startswith(claim)
    assert "95% CI" in result.verdict
    ending = "is statistically significant." if significant else "is not statistically significant."
    assert result.verdict.endswith(ending)
    assert f"McNemar {p_equals(result.mcnemar.p_value)} (α = 0.05)" in result.verdict
