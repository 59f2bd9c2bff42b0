from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import classification_report as sk_report

from reportgen.artifacts.model_metrics import (
    ConfusedPair,
)
from reportgen.data.idx import MEAN, STD
from reportgen.data.tensors import Split
from reportgen.evaluate import calibration, classification, per_class, predict
from reportgen.evaluate.probabilities import softmax
from reportgen.train.networks import MLP

NAMES = [str(k) for k in range(10)]


@pytest.fixture
def labels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, rng.integers(0, 10, 500))
    y_pred[(y_true == 4)][:5] = 9
    return y_true, y_pred


def test_classification_report_matches_sklearn(labels: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = labels
    ours = classification.classification_report(
        y_true, y_pred, num_classes=10, resamples=200, seed=3
    )
    theirs = sk_report(y_true, y_pred, output_dict=True, zero_division=0)
    for row in ours.classes:
        ref = theirs[str(row.label)]
        assert (row.precision, row.recall, row.f1, row.support) == pytest.approx(
            (ref["precision"], ref["recall"], ref["f1-score"], ref["support"])
        )
    assert ours.accuracy == pytest.approx(theirs["accuracy"])
    assert ours.macro_avg.f1 == pytest.approx(theirs["macro avg"]["f1-score"])
    assert ours.weighted_avg.recall == pytest.approx(theirs["weighted avg"]["recall"])
    assert ours.micro_avg.f1 == pytest.approx(ours.accuracy)  # single-label: micro = accuracy
    intervals = per_class.class_intervals(y_true, y_pred, classes=10, resamples=200, seed=3)
    for row, interval in zip(ours.classes, intervals, strict=True):
        assert (row.recall_ci.low, row.recall_ci.high) == (
            interval.recall.low,
            interval.recall.high,
        )
        assert row.precision_ci.low <= row.precision_ci.high and row.f1_ci.low <= row.f1_ci.high


def test_logits_are_what_the_probabilities_are_made_of() -> None:
    torch.manual_seed(0)
    model = MLP([16], batchnorm=True, input_shape=(1, 28, 28), num_classes=10)
    x = Split(torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8),
              torch.zeros(50, dtype=torch.int64), torch.arange(50), (MEAN,), (STD,))  # fmt: skip
    logits = predict.predict_logits(model, x, batch_size=16)
    proba = predict.predict_proba(model, x, batch_size=16)
    assert logits.dtype == np.float64 and logits.shape == (50, 10)
    assert softmax(logits) == pytest.approx(proba, abs=1e-6)
    assert not model.training


def test_class_errors_are_one_minus_recall(labels: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = labels
    matrix = classification.confusion(y_true, y_pred, num_classes=10)
    report = classification.classification_report(
        y_true, y_pred, num_classes=10, resamples=100, seed=0
    )
    errors = classification.class_errors(matrix)
    for row, cls in zip(errors, report.classes, strict=True):
        assert row.error_rate == pytest.approx(1 - cls.recall)
        assert row.support == cls.support == matrix[row.label].sum()
        if row.errors:
            wrong = matrix[row.label].copy()
            wrong[row.label] = 0
            assert row.top_wrong_count == wrong.max() == wrong[row.top_wrong_prediction]


def test_confused_pairs_and_worst_classes() -> None:
    y_true = np.array([4] * 10 + [3] * 10 + [5] * 10)
    y_pred = np.array([9] * 6 + [4] * 4 + [8] * 3 + [3] * 7 + [5] * 10)
    matrix = classification.confusion(y_true, y_pred, num_classes=10)
    assert classification.most_confused_pairs(matrix, count=5) == [
        ConfusedPair(true=4, pred=9, count=6),
        ConfusedPair(true=3, pred=8, count=3),
    ]
    errors = classification.class_errors(matrix)
    assert classification.worst_classes(errors, names=NAMES) == [4, 3]
    assert classification.pair_indices(y_true, y_pred, true=4, pred=9, limit=4) == [0, 1, 2, 3]
    wrong = classification.misclassified_indices(y_true, y_pred, limit=8)
    assert wrong == [0, 1, 2, 3, 4, 5, 10, 11]


def test_worst_classes_tied_on_rate_go_to_the_larger_class_then_by_name() -> None:
    # Classes 0, 1, 2 and 3 are all wrong half the time; 2 and 3 have 4 test images, 0 and 1
    # only 2; between equal sizes the name decides ("a" before "b"), not the index.
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4])
    y_pred = np.array([0, 4, 1, 4, 2, 2, 4, 4, 3, 3, 4, 4, 4])
    errors = classification.class_errors(classification.confusion(y_true, y_pred, num_classes=5))
    names = ["z", "y", "b", "a", "x"]
    assert classification.worst_classes(errors, names=names) == [3, 2, 1]
    assert classification.worst_classes(errors, names=names, count=4) == [3, 2, 1, 0]


