"""Per-class intervals from the accuracy's resamples; recall differences, Holm-corrected."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from reportgen.evaluate import per_class, statistics

NAMES = ("zero", "one", "two", "three")


def predictions(n: int, seed: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n)
    y_pred = np.where(rng.random(n) < accuracy, y_true, rng.integers(0, 4, n))
    return y_true, y_pred


def test_intervals_come_from_the_accuracy_intervals_resamples() -> None:
    y_true, y_pred = predictions(300, 0, 0.8)
    counts = per_class.bootstrap_class_counts(y_true, [y_pred], classes=4, resamples=120, seed=9)
    accuracy = counts.correct[:, 0].sum(axis=1) / 300
    assert accuracy == pytest.approx(
        statistics.bootstrap_accuracies(y_true == y_pred, resamples=120, seed=9)[:, 0], abs=0
    )


def test_counts_equal_a_count_of_every_resample_in_any_chunking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y_true, first = predictions(200, 2, 0.7)
    _, second = predictions(200, 3, 0.5)
    monkeypatch.setattr(statistics, "BOOTSTRAP_CHUNK_ELEMENTS", 1000)  # 5 resamples a chunk
    # Five classes: class 4 has no test image and is never predicted.
    counts = per_class.bootstrap_class_counts(
        y_true, [first, second], classes=5, resamples=23, seed=6
    )
    rows = [r for _, index in statistics.resample_indices(200, resamples=23, seed=6) for r in index]
    assert len(rows) == 23
    for r, drawn in enumerate(rows):
        truth = y_true[drawn]
        assert counts.support[r].tolist() == np.bincount(truth, minlength=5).tolist()
        for m, pred in enumerate((first[drawn], second[drawn])):
            assert counts.predicted[r, m].tolist() == np.bincount(pred, minlength=5).tolist()
            hits = np.bincount(truth[pred == truth], minlength=5)
            assert counts.correct[r, m].tolist() == hits.tolist()
    assert counts.support.dtype == counts.correct.dtype == np.int64


def test_intervals_match_scikit_learn_on_every_resample() -> None:
    y_true, y_pred = predictions(200, 1, 0.7)
    resamples, seed = 80, 4
    found = per_class.class_intervals(
        y_true, y_pred, classes=4, resamples=resamples, seed=seed, level=0.9
    )
    per_resample = []
    for _, index in statistics.resample_indices(200, resamples=resamples, seed=seed):
        for rows in index:
            p, r, f, _ = precision_recall_fscore_support(
                y_true[rows], y_pred[rows], labels=range(4), zero_division=0
            )
            per_resample.append(np.stack([p, r, f]))
    samples = np.stack(per_resample)  # [R, 3, K]
    for row in found:
        for position, score in enumerate(("precision", "recall", "f1")):
            low, high = np.percentile(samples[:, position, row.label], [5, 95])
            bounds = getattr(row, score)
            assert (bounds.low, bounds.high) == pytest.approx((low, high), abs=1e-12)


def manual_holm(p_values: list[float]) -> list[float]:
    """Holm written out: sort, scale by the hypotheses left, carry the running maximum."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.005], [0.5, 0.5, 0.5], [0.001], [0.02, 0.9, 0.011, 0.04, 0.2, 0.03]],
)
def test_holm_matches_a_manual_recomputation(p_values: list[float]) -> None:
    assert per_class.holm(p_values).tolist() == pytest.approx(manual_holm(p_values), abs=1e-15)


def test_holm_known_values() -> None:
    assert per_class.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx(
        [0.03, 0.06, 0.06, 0.02]
    )
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        per_class.holm([0.5, 1.5])


def test_recall_differences_are_exact_mcnemar_per_class() -> None:
    y_true, first = predictions(1_000, 2, 0.75)
    rng = np.random.default_rng(3)
    second = np.where((y_true == 2) & (rng.random(1_000) < 0.9), 2, first)  # better on "two"
    result = per_class.recall_differences(
        y_true, first, second, names=("base", "better"), class_names=NAMES,
        resamples=300, seed=5,
    )  # fmt: skip
    assert [row.label for row in result.rows] == [0, 1, 2, 3]
    for row in result.rows:
        mine = y_true == row.label
        test = statistics.mcnemar(first[mine] == row.label, second[mine] == row.label)
        assert (row.b, row.c, row.p_value) == (test.b, test.c, test.p_value)
        assert row.estimate == pytest.approx((row.c - row.b) / row.support)
        assert row.low <= row.estimate <= row.high
    adjusted = per_class.holm([row.p_value for row in result.rows])
    assert [row.p_adjusted for row in result.rows] == adjusted.tolist()
    two = result.rows[2]
    assert two.significant and two.estimate > 0.1
    assert result.verdict.startswith(
        "Compared with the base model, the better model’s recall is significantly higher on "
        "class two (+"
    )
    assert "after Holm’s correction for 4 classes (α = 0.05)." in result.verdict


def test_no_difference_is_said_plainly() -> None:
    y_true, first = predictions(400, 6, 0.8)
    result = per_class.recall_differences(
        y_true, first, first.copy(), names=("a", "b"), class_names=NAMES, resamples=100, seed=1
    )
    assert not any(row.significant for row in result.rows)
    assert result.verdict.startswith(
        "No per-class recall difference between the a and b models is significant after "
        "Holm’s correction for 4 classes"
    )
    assert all(row.p_adjusted == 1.0 for row in result.rows)


def test_a_worse_class_is_named_too() -> None:
    y_true, first = predictions(1_000, 7, 0.9)
    second = np.where(y_true == 1, (y_true + 1) % 4, first)  # never right on "one"
    result = per_class.recall_differences(
        y_true, first, second, names=("a", "b"), class_names=NAMES, resamples=100, seed=1
    )
    assert "the b model’s recall is significantly lower on class one (−" in result.verdict


def test_a_class_without_test_images_counts_as_no_difference() -> None:
    y_true, first = predictions(200, 8, 0.8)
    first[y_true == 3] = 0
    y_true[y_true == 3] = 0
    result = per_class.recall_differences(
        y_true, first, first, names=("a", "b"), class_names=NAMES, resamples=50, seed=1
    )
    assert result.rows[3].support == 0 and result.rows[3].p_value == 1.0


def test_a_verdict_on_many_classes_names_five_and_counts_the_rest() -> None:
    # 40 classes of 50 images: the first model always right, the second always wrong on
    # classes 0-11 (12 significant drops of equal size); the larger classes 10 and 11
    # (60 images) come first, then the others by name.
    classes = 40
    sizes = [60 if label in (10, 11) else 50 for label in range(classes)]
    y_true = np.repeat(np.arange(classes), sizes)
    second = np.where(y_true < 12, (y_true + 1) % classes, y_true)
    names = [f"c{label:02d}" for label in range(classes)]
    result = per_class.recall_differences(
        y_true, y_true.copy(), second, names=("a", "b"), class_names=names, resamples=100, seed=1
    )
    assert sum(row.significant for row in result.rows) == 12
    verdict = result.verdict
    assert verdict.startswith(
        "Compared with the a model, the b model’s recall is significantly lower on 12 classes, "
        "most clearly class c10 (−100.00 pp"
    )
    named = [name for name in names if f"class {name} (" in verdict]
    assert named == ["c00", "c01", "c02", "c10", "c11"]
    assert verdict.index("class c11 (") < verdict.index("class c00 (")
    assert " and 7 more, after Holm’s correction for 40 classes (α = 0.05)." in verdict
