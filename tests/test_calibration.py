"""Calibration: ECE/MCE as torchmetrics computes them, proper scores, the temperature fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from reportgen.evaluate import calibration
from reportgen.evaluate.probabilities import softmax


def logits_and_labels(n: int, seed: int, *, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Return confident-ish logits and labels right about 80% of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) * 2.0
    hit = rng.random(n) < 0.8
    logits[np.arange(n)[hit], labels[hit]] += rng.uniform(0.0, 9.0, int(hit.sum()))
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("norm", "error"), [("l1", "expected_error"), ("max", "maximum_error")])
def test_ece_and_mce_agree_with_torchmetrics(seed: int, norm: str, error: str) -> None:
    logits, labels = logits_and_labels(3_000, seed)
    proba = softmax(logits)
    assert proba.max() < 1.0  # torchmetrics bins a confidence of exactly 1 on its own
    metric = MulticlassCalibrationError(num_classes=10, n_bins=15, norm=norm)
    expected = float(metric(torch.from_numpy(proba), torch.from_numpy(labels)))
    # The default binning is torchmetrics': 15 equal-width bins.
    ours = getattr(calibration.equal_width_bins(*calibration.top_class(proba, labels)), error)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert 0.0 < ours < 1.0


def test_a_confidence_of_one_is_in_the_top_bin_and_an_edge_closes_its_bin() -> None:
    bins = calibration.equal_width_bins([1.0, 1 / 15, 0.5, 0.99], [True, False, True, True])
    assert bins.count.tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2]
    assert bins.low[0] == 0.0 and bins.high[-1] == 1.0
    assert bins.accuracy[0] == 0.0 and bins.confidence[-1] == pytest.approx(0.995)
    assert np.isnan(bins.accuracy[1])  # empty
    assert bins.maximum_error == pytest.approx(0.5)  # the bin of 0.5, right


def test_equal_mass_bins_hold_equal_counts_and_recompute_the_ece() -> None:
    logits, labels = logits_and_labels(1_000, 3)
    confidence, correct = calibration.top_class(softmax(logits), labels)
    bins = calibration.equal_mass_bins(confidence, correct, n_bins=15)
    assert bins.count.sum() == 1_000 and bins.count.max() - bins.count.min() <= 1
    assert (np.diff(bins.confidence) >= 0).all() and (bins.low[1:] >= bins.high[:-1]).all()
    order = np.argsort(confidence, kind="stable")
    expected = sum(
        len(part) / 1_000 * abs(correct[part].mean() - confidence[part].mean())
        for part in np.array_split(order, 15)
    )
    default = calibration.equal_mass_bins(*calibration.top_class(softmax(logits), labels))
    assert default.expected_error == pytest.approx(expected, abs=1e-12)  # 15 bins by default
    assert bins.expected_error == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10])
def test_constant_logits_are_perfectly_calibrated_by_both_measures(classes: int) -> None:
    # Every confidence is 1/classes and, with labels balanced, so is the accuracy.
    labels = np.sort(np.arange(600) % classes)  # class-sorted, as a test set often is
    logits = np.zeros((600, classes))
    result = calibration.calibrate(logits, labels, logits, labels)
    assert result.mean_confidence == pytest.approx(1 / classes)
    assert result.accuracy == pytest.approx(1 / classes)
    assert result.ece == pytest.approx(0.0, abs=1e-12)
    assert result.adaptive_ece == pytest.approx(0.0, abs=1e-12)
    assert sorted(result.equal_mass.count.tolist()) == [0] * 14 + [600]  # one bin holds the tie


def test_equal_mass_bins_keep_ties_together_whatever_the_order() -> None:
    rng = np.random.default_rng(5)
    # 40 distinct confidences and a run of 60 equal ones that straddles two cuts.
    confidence = np.concatenate([rng.uniform(0.3, 0.6, 20), np.full(60, 0.7),
                                 rng.uniform(0.8, 1.0, 20)])  # fmt: skip
    correct = rng.random(100) < confidence
    bins = calibration.equal_mass_bins(confidence, correct, n_bins=10)
    tied = [m for m in range(10) if bins.low[m] <= 0.7 <= bins.high[m]]
    assert len(tied) == 1 and bins.count[tied[0]] == 60
    assert bins.count.sum() == 100
    for seed in range(5):
        permuted = np.random.default_rng(seed).permutation(100)
        again = calibration.equal_mass_bins(confidence[permuted], correct[permuted], n_bins=10)
        np.testing.assert_array_equal(again.count, bins.count)
        np.testing.assert_array_equal(again.accuracy, bins.accuracy)
        assert again.expected_error == bins.expected_error


def test_neither_ece_depends_on_the_test_order() -> None:
    logits, labels = logits_and_labels(500, 3)
    logits[:200] = 0.0  # 200 tied confidences of 0.1, some right
    result = calibration.calibrate(logits, labels, logits, labels)
    permuted = np.random.default_rng(0).permutation(500)
    again = calibration.calibrate(logits[permuted], labels[permuted], logits, labels)
    # Equal-width bins sum in test order: equal up to rounding; equal-mass bins: bit for bit.
    assert again.ece == pytest.approx(result.ece, rel=1e-12, abs=1e-15)
    assert again.ece_scaled == pytest.approx(result.ece_scaled, rel=1e-12, abs=1e-15)
    assert (again.adaptive_ece, again.adaptive_ece_scaled) == (
        result.adaptive_ece, result.adaptive_ece_scaled,
    )  # fmt: skip


def test_brier_and_nll_match_a_direct_recomputation() -> None:
    logits, labels = logits_and_labels(500, 4)
    proba = softmax(logits)
    brier = np.mean([
        sum((proba[i, k] - (k == labels[i])) ** 2 for k in range(10)) for i in range(500)
    ])  # fmt: skip
    nll = -np.mean([
        logits[i, labels[i]] - np.log(np.sum(np.exp(logits[i]))) for i in range(500)
    ])  # fmt: skip
    assert calibration.brier_score(proba, labels) == pytest.approx(brier, rel=1e-12)
    assert calibration.negative_log_likelihood(logits, labels) == pytest.approx(nll, rel=1e-12)
    assert 0.0 <= calibration.brier_score(proba, labels) <= 2.0


def test_nll_stays_finite_for_huge_logits_where_float32_probabilities_are_one() -> None:
    logits = np.array([[800.0, 0.0], [0.0, 900.0]])
    assert calibration.negative_log_likelihood(logits, [0, 0]) == pytest.approx(450.0)
    assert str(calibration.negative_log_likelihood(logits, [0, 1])) == "0.0"  # never "-0.0"


@pytest.mark.parametrize("temperature", [0.6, 1.0, 2.5])
def test_the_fit_recovers_a_known_temperature(temperature: float) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(60_000, 10)) * 3.0
    # Labels drawn from softmax(logits / T): the true temperature is T.
    proba = softmax(logits / temperature)
    labels = (rng.random((60_000, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted == pytest.approx(temperature, rel=0.03)
    grid = np.exp(np.linspace(np.log(fitted) - 0.02, np.log(fitted) + 0.02, 41))
    losses = [calibration.negative_log_likelihood(logits / t, labels) for t in grid]
    assert calibration.negative_log_likelihood(logits / fitted, labels) <= min(losses) + 1e-12


def test_the_fit_is_deterministic_and_bounded() -> None:
    logits, labels = logits_and_labels(2_000, 6)
    assert calibration.fit_temperature(logits, labels) == calibration.fit_temperature(
        logits, labels
    )
    perfect = np.eye(3)[[0, 1, 2, 0]] * 5.0  # every label right: sharper is always better
    low, _ = calibration.LOG_T_RANGE
    assert np.log(calibration.fit_temperature(perfect, [0, 1, 2, 0])) == pytest.approx(low)


def test_calibrate_scales_with_the_validation_temperature() -> None:
    logits, labels = logits_and_labels(4_000, 7)
    val_logits, val_labels = logits_and_labels(2_000, 8)
    result = calibration.calibrate(logits * 3, labels, val_logits * 3, val_labels)
    assert result.temperature > 1.5  # logits made three times too sharp: over-confident
    assert result.ece_scaled < result.ece and result.nll_scaled < result.nll
    assert result.mean_confidence > result.accuracy
    assert result.bins.count.sum() == result.equal_mass.count.sum() == 4_000
    sentence = calibration.confidence_verdict("baseline", result)
    assert sentence.startswith("The baseline model is over-confident: ")
    assert f"T = {result.temperature:.2f}" in sentence and sentence.endswith(".")


def test_the_verdict_reads_the_temperature() -> None:
    logits, labels = logits_and_labels(4_000, 9)
    val_logits, val_labels = logits_and_labels(2_000, 10)
    soft = calibration.calibrate(logits / 3, labels, val_logits / 3, val_labels)
    assert soft.temperature < 1 and " under-confident: " in calibration.confidence_verdict(
        "m", soft
    )
    same = calibration.calibrate(logits, labels, logits, labels)
    rescaled = calibration.calibrate(
        logits / same.temperature, labels, logits / same.temperature, labels
    )
    assert " neither over- nor under-confident as a whole: " in calibration.confidence_verdict(
        "m", rescaled
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: softmax(np.ones(3)), "logits must be"),
        (lambda: softmax([[np.nan, 0.0]]), "must be finite"),
        (lambda: calibration.brier_score([[0.5, 0.5]], [2]), "labels must hold classes 0–1"),
        (lambda: calibration.brier_score([[0.5, 0.5]], [0, 1]), r"labels must be \[1\]"),
        (lambda: calibration.equal_mass_bins([0.5], [True], n_bins=0), "n_bins must be"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
