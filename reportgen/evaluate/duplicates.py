"""Test images that also sit in the training or validation split: exact and near duplicates.

Exact duplicates have the same pixels (the same bytes once decoded): found
by a BLAKE2b digest of each image and confirmed byte for byte.

Near duplicates are found by a perceptual distance that does not depend on
the data set:

1. each image is made grey (the mean of its channels), its background (the
   median pixel) subtracted, and it is translated, with sub-pixel bilinear
   sampling, so that the centroid of its absolute values lands on the centre:
   a copy shifted by a few pixels becomes the same picture again;
2. it is averaged down to :data:`GRID` × :data:`GRID` pixels, made zero-mean and
   scaled to unit norm (so brightness and contrast do not count);
3. the distance of two images is ``1 − cos`` of these vectors, in [0, 2].

A test image is a near duplicate of a training image when that distance is at
most :data:`THRESHOLD` (0.001).  Measured on MNIST (``benchmarks/duplicates.py``
prints the last): a copy shifted by one or two pixels in any direction that
loses no ink over the border is below 1e-6 away (49,133 copies of 5,000
training digits); re-encoded as JPEG at quality 95, 99.4% of copies are within
0.001, at quality 90 94%, brightened by 30 levels 98%; while the nearest of
the 60,000 training digits to each of the 10,000 test digits is never closer
than 0.0016 (three straight "1"s written alike; median 0.055).  An average
hash at a fixed Hamming distance (deepchecks) calls many merely similar MNIST
digits the same; this distance does not.  A copy that loses ink over the
border is a different picture and is found only when the loss is small.

Being centred, grey and contrast-normalised, the comparison sees the same
shape at another place or in another colour as a near duplicate: generated
shapes of one size repeat one another in this sense.

Speed: every test image is compared with every training image in chunks of
float32 matrix products whose memory is bounded.  The products are taken on
the 2 × 2-pooled :data:`COARSE` grid, an orthonormal projection of the fine
vector, so its distance is a lower bound of the fine one: a pair that is far
apart there is far apart, and only the few pairs that are close are measured
exactly (float64) on the fine grid.  Of a test image's matches the nearest is
kept, the lowest position on ties.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.nn import functional

from reportgen.core.errors import DataError

GRID = 16  # side of the aligned, downsampled grey image compared
COARSE = GRID // 2  # its 2 × 2 pooling: the distance there bounds the fine one from below
THRESHOLD = 0.001  # near duplicate: 1 − cosine similarity at most this
METHOD = "aligned-cosine"
# Images per block of the matrix products: a block of similarities is
# TEST_CHUNK × REFERENCE_CHUNK float32 values (16 MiB), whatever the data size.
TEST_CHUNK = 1024
REFERENCE_CHUNK = 4096
FEATURE_PIXELS = 1 << 22  # pixels made into vectors at a time (16 MiB as float32)
# float32 rounding of the coarse products is far below this; the exact test follows.
MARGIN = 1e-4

SplitName = Literal["train", "val"]
Kind = Literal["exact", "near"]


@dataclass(frozen=True)
class Match:
    """One test image's duplicate in one split: where it is, how it was found, how far."""

    test: int  # position in the test split
    split: SplitName
    match: int  # position in that split
    kind: Kind
    distance: float  # 1 − cos of the aligned grids; 0 for an exact duplicate


@dataclass(frozen=True)
class Found:
    """Every test image's duplicates in the training and validation splits."""

    matches: tuple[Match, ...]  # lowest test position first, train before val
    test_size: int

    def count(self, split: SplitName, kind: Kind) -> int:
        """Return how many test images have a duplicate of ``kind`` in ``split``."""
        return sum(1 for m in self.matches if m.split == split and m.kind == kind)

    def in_training(self) -> np.ndarray:
        """Return a bool mask over the test images: those with a duplicate in the training split."""
        mask = np.zeros(self.test_size, dtype=bool)
        mask[[m.test for m in self.matches if m.split == "train"]] = True
        return mask


# --------------------------------------------------------------------------- features


