"""Curve diagnosis on synthetic histories, one per rule of reportgen.evaluate.diagnosis."""

from __future__ import annotations

import math

import pytest

from reportgen.evaluate import diagnosis
from reportgen.evaluate.diagnosis import GOOD_FIT, LR_TOO_HIGH, OVERFITTING, UNDERFITTING


def history(train_loss: list[float], val_loss: list[float]) -> list[dict[str, float]]:
    """Return epochs with the given losses and accuracies that roughly follow them."""
    return [
        {
            "epoch": epoch,
            "train_loss": t,
            "val_loss": v,
            "train_accuracy": max(0.0, 1 - t / 2) if math.isfinite(t) else 0.1,
            "val_accuracy": max(0.0, 1 - v / 2) if math.isfinite(v) else 0.1,
        }
        for epoch, (t, v) in enumerate(zip(train_loss, val_loss, strict=True), start=1)
    ]


CASES = {
    "overfitting": (
        [0.24, 0.10, 0.068, 0.050, 0.039, 0.035, 0.027, 0.026, 0.020, 0.022],
        [0.131, 0.103, 0.093, 0.096, 0.102, 0.097, 0.106, 0.110, 0.111, 0.130],
        [OVERFITTING],
    ),
    "underfitting": ([2.20, 1.90, 1.70, 1.60], [2.10, 1.85, 1.70, 1.62], [UNDERFITTING]),
    "good fit": (
        [0.31, 0.16, 0.127, 0.108, 0.100, 0.075, 0.067, 0.065, 0.061, 0.058],
        [0.125, 0.094, 0.087, 0.086, 0.070, 0.067, 0.070, 0.067, 0.067, 0.069],
        [GOOD_FIT],
    ),
    "spike": ([0.40, 0.20, 0.90, 0.30, 0.25], [0.30, 0.20, 0.80, 0.28, 0.24], [LR_TOO_HIGH]),
    "diverged": ([0.40, math.nan], [0.30, math.nan], [LR_TOO_HIGH]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_row_of_the_table(case: str) -> None:
    train_loss, val_loss, labels = CASES[case]
    result = diagnosis.diagnose(history(train_loss, val_loss))
    assert result.labels == labels
    assert result.evidence
    assert set(result.labels) <= set(diagnosis.LABELS)


def test_overfitting_evidence_names_the_epochs() -> None:
    train_loss, val_loss, _ = CASES["overfitting"]
    evidence = diagnosis.diagnose(history(train_loss, val_loss)).evidence
    assert evidence[0] == (
        "validation loss rose from epoch 3 (0.093) to epoch 10 (0.130) while train loss kept "
        "falling (0.068 → 0.022)"
    )


def test_good_fit_evidence_names_the_lowest_epoch() -> None:
    train_loss, val_loss, _ = CASES["good fit"]
    evidence = diagnosis.diagnose(history(train_loss, val_loss)).evidence
    assert evidence == [
        "train loss fell from 0.310 (epoch 1) to 0.058 (epoch 10) and validation loss from "
        "0.125 to 0.069, ending within 10% of its lowest (0.067, epoch 6)"
    ]


def test_spike_evidence_names_the_jump() -> None:
    result = diagnosis.diagnose(history(*CASES["spike"][:2]))
    assert "train loss jumped from 0.200 at epoch 2 to 0.900 at epoch 3 (×4.5)" in result.evidence
    assert "Learning rate too high" in result.summary


def test_noise_near_zero_loss_is_no_spike() -> None:
    # 0.02 -> 0.03 is +50% but tiny in absolute terms: not an instability.
    result = diagnosis.diagnose(history([0.2, 0.05, 0.02, 0.03], [0.2, 0.08, 0.07, 0.068]))
    assert LR_TOO_HIGH not in result.labels


def test_divergence_during_training_counts() -> None:
    result = diagnosis.diagnose(history([0.4, 0.2], [0.3, 0.2]), diverged_epoch=3)
    assert result.labels == [LR_TOO_HIGH]
    assert result.evidence == ["training diverged (non-finite loss) during epoch 3"]


@pytest.mark.parametrize(
    ("train_loss", "val_loss", "labels", "summary_part"),
    [
        ([0.30], [0.15], [], "One epoch is too few"),
        ([1.80], [1.70], [UNDERFITTING], "Underfitting"),
        ([0.30, 0.10], [0.15, 0.09], [GOOD_FIT], "With only 2 epochs this reading is tentative."),
        ([0.30, 0.10], [0.10, 0.13], [OVERFITTING], "tentative"),
    ],
)
def test_short_histories(
    train_loss: list[float], val_loss: list[float], labels: list[str], summary_part: str
) -> None:
    result = diagnosis.diagnose(history(train_loss, val_loss))
    assert result.labels == labels
    assert summary_part in result.summary


def test_no_epoch_at_all() -> None:
    assert diagnosis.diagnose([]).labels == []
    assert diagnosis.diagnose([], diverged_epoch=1).labels == [LR_TOO_HIGH]


def test_no_clear_pattern() -> None:
    # Both losses rise slowly: neither a fit nor a spike.
    result = diagnosis.diagnose(history([0.10, 0.11, 0.12], [0.10, 0.11, 0.12]))
    assert result.labels == []
    assert result.summary.startswith("No clear pattern")


def test_missing_keys_are_named() -> None:
    with pytest.raises(ValueError, match=r"history\[0\] lacks val_loss, val_accuracy"):
        diagnosis.diagnose([{"train_loss": 0.1, "train_accuracy": 0.9}])