def test_pair_galleries_configured_first_then_new_automatic_pairs() -> None:
    y_true = np.array([4, 4, 4, 3, 3, 5, 5, 5, 5, 8, 1])
    y_pred = np.array([9, 4, 9, 8, 8, 3, 3, 3, 5, 3, 1])
    matrix = classification.confusion(y_true, y_pred, num_classes=10)
    galleries = classification.pair_galleries(
        matrix, y_true, y_pred, configured=[(4, 9), (7, 1)], auto=2, limit=1,
        figure=lambda t, p: f"m_{t}_{p}",
    )  # fmt: skip
    assert [(g.true, g.pred, g.source) for g in galleries] == [
        (4, 9, "config"), (7, 1, "config"), (5, 3, "auto"), (3, 8, "auto"),
    ]  # fmt: skip
    assert [g.count for g in galleries] == [2, 0, 3, 2]
    assert [g.indices for g in galleries] == [[0], [], [5], [3]]
    assert [g.figure for g in galleries] == ["m_4_9", "m_7_1", "m_5_3", "m_3_8"]


def test_mean_log_loss() -> None:
    # The one NLL (the models' test_loss) is the mean log loss, computed from the logits:
    # log-probabilities are logits whose softmax gives back these probabilities.
    proba = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert calibration.negative_log_likelihood(np.log(proba), np.array([0, 1])) == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2
    )


def test_probabilities_from_the_logits_are_those_of_the_model() -> None:
    torch.manual_seed(1)
    model = MLP([16], input_shape=(1, 28, 28), num_classes=10)
    x = Split(torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8),
              torch.zeros(40, dtype=torch.int64), torch.arange(40), (MEAN,), (STD,))  # fmt: skip
    logits = predict.predict_logits(model, x, batch_size=40)
    assert np.array_equal(
        predict.proba_from_logits(logits), predict.predict_proba(model, x, batch_size=40)
    )


@pytest.mark.parametrize("k", [2, 5, 10])
def test_top_k_accuracy_matches_torchmetrics(k: int) -> None:
    from torchmetrics.classification import MulticlassAccuracy

    rng = np.random.default_rng(k)
    y_true = rng.integers(0, 30, 400)
    logits = rng.normal(size=(400, 30)) + 2 * np.eye(30)[y_true]
    proba = softmax(logits).astype(np.float32)
    ours = classification.top_k_correct(proba, y_true, k=k).mean()
    metric = MulticlassAccuracy(num_classes=30, top_k=k, average="micro")
    theirs = metric(torch.from_numpy(proba), torch.from_numpy(y_true)).item()
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert 0.3 < ours < 1  # neither trivially right nor trivially wrong


def test_top_k_ties_rank_the_lower_class_first_as_predictions_do() -> None:
    proba = np.array([[0.4, 0.2, 0.2, 0.2], [0.1, 0.3, 0.3, 0.3], [0.25, 0.25, 0.25, 0.25]])
    y_true = np.array([3, 1, 2])
    assert classification.top_k_correct(proba, y_true, k=2).tolist() == [False, True, False]
    assert classification.top_k_correct(proba, y_true, k=3).tolist() == [False, True, True]
    assert classification.top_k_correct(proba, y_true, k=4).tolist() == [True, True, True]
    # k = 1 is the predictions' correctness, ties included.
    assert (
        classification.top_k_correct(proba, y_true, k=1).tolist()
        == (proba.argmax(axis=1) == y_true).tolist()
    )
