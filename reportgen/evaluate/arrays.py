"""The checks every statistics function makes of its arrays: one line naming what is wrong.

Each returns the array as the computation wants it (int64 labels, bool
correctness, float64 scores), so a function checks and converts in one call.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def correctness(value: ArrayLike, name: str) -> np.ndarray:
    """Return ``value`` as a non-empty 1-D bool array (one entry per test image)."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per test image); got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: need at least one test image")
    if array.dtype != np.bool_:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans (or 0/1); got values outside {{0, 1}}")
        array = array.astype(bool)
    return array


def values(value: ArrayLike, name: str) -> np.ndarray:
    """Return ``value`` as a non-empty 1-D float64 array of finite numbers (one per seed)."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (one value per seed)")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers")
    return array


def scores(value: ArrayLike, name: str) -> np.ndarray:
    """Return ``value`` as float64 ``[N ≥ 1, classes ≥ 2]`` finite scores: logits, probabilities."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] < 2:
        raise ValueError(f"{name} must be [N ≥ 1, classes ≥ 2]; got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def labels(value: ArrayLike, name: str, *, classes: int, rows: int | None = None) -> np.ndarray:
    """Return ``value`` as non-empty 1-D int64 classes in ``0 … classes - 1``.

    With ``rows``, there must be exactly one label per row of a score matrix.
    """
    array = np.asarray(value)
    if rows is not None and array.shape != (rows,):
        raise ValueError(f"{name} must be [{rows}] (one per row); got shape {array.shape}")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of classes; got {array.shape}")
    if array.min() < 0 or array.max() >= classes:
        raise ValueError(f"{name} must hold classes 0–{classes - 1}")
    return array.astype(np.int64)


def same_length(first: np.ndarray, second: np.ndarray, names: tuple[str, str], what: str) -> None:
    """Refuse two paired arrays of different lengths; ``what`` says what pairs them."""
    if first.shape != second.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same length ({what}); "
            f"got {first.size} and {second.size}"
        )


def level(value: float) -> None:
    """Refuse a coverage outside (0, 1)."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {value!r}")
