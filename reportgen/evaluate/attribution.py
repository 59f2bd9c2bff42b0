"""Why 4 and not 9?  Integrated Gradients on the images a report shows.

For each misclassified image in the report's grid and galleries, Captum's
Integrated Gradients (Sundararajan et al. 2017) attributes two scores to
the pixels: the logit of the class the model predicted, and the logit of
the true class.  The path starts at a fixed baseline, the all-black image
as the model sees it (pixel 0, normalised), and the integral is taken with
a fixed number of steps, so the maps are deterministic; the attributions of
each map add up to the logit at the image minus the logit at the baseline
(completeness).  With a black baseline, black pixels get no attribution:
the maps show what the ink argues for, never a stroke that is missing.

The cost grows with the pixels, the steps and the images, so images larger
than 28 × 28 get fewer of the latter two (:func:`plan`): a 128-pixel
image costs about twenty times what a 28-pixel one does.

Works for any ``nn.Module`` that takes the model input tensor and returns
logits.  Nothing here knows the data's layout beyond ``image_shape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from reportgen.config.schema import ReportSection
from reportgen.evaluate import classification

# An attribution figure shows at most this many images of a grid or gallery
# (two image–map triples a row): enough to see a pattern, and a PDF page high.
MAX_IMAGES = 12
DEFAULT_STEPS = 50  # Captum's default: completeness holds to a few thousandths of a logit
# Rows (images × steps) per forward pass: bounds the memory whatever the model.
INTERNAL_BATCH_SIZE = 500
# The size the defaults are made for (MNIST): up to it, the steps and images are the
# configured ones; above it, their product shrinks as the pixels grow (see plan).
REFERENCE_PIXELS = 28 * 28
MIN_IMAGES = 3  # one row of image–map triples: images are cut to this before the steps
MIN_STEPS = 8  # below this the maps of a ReLU network lose completeness quickly
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "centre", "right")


@dataclass(frozen=True)
class AttributionPlan:
    """How many path steps and images per figure the attributions use at one image size."""

    steps: int
    images: int  # the first this many images of each grid and gallery

    @property
    def reduced(self) -> bool:
        """Return whether fewer images than ``MAX_IMAGES`` are attributed."""
        return self.images < MAX_IMAGES


def plan(steps: int, image_shape: Sequence[int]) -> AttributionPlan:
    """Return the steps and images per figure for ``steps`` configured and ``[C, H, W]`` images.

    A figure's cost is about images × steps × pixels (H × W).  Up to
    28 × 28 pixels it is what is configured: ``steps`` and ``MAX_IMAGES``
    images.  Above, the images × steps of a figure may be at most
    ``MAX_IMAGES × steps × 784 / (H × W)``, the cost of a 28 × 28 figure:
    the images go down first, to ``MIN_IMAGES``; then the steps, to
    ``MIN_STEPS`` (or ``steps``, if fewer); then the images again, to one.
    Whatever is left of the allowance goes to the steps, never above
    ``steps``.  Integer arithmetic only, so the plan is the same everywhere.
    """
    pixels = int(image_shape[-2]) * int(image_shape[-1])
    if pixels <= REFERENCE_PIXELS:
        return AttributionPlan(steps=steps, images=MAX_IMAGES)
    allowed = MAX_IMAGES * steps * REFERENCE_PIXELS  # image-steps of a figure, times pixels
    floor_steps = min(steps, MIN_STEPS)
    images = max(MIN_IMAGES, min(MAX_IMAGES, allowed // (steps * pixels)))
    if images * floor_steps * pixels > allowed:
        images = max(1, allowed // (floor_steps * pixels))
    return AttributionPlan(
        steps=max(floor_steps, min(steps, allowed // (images * pixels))), images=images
    )


def pass_rows(eval_batch: int | None) -> int:
    """Return the path points (images × steps) one forward and backward pass may hold.

    ``INTERNAL_BATCH_SIZE``, or half of ``eval_batch``, the images an
    evaluation batch holds within the memory budget, when that is fewer: a
    pass keeps its activations for the backward pass and adds their gradients.
    """
    if eval_batch is None:
        return INTERNAL_BATCH_SIZE
    return max(1, min(INTERNAL_BATCH_SIZE, eval_batch // 2))


@dataclass(frozen=True)
class AttributionMaps:
    """Attribution maps of test images toward their predicted and their true class."""

    steps: int
    indices: np.ndarray  # [N] int64 test positions, ascending
    predicted: np.ndarray  # [N] int64 the class the model chose
    true: np.ndarray  # [N] int64
    toward_predicted: np.ndarray  # [N, H, W] float64, summed over channels
    toward_true: np.ndarray  # [N, H, W] float64
    images: int = MAX_IMAGES  # the first this many images of each grid and gallery

    def select(self, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the maps (toward predicted, toward true) of the given test positions."""
        lookup = {int(index): row for row, index in enumerate(self.indices)}
        missing = [int(p) for p in positions if int(p) not in lookup]
        if missing:  # a bug: the pipeline attributes every image it shows
            raise KeyError(f"no attribution for test images {missing}")
        rows = np.asarray([lookup[int(p)] for p in positions], dtype=np.int64)
        return self.toward_predicted[rows], self.toward_true[rows]


