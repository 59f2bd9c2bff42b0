"""A confusion matrix of many classes: an order that puts confused classes together, and
the classes of its most confused pairs.

Above :data:`~reportgen.artifacts.catalogue.MANY_CLASSES` classes a matrix in
index order scatters its errors over the whole square; these pure functions
decide what the figures show instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.cluster.hierarchy import linkage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from reportgen.artifacts.catalogue import MANY_CLASSES

CONFUSED_CLASSES_SHOWN = 15  # classes of the readable sub-matrix: names and counts fit
CONFUSED_PAIRS_LISTED = 10  # confused pairs the report lists when there are many classes


def _counts(matrix: ArrayLike) -> np.ndarray:
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (true × predicted); got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("matrix must hold non-negative counts")
    return counts.astype(np.float64)


def confusion_similarity(matrix: ArrayLike) -> np.ndarray:
    """Return how much each two classes are confused: symmetrised off-diagonal rates.

    Cell ``[i, j]`` is the share of class ``i``'s images predicted as ``j``
    plus the share of ``j``'s predicted as ``i``; the diagonal is zero.
    Rates, not counts, so that a large class does not outweigh a small one.
    """
    counts = _counts(matrix)
    support = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
    similarity = rates + rates.T
    np.fill_diagonal(similarity, 0.0)
    return similarity


def _tree_order(similarity: np.ndarray, members: np.ndarray) -> list[int]:
    """Return ``members`` (one connected group) in the leaf order of an average-linkage tree.

    The two branches of every merge go in the order of their lowest class
    index, so the order depends on the tree alone, never on how SciPy lists a
    merge's two sides.
    """
    if len(members) <= 2:
        return [int(m) for m in members]
    distance = similarity.max() - similarity  # 0: the most confused pair of the group
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    leaves: list[list[int]] = [[int(m)] for m in members]
    for left, right, _, _ in tree:
        first, second = leaves[int(left)], leaves[int(right)]
        if min(second) < min(first):
            first, second = second, first
        leaves.append(first + second)
    return leaves[-1]


def confusion_order(matrix: ArrayLike) -> list[int]:
    """Return the classes in an order that puts classes confused with each other side by side.

    Deterministic: the same matrix gives the same order.  Classes that are
    confused, directly or through others, form groups (the connected
    components of the symmetrised off-diagonal confusion); each group is
    ordered by average-linkage clustering of :func:`confusion_similarity`, so
    a set of classes mistaken for one another stays together; groups come
    most confused first (ties: lowest class index), and classes never
    confused with any other end the order, by index.
    """
    similarity = confusion_similarity(matrix)
    count, group_of = connected_components(csr_matrix(similarity > 0), directed=False)
    groups = [np.flatnonzero(group_of == group) for group in range(count)]
    alone = sorted(int(group[0]) for group in groups if len(group) == 1)
    confused = [group for group in groups if len(group) > 1]
    confused.sort(key=lambda group: (-similarity[np.ix_(group, group)].sum(), int(group[0])))
    order = []
    for group in confused:
        order += _tree_order(similarity[np.ix_(group, group)], group)
    return order + alone


def most_confused_classes(matrix: ArrayLike, *, count: int = CONFUSED_CLASSES_SHOWN) -> list[int]:
    """Return up to ``count`` classes of the largest off-diagonal cells, in confusion order.

    Classes are taken pair by pair, largest count first (ties: lowest true,
    then predicted class), each pair whole while it fits in ``count``; they
    are returned in the order of :func:`confusion_order`, so that a
    sub-matrix of them reads like the full one.  Empty when nothing is
    confused.
    """
    if count < 2:
        raise ValueError(f"count must be 2 or more; got {count}")
    counts = _counts(matrix)
    off = counts.copy()
    np.fill_diagonal(off, 0.0)
    true, pred = np.nonzero(off)
    cells = sorted(zip(-off[true, pred], true.tolist(), pred.tolist(), strict=True))
    chosen: set[int] = set()
    for _, t, p in cells:
        if len(chosen | {t, p}) <= count:  # a pair is shown whole, or not at all
            chosen |= {t, p}
    return [label for label in confusion_order(counts) if label in chosen]


def listed_pairs(num_classes: int, auto_pairs: int) -> int:
    """Return how many confused pairs ``metrics.json`` lists: ``report.auto_pairs``, and at
    least :data:`CONFUSED_PAIRS_LISTED` above :data:`MANY_CLASSES` classes."""
    if num_classes > MANY_CLASSES:
        return max(auto_pairs, CONFUSED_PAIRS_LISTED)
    return auto_pairs