def _grey(images: torch.Tensor) -> torch.Tensor:
    """Return ``[N, C, H, W]`` uint8 images as ``[N, H, W]`` float32 grey (channel mean)."""
    if images.ndim != 4:
        raise DataError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    return images.to(torch.float32).mean(dim=1)


def _pool_matrix(size: int) -> torch.Tensor:
    """Return the ``[GRID, size]`` matrix of adaptive average pooling (PyTorch's bins)."""
    pool = torch.zeros(GRID, size, dtype=torch.float32)
    for cell in range(GRID):
        low, high = (cell * size) // GRID, -((-(cell + 1) * size) // GRID)
        pool[cell, low:high] = 1.0 / (high - low)
    return pool


def _shifted_pool(pool: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Return ``[N, GRID, size]``: pooling after sampling each image at ``p + offset`` (bilinear).

    Sampling at ``p + k + f`` (k whole, f in [0, 1)) reads ``(1 − f)·x[p + k] +
    f·x[p + k + 1]``, zero beyond the border; pooled, column j of the result is
    ``(1 − f)·pool[:, j − k] + f·pool[:, j − k − 1]``.
    """
    size = pool.shape[1]
    whole = torch.floor(offset)
    part = (offset - whole)[:, None, None]
    # pool with size + 1 zero columns on each side, so that every shift reads zeros past it
    padded = torch.cat([torch.zeros(GRID, size + 1), pool, torch.zeros(GRID, size + 1)], dim=1)
    limit = padded.shape[1] - 1
    columns = torch.arange(size)[None, :] - whole.long()[:, None] + size + 1  # [N, size]
    rows = padded.expand(len(offset), GRID, padded.shape[1])
    here = torch.gather(rows, 2, columns.clamp(0, limit)[:, None, :].expand(-1, GRID, -1))
    before = torch.gather(rows, 2, (columns - 1).clamp(0, limit)[:, None, :].expand(-1, GRID, -1))
    return torch.lerp(here, before, part)


def aligned_grid(grey: torch.Tensor) -> torch.Tensor:
    """Return ``[N, GRID, GRID]``: each grey image less its median, translated so its ink's
    centroid is the centre, averaged down to GRID × GRID.

    The ink is the absolute difference from the median pixel (the background,
    light or dark); the translation is sub-pixel (bilinear), and what comes in
    over the border is background (0), so a shifted copy aligns onto its
    original exactly, up to what it lost over the border.  Translation and
    pooling are one linear map per axis, applied as two batched products.
    """
    _, height, width = grey.shape
    centred = grey - grey.flatten(1).median(dim=1).values[:, None, None]
    ink = centred.abs()
    total = ink.sum(dim=(1, 2))
    safe = torch.where(total > 0, total, torch.ones_like(total))
    rows = (ink.sum(dim=2) * torch.arange(height, dtype=torch.float32)).sum(dim=1) / safe
    cols = (ink.sum(dim=1) * torch.arange(width, dtype=torch.float32)).sum(dim=1) / safe
    # Output pixel p samples the input at p + (centroid − centre); a blank image stays put.
    dy = torch.where(total > 0, rows - (height - 1) / 2, torch.zeros_like(rows))
    dx = torch.where(total > 0, cols - (width - 1) / 2, torch.zeros_like(cols))
    down = _shifted_pool(_pool_matrix(height), dy)  # [N, GRID, H]
    across = _shifted_pool(_pool_matrix(width), dx)  # [N, GRID, W]
    return torch.bmm(torch.bmm(down, centred), across.transpose(1, 2))


def features(images: torch.Tensor) -> torch.Tensor:
    """Return each image's unit vector ``[N, GRID²]`` float32 (zeros for a constant image).

    ``images`` is ``uint8 [N, C, H, W]``; see the module's description for the steps.
    """
    out = torch.zeros(len(images), GRID * GRID, dtype=torch.float32)
    chunk = max(1, FEATURE_PIXELS // max(1, images[0, 0].numel() if len(images) else 1))
    for start in range(0, len(images), chunk):
        small = aligned_grid(_grey(images[start : start + chunk].cpu())).flatten(1)
        small = small - small.mean(dim=1, keepdim=True)
        norm = small.norm(dim=1, keepdim=True)
        # A constant image has no shape to compare: it stays the zero vector, never near.
        unit = torch.where(norm > 1e-6, small / norm.clamp_min(1e-6), torch.zeros_like(small))
        out[start : start + len(small)] = unit
    return out


def coarse(vectors: torch.Tensor) -> torch.Tensor:
    """Return the 2 × 2 sums / 2 of ``[N, GRID²]`` vectors, ``[N, COARSE²]``: a projection.

    Each coarse value is (a + b + c + d) / 2 of four disjoint fine values, a
    row of norm 1, so ``‖coarse(u) − coarse(v)‖ ≤ ‖u − v‖``.
    """
    grid = vectors.view(-1, 1, GRID, GRID)
    return (functional.avg_pool2d(grid, 2) * 2).flatten(1)


def distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return ``1 − cos`` of paired unit vectors (rows), in float64, clipped to [0, 2]."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    return np.clip(1.0 - np.einsum("ij,ij->i", a, b), 0.0, 2.0)


# --------------------------------------------------------------------------- matching


def exact_matches(test: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Return, per test image, the lowest position of an identical reference image, or -1.

    Both are ``uint8 [N, C, H, W]`` of one image shape.
    """
    first_of: dict[bytes, int] = {}
    ref = reference.cpu().contiguous().numpy().reshape(len(reference), -1)
    for position in range(len(ref) - 1, -1, -1):  # the lowest position is written last
        first_of[hashlib.blake2b(ref[position].tobytes(), digest_size=16).digest()] = position
    found = np.full(len(test), -1, dtype=np.int64)
    pixels = test.cpu().contiguous().numpy().reshape(len(test), -1)
    for position, row in enumerate(pixels):
        hit = first_of.get(hashlib.blake2b(row.tobytes(), digest_size=16).digest())
        if hit is not None and np.array_equal(ref[hit], row):
            found[position] = hit
    return found


def _augmented(projected: torch.Tensor, *, test: bool) -> torch.Tensor:
    """Return coarse vectors with two columns so that one product gives −‖a − b‖² / 2.

    Test rows are ``[c, −‖c‖²/2, 1]``, reference rows ``[c, 1, −‖c‖²/2]``.
    """
    half = -(projected * projected).sum(dim=1, keepdim=True) / 2
    ones = torch.ones_like(half)
    parts = [projected, half, ones] if test else [projected, ones, half]
    return torch.cat(parts, dim=1).contiguous()


def _spread_direction(vectors: torch.Tensor) -> torch.Tensor:
    """Return the unit direction along which ``vectors`` spread most (their first principal axis).

    Any unit direction gives a correct search; this one skips the most pairs.
    """
    data = vectors.to(torch.float64)
    centred = data - data.mean(dim=0)
    _, axes = torch.linalg.eigh(centred.T @ centred)
    return axes[:, -1].to(torch.float32)


def _candidates(
    test_coarse: torch.Tensor, ref_coarse: torch.Tensor, *, threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (test, reference) row arrays of every pair whose coarse bound is within reach.

    ``‖a − b‖² / 2 ≤ threshold`` on the coarse grid is necessary for a fine
    distance ``‖u − v‖² / 2 = 1 − cos`` of at most ``threshold``, and so is
    ``|p·a − p·b| ≤ √(2·threshold)`` for any unit direction p: with both sides
    sorted along p, each block of test images is compared only with the
    reference images in its window.
    """
    cut = threshold + MARGIN
    reach = float(np.sqrt(2 * cut)) + MARGIN
    direction = _spread_direction(ref_coarse)
    test_along, ref_along = test_coarse @ direction, ref_coarse @ direction
    test_order = torch.argsort(test_along, stable=True)
    ref_order = torch.argsort(ref_along, stable=True)
    ref_sorted = ref_along[ref_order].numpy()
    test_aug = _augmented(test_coarse[test_order], test=True)
    ref_aug = _augmented(ref_coarse[ref_order], test=False)
    test_sorted = test_along[test_order]
    for t0 in range(0, len(test_aug), TEST_CHUNK):
        block = test_aug[t0 : t0 + TEST_CHUNK]
        span = test_sorted[t0 : t0 + TEST_CHUNK]
        low = int(np.searchsorted(ref_sorted, float(span[0]) - reach, side="left"))
        high = int(np.searchsorted(ref_sorted, float(span[-1]) + reach, side="right"))
        for r0 in range(low, high, REFERENCE_CHUNK):
            values = block @ ref_aug[r0 : min(high, r0 + REFERENCE_CHUNK)].T
            close = (values >= -cut).nonzero().numpy()
            if len(close):
                yield (test_order[close[:, 0] + t0].numpy(),
                       ref_order[close[:, 1] + r0].numpy())  # fmt: skip


def near_matches(
    test_vectors: torch.Tensor, ref_vectors: torch.Tensor, *, threshold: float = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per test image, its nearest reference image within ``threshold`` (-1: none)
    and that distance (NaN: none); ties go to the lowest reference position.

    Vectors are :func:`features` rows; a constant image (the zero vector) is never near.
    """
    best = np.full(len(test_vectors), -1, dtype=np.int64)
    best_distance = np.full(len(test_vectors), np.nan)
    test_rows = (test_vectors.abs().sum(dim=1) > 0).nonzero()[:, 0]
    ref_rows = (ref_vectors.abs().sum(dim=1) > 0).nonzero()[:, 0]
    if len(test_rows) == 0 or len(ref_rows) == 0:
        return best, best_distance
    fine_test, fine_ref = test_vectors[test_rows].numpy(), ref_vectors[ref_rows].numpy()
    pairs = list(_candidates(coarse(test_vectors[test_rows]), coarse(ref_vectors[ref_rows]),
                             threshold=threshold))  # fmt: skip
    if not pairs:
        return best, best_distance
    rows = np.concatenate([r for r, _ in pairs])
    cols = np.concatenate([c for _, c in pairs])
    exact = distance(fine_test[rows], fine_ref[cols])
    keep = exact <= threshold
    rows, cols, exact = rows[keep], cols[keep], exact[keep]
    # Per test image the nearest, then the lowest reference position: the first after sorting.
    order = np.lexsort((cols, exact, rows))
    rows, cols, exact = rows[order], cols[order], exact[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    best[test_rows.numpy()[rows[first]]] = ref_rows.numpy()[cols[first]]
    best_distance[test_rows.numpy()[rows[first]]] = exact[first]
    return best, best_distance


def find_duplicates(
    test: torch.Tensor,
    splits: dict[SplitName, torch.Tensor],
    *,
    threshold: float = THRESHOLD,
) -> Found:
    """Return every test image's exact and near duplicates in each of ``splits``.

    Images are ``uint8 [N, C, H, W]``, one shape for all.  A test image with
    an identical image in a split is an exact duplicate there (the lowest such
    position); one without, whose nearest image of the split is within
    ``threshold``, a near duplicate.
    """
    test_vectors = features(test)
    matches: list[Match] = []
    for split, images in splits.items():
        if len(images) == 0:
            continue
        if tuple(images.shape[1:]) != tuple(test.shape[1:]):
            raise DataError(
                f"{split} images are {tuple(images.shape[1:])}, test images "
                f"{tuple(test.shape[1:])}: duplicates need one image shape"
            )
        same = exact_matches(test, images)
        nearest, how_far = near_matches(test_vectors, features(images), threshold=threshold)
        for position in range(len(test)):
            if same[position] >= 0:
                matches.append(Match(position, split, int(same[position]), "exact", 0.0))
            elif nearest[position] >= 0:
                matches.append(Match(position, split, int(nearest[position]), "near",
                                     float(how_far[position])))  # fmt: skip
    order = {"train": 0, "val": 1}
    matches.sort(key=lambda m: (m.test, order[m.split]))
    return Found(tuple(matches), test_size=len(test))