def shown_indices(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    report: ReportSection,
    *,
    num_classes: int,
    pairs: Sequence[tuple[int, int]],
    limit: int = MAX_IMAGES,
) -> np.ndarray:
    """Return the test positions a report shows as misclassified: its grid and its galleries.

    The same functions choose them as the ones that build ``metrics.json``,
    so every image of an attribution figure has its maps; ``pairs`` are the
    configured confused pairs as class indices, ``limit`` the images of each
    grid or gallery that are attributed (:func:`attributed`).
    """
    grid = classification.misclassified_indices(y_true, y_pred, limit=report.n_misclassified)
    galleries = classification.pair_galleries(
        classification.confusion(y_true, y_pred, num_classes=num_classes), y_true, y_pred,
        configured=pairs, auto=report.auto_pairs,
        limit=report.n_pair_examples, figure=lambda true, pred: "",
    )  # fmt: skip
    chosen = set(attributed(grid, limit)).union(*(attributed(g.indices, limit) for g in galleries))
    return np.asarray(sorted(chosen), dtype=np.int64)


def attributed(indices: Sequence[int], limit: int = MAX_IMAGES) -> list[int]:
    """Return the images of a grid or gallery that its attribution figure shows: the first few."""
    return [int(i) for i in indices[:limit]]


