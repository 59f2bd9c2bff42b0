"""The order of a many-class confusion matrix and the classes of its most confused pairs."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.artifacts.catalogue import MANY_CLASSES
from reportgen.evaluate import confusion

BLOCK = (3, 17, 29, 35)  # mutually confused classes planted in a 40-class matrix


def planted(seed: int = 0, k: int = 40) -> np.ndarray:
    """A 40-class matrix: a strong diagonal, scattered single errors, and BLOCK confused."""
    rng = np.random.default_rng(seed)
    matrix = np.diag(rng.integers(50, 100, k))
    scattered = (rng.random((k, k)) < 0.06) & ~np.eye(k, dtype=bool)
    matrix += scattered * rng.integers(1, 3, (k, k))
    for true in BLOCK:
        for pred in BLOCK:
            if true != pred:
                matrix[true, pred] += rng.integers(8, 15)
    return matrix


def positions(order: list[int], classes: tuple[int, ...]) -> list[int]:
    return sorted(order.index(label) for label in classes)


@pytest.mark.parametrize("seed", range(5))
def test_a_planted_block_of_confused_classes_ends_up_adjacent(seed: int) -> None:
    matrix = planted(seed)
    order = confusion.confusion_order(matrix)
    assert sorted(order) == list(range(40))
    where = positions(order, BLOCK)
    assert where == list(range(where[0], where[0] + len(BLOCK)))


def test_the_order_is_deterministic() -> None:
    matrix = planted(1)
    first = confusion.confusion_order(matrix)
    assert confusion.confusion_order(matrix.copy()) == first
    assert confusion.confusion_order(matrix.astype(np.float64)) == first
    assert confusion.confusion_order(matrix.tolist()) == first
    assert confusion.most_confused_classes(matrix) == confusion.most_confused_classes(matrix)


def test_ties_and_unconfused_classes_go_by_class_index() -> None:
    assert confusion.confusion_order(np.eye(30, dtype=int) * 7) == list(range(30))
    matrix = np.eye(6, dtype=int) * 10
    matrix[4, 1] = matrix[5, 2] = 3  # two equal groups: the one with the lower index first
    assert confusion.confusion_order(matrix) == [1, 4, 2, 5, 0, 3]
    matrix[5, 2] = 4  # now {2, 5} is the more confused group
    assert confusion.confusion_order(matrix) == [2, 5, 1, 4, 0, 3]


def test_similarity_weighs_rates_not_counts() -> None:
    matrix = np.array([[90, 10, 0], [0, 10, 0], [0, 5, 5]])
    similarity = confusion.confusion_similarity(matrix)
    np.testing.assert_allclose(similarity, [[0, 0.1, 0], [0.1, 0, 0.5], [0, 0.5, 0]])
    # (1, 2) merge first, then 0 joins them; the branches of a merge go lowest index first.
    assert confusion.confusion_order(matrix) == [0, 1, 2]


def test_most_confused_classes_take_whole_pairs_in_confusion_order() -> None:
    matrix = planted(2)
    shown = confusion.most_confused_classes(matrix)
    assert set(BLOCK) <= set(shown) and len(shown) <= confusion.CONFUSED_CLASSES_SHOWN
    order = confusion.confusion_order(matrix)
    assert shown == [label for label in order if label in shown]
    off = matrix * ~np.eye(40, dtype=bool)
    for true, pred in zip(*np.nonzero(off >= 8), strict=True):  # every large cell is shown
        assert true in shown and pred in shown
    assert confusion.most_confused_classes(np.eye(30, dtype=int)) == []


def test_a_pair_is_shown_whole_or_not_at_all() -> None:
    matrix = np.eye(8, dtype=int) * 20
    matrix[6, 2], matrix[0, 5], matrix[2, 6], matrix[1, 6] = 9, 7, 7, 5
    # (6, 2) first; (0, 5) and (2, 6) tie: (0, 5) goes first and does not fit in 3, (2, 6)
    # adds no class, (1, 6) adds class 1.
    assert confusion.most_confused_classes(matrix, count=3) == [1, 2, 6]
    assert confusion.most_confused_classes(matrix, count=2) == [2, 6]
    assert sorted(confusion.most_confused_classes(matrix, count=5)) == [0, 1, 2, 5, 6]
    with pytest.raises(ValueError, match="count must be 2 or more; got 1"):
        confusion.most_confused_classes(matrix, count=1)


def test_listed_pairs_grow_only_with_many_classes() -> None:
    assert confusion.listed_pairs(MANY_CLASSES, 3) == 3
    assert confusion.listed_pairs(MANY_CLASSES + 1, 3) == confusion.CONFUSED_PAIRS_LISTED
    assert confusion.listed_pairs(300, 15) == 15


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.ones((3, 4)), r"must be square \(true × predicted\); got shape \(3, 4\)"),
        (-np.eye(3), "non-negative counts"),
    ],
)
def test_bad_matrices_are_refused(matrix: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        confusion.confusion_order(matrix)
    with pytest.raises(ValueError, match=match):
        confusion.most_confused_classes(matrix)
