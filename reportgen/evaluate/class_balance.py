"""Images per class in each split, and the classes a split holds too few of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Scarce:
    """A class with fewer images in a split than ``share`` of the split's mean per class."""

    split: str
    label: int
    images: int
    mean: float


def class_counts(labels: ArrayLike, *, num_classes: int) -> list[int]:
    """Return the images of each class, class 0 first (0 for a class without any)."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}]")
    return np.bincount(y, minlength=num_classes).astype(int).tolist()


def under_represented(counts: Mapping[str, list[int]], *, share: float) -> list[Scarce]:
    """Return each split's classes with fewer images than ``share`` × its mean per class.

    Split by split in the order given, fewest images first, then the lowest
    class; an empty split has none.
    """
    found = []
    for split, row in counts.items():
        per_class = np.asarray(row, dtype=np.int64)
        if per_class.sum() == 0:
            continue
        mean = float(per_class.mean())
        scarce = np.flatnonzero(per_class < share * mean)
        for label in sorted(scarce.tolist(), key=lambda c: (int(per_class[c]), c)):
            found.append(Scarce(split, int(label), int(per_class[label]), mean))
    return found