def black_baseline(
    inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Return the all-black image as the model sees it: ``(0 − mean) / std`` per channel.

    ``inputs`` is ``[N, C, H, W]`` or flattened ``[N, C·H·W]`` (channel
    first); the baseline is one image, ``[1, …]``, that broadcasts over them.
    """
    black = -torch.tensor(mean, dtype=inputs.dtype) / torch.tensor(std, dtype=inputs.dtype)
    channels = black.numel()
    if inputs.ndim == 4:
        return black.view(1, channels, 1, 1).expand(1, *inputs.shape[1:]).to(inputs.device)
    if inputs.ndim == 2 and inputs.shape[1] % channels == 0:
        per_channel = inputs.shape[1] // channels
        return black.repeat_interleave(per_channel).view(1, -1).to(inputs.device)
    raise ValueError(
        f"inputs must be [N, C, H, W] or [N, C·H·W] with {channels} channel(s); "
        f"got shape {tuple(inputs.shape)}"
    )


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: ArrayLike,
    *,
    baseline: torch.Tensor,
    steps: int = DEFAULT_STEPS,
    internal_batch_size: int = INTERNAL_BATCH_SIZE,
) -> np.ndarray:
    """Return Integrated Gradients of each input's ``target`` logit, shaped like ``inputs``.

    Parameters
    ----------
    model : nn.Module
        Any network taking ``inputs`` and returning logits ``[N, classes]``;
        it is switched to eval mode.
    inputs : Tensor
        The images as the model takes them.
    targets : array-like of int, shape (N,)
        The class whose logit is attributed, per image.
    baseline : Tensor
        The path's start, broadcastable to ``inputs``.
    steps : int, default 50
        Gauss–Legendre points of the path integral.
    internal_batch_size : int, default 500
        Rows (images × steps) per forward pass: images are attributed
        ``internal_batch_size // steps`` (at least one) at a time.

    Returns
    -------
    ndarray of float64
        Attributions with ``inputs``' shape; each image's sum is close to its
        logit minus the baseline's.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2; got {steps}")
    goal = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=inputs.device)
    if goal.shape != (inputs.shape[0],):
        raise ValueError(f"targets must be [{inputs.shape[0]}]; got {tuple(goal.shape)}")
    # Imported here: Captum takes a third of a second to import, and only this needs it.
    from captum.attr import IntegratedGradients

    model.eval()
    explainer = IntegratedGradients(model)
    per_call = max(1, internal_batch_size // steps)
    chunks = []
    for start in range(0, inputs.shape[0], per_call):
        part = inputs[start : start + per_call]
        attributed = explainer.attribute(
            part, baselines=baseline.expand_as(part), target=goal[start : start + per_call],
            n_steps=steps, internal_batch_size=len(part) * steps,
        )  # fmt: skip
        chunks.append(attributed.detach().to("cpu", torch.float64))
    if not chunks:
        return np.zeros(tuple(inputs.shape), dtype=np.float64)
    return torch.cat(chunks).numpy()


def to_maps(attributions: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Return ``[N, H, W]`` maps: attributions reshaped to ``[N, C, H, W]`` and summed over C."""
    channels, height, width = image_shape
    return attributions.reshape(len(attributions), channels, height, width).sum(axis=1)


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    indices: np.ndarray,
    predicted: np.ndarray,
    true: np.ndarray,
    image_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    steps: int = DEFAULT_STEPS,
    images: int = MAX_IMAGES,
    internal_batch_size: int = INTERNAL_BATCH_SIZE,
) -> AttributionMaps:
    """Return maps toward the predicted and the true class for the images ``inputs``.

    ``indices`` are the images' test positions, ``predicted`` and ``true``
    their classes; ``image_shape`` is ``[C, H, W]`` and ``mean``/``std``
    the normalisation, which define the black baseline.  ``images`` is
    recorded: the images of each grid and gallery the maps were made for
    (:func:`plan`); ``internal_batch_size`` bounds the rows of one pass.
    """
    baseline = black_baseline(inputs, mean, std)
    toward_predicted, toward_true = (
        to_maps(integrated_gradients(model, inputs, target, baseline=baseline, steps=steps,
                                     internal_batch_size=internal_batch_size),
                image_shape)
        for target in (predicted, true)
    )  # fmt: skip
    return AttributionMaps(
        steps,
        np.asarray(indices, dtype=np.int64),
        np.asarray(predicted, dtype=np.int64),
        np.asarray(true, dtype=np.int64),
        toward_predicted,
        toward_true,
        images=images,
    )


def region_name(row: int, column: int) -> str:
    """Return the name of one cell of a 3 × 3 grid over the image, e.g. "top left", "centre"."""
    if row == 1 and column == 1:
        return "centre"
    return f"{ROWS[row]} {COLUMNS[column]}"


def evidence_region(
    toward_predicted: ArrayLike, toward_true: ArrayLike
) -> tuple[str | None, float]:
    """Return where the evidence for the predicted over the true class lies, and its share.

    That evidence is the positive part of ``toward_predicted − toward_true``
    (Integrated Gradients is linear in the attributed score, so this is the
    attribution of the margin between the two logits).  The image is cut
    into a 3 × 3 grid; the result is the cell holding the largest share of
    that evidence, or ``(None, 0.0)`` when there is none.
    """
    margin = np.asarray(toward_predicted, dtype=np.float64) - np.asarray(toward_true, np.float64)
    if margin.ndim != 2:
        raise ValueError(f"maps must be [H, W]; got shape {margin.shape}")
    evidence = np.maximum(margin, 0.0)
    total = float(evidence.sum())
    if total <= 0.0:
        return None, 0.0
    cells = np.array(
        [[part.sum() for part in np.array_split(band, 3, axis=1)]
         for band in np.array_split(evidence, 3, axis=0)]
    )  # fmt: skip
    row, column = np.unravel_index(int(np.argmax(cells)), cells.shape)
    return region_name(int(row), int(column)), float(cells[row, column] / total)
