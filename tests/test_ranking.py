"""One-vs-rest ROC and precision–recall: areas as scikit-learn's multiclass API gives them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from reportgen.evaluate import ranking


def scores(n: int, seed: int, classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += rng.uniform(0, 3, n)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, labels


def test_areas_agree_with_scikit_learns_multiclass_averages() -> None:
    proba, labels = scores(800, 0)
    result = ranking.rankings(proba, labels)
    # A different path: scikit-learn's own multiclass handling and its averages.
    per_class_auc = roc_auc_score(labels, proba, multi_class="ovr", average=None)
    truth = label_binarize(labels, classes=range(6))
    per_class_ap = average_precision_score(truth, proba, average=None)
    assert [r.auc for r in result.classes] == pytest.approx(per_class_auc, abs=1e-12)
    assert [r.average_precision for r in result.classes] == pytest.approx(per_class_ap, abs=1e-12)
    assert result.macro_auc == pytest.approx(
        roc_auc_score(labels, proba, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert result.micro_auc == pytest.approx(
        roc_auc_score(truth, proba, average="micro"), abs=1e-12
    )
    assert result.macro_average_precision == pytest.approx(
        average_precision_score(truth, proba, average="macro"), abs=1e-12
    )
    assert result.micro_average_precision == pytest.approx(
        average_precision_score(truth, proba, average="micro"), abs=1e-12
    )
    assert [r.positives for r in result.classes] == np.bincount(labels, minlength=6).tolist()


def test_a_class_without_test_images_has_no_area_and_no_curve() -> None:
    proba, labels = scores(300, 1)
    labels[labels == 2] = 3
    result = ranking.rankings(proba, labels)
    assert result.classes[2].auc is None and result.classes[2].average_precision is None
    defined = [r.auc for r in result.classes if r.auc is not None]
    assert result.macro_auc == pytest.approx(np.mean(defined))
    roc, _ = ranking.roc_curves(proba, labels)
    pr, _ = ranking.pr_curves(proba, labels)
    assert roc[2] is None and pr[2] is None and roc[3] is not None


def test_areas_never_leave_zero_to_one() -> None:
    labels = np.array([0, 1, 2] * 50)
    perfect = np.eye(3)[labels] * 0.98 + 0.01 / 1.5
    result = ranking.rankings(perfect, labels)
    assert all(r.auc == 1.0 and r.average_precision == 1.0 for r in result.classes)


def test_curves_are_thinned_keeping_both_ends() -> None:
    proba, labels = scores(20_000, 2)
    roc, micro = ranking.roc_curves(proba, labels)
    for curve in (*roc, micro):
        assert curve is not None and len(curve.x) <= ranking.DRAW_POINTS
        assert (curve.x[0], curve.y[0]) == (0.0, 0.0) and (curve.x[-1], curve.y[-1]) == (1.0, 1.0)
        assert (np.diff(curve.x) >= 0).all()
    pr, _ = ranking.pr_curves(proba, labels)
    assert all(c is not None and len(c.x) <= ranking.DRAW_POINTS for c in pr)
    short = ranking.thin(np.arange(5.0), np.arange(5.0))
    assert short.x.tolist() == [0, 1, 2, 3, 4]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="labels must hold classes 0–1"):
        ranking.rankings([[0.4, 0.6]], [2])
    with pytest.raises(ValueError, match="proba must be"):
        ranking.rankings([0.4, 0.6], [1, 0])


@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_areas_and_curves_are_scikit_learns_to_the_last_bit(decimals: int | None) -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    proba, labels = scores(500, 3)
    if decimals is not None:  # many ties; at 0 decimals, classes all of one score
        proba = np.round(proba, decimals)
    result = ranking.rankings(proba, labels)
    truth = label_binarize(labels, classes=range(6))
    for label, row in enumerate(result.classes):
        assert row.auc == roc_auc_score(truth[:, label], proba[:, label])
        assert row.average_precision == average_precision_score(truth[:, label], proba[:, label])
    assert result.micro_auc == roc_auc_score(truth.ravel(), proba.ravel())
    assert result.micro_average_precision == average_precision_score(truth.ravel(), proba.ravel())
    counts = ranking.positives_at_thresholds(truth[:, 4], proba[:, 4])
    fpr, tpr, _ = roc_curve(truth[:, 4], proba[:, 4])
    precision, recall, _ = precision_recall_curve(truth[:, 4], proba[:, 4])
    assert [a.tolist() for a in ranking.roc_points(*counts)] == [fpr.tolist(), tpr.tolist()]
    assert [a.tolist() for a in ranking.pr_points(*counts)] == [
        precision.tolist(),
        recall.tolist(),
    ]


def test_one_count_gives_the_areas_and_the_curves_of_the_two_separate_calls() -> None:
    proba, labels = scores(500, 7, classes=5)
    labels[labels == 4] = 3  # class 4 has no test image: undefined areas and curves
    both = ranking.ranked(proba, labels)
    assert both.rankings == ranking.rankings(proba, labels)
    curves = ranking.curves(proba, labels)
    assert both.curves.roc[4] is None and both.curves.pr[4] is None
    for found, expected in [(both.curves.roc_micro, curves.roc_micro),
                            (both.curves.pr_micro, curves.pr_micro),
                            *zip(both.curves.roc[:4], curves.roc[:4], strict=True),
                            *zip(both.curves.pr[:4], curves.pr[:4], strict=True)]:  # fmt: skip
        assert found is not None and expected is not None
        assert np.array_equal(found.x, expected.x) and np.array_equal(found.y, expected.y)
