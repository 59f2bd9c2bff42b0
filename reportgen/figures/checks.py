"""Input checks of the drawing functions: one line naming the argument and what it must be."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def check_array(value: ArrayLike, name: str, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {dims}; got shape {array.shape}")
    return array


def check_same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"{', '.join(lengths)} must have the same length; got {listed}")


def check_images(value: ArrayLike, name: str, *, one: bool = False) -> np.ndarray:
    """Return uint8 pixels ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB) of any size.

    With ``one``, a single image: ``[H, W]`` or ``[H, W, 3]``.
    """
    pixels = np.asarray(value)
    grey = 2 if one else 3  # dimensions of grey pixels; RGB adds the channel last
    if pixels.dtype != np.uint8 or not (
        pixels.ndim == grey or (pixels.ndim == grey + 1 and pixels.shape[-1] == 3)
    ):
        axes = "H, W" if one else "N, H, W"
        raise ValueError(
            f"{name} must be uint8 pixels [{axes}] (grey) or [{axes}, 3] (RGB); "
            f"got {pixels.dtype} of shape {pixels.shape}"
        )
    return pixels


def check_class_labels(classes: Sequence[str], labels: ArrayLike, name: str) -> np.ndarray:
    """Return ``labels`` as int indices after checking each names a class of ``classes``."""
    values = np.asarray(labels, dtype=np.int64).reshape(-1)
    bad = sorted({int(v) for v in values if not 0 <= v < len(classes)})
    if bad:
        raise ValueError(
            f"{name} {bad} are not classes: there are {len(classes)} class names "
            f"(indices 0–{len(classes) - 1})"
        )
    return values


def check_class_count(classes: Sequence[str], count: int, what: str) -> None:
    if len(classes) != count:
        raise ValueError(f"classes has {len(classes)} names for {what} of {count} classes")


def require_columns(history: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks column(s) {', '.join(missing)}; needs {', '.join(columns)}"
        )


NO_EPOCH = "no epoch completed (training diverged in its first epoch)"
