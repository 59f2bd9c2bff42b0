"""Galleries of test images: the misclassified grid and the confused-pair galleries."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from reportgen.figures.checks import (
    check_array,
    check_class_labels,
    check_images,
    check_same_length,
)
from reportgen.figures.panels import (
    grid_height,
    image_grid,
    message_figure,
    panel_chars,
    panel_side,
)
from reportgen.figures.style import TITLE_LINE_IN, new_figure, short_names, styled, wrapped_title


@styled
def misclassified_figure(
    images: ArrayLike,
    labels: ArrayLike,
    predictions: ArrayLike,
    confidence: ArrayLike,
    *,
    model: str,
    total: int,
    classes: Sequence[str],
    columns: int = 5,
) -> Figure:
    """Draw a grid of misclassified test images titled "True: t", "Pred: p" and the confidence.

    Parameters
    ----------
    images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The misclassified images, grey or RGB, in the order to show them (the
        pipeline passes the lowest test indices first).
    labels, predictions : array-like of int, shape (n,)
        True and predicted class indices.
    confidence : array-like of float, shape (n,)
        The predicted class's probability.
    model : str
        Model name for the title.
    total : int
        How many test images the model misclassified in all.
    classes : sequence of str
        Class names in index order; a name too long for its panel ends in "…".
    columns : int, default 5
        Panels per row.

    Returns
    -------
    Figure
        The grid, or one sentence when nothing was misclassified.
    """
    pixels = check_images(images, "images")
    true = check_array(labels, "labels", ndim=1)
    pred = check_array(predictions, "predictions", ndim=1)
    prob = check_array(confidence, "confidence", ndim=1)
    check_same_length(images=pixels, labels=true, predictions=pred, confidence=prob)
    check_class_labels(classes, true, "labels")
    check_class_labels(classes, pred, "predictions")
    title = f"{model}: misclassified test images"
    if len(pixels) == 0:
        return message_figure(new_figure(1.2), "no test image was misclassified", title=title)
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    aspect = pixels.shape[1] / pixels.shape[2]
    title = wrapped_title(title, f"(first {len(pixels)} of {total}, lowest test index first)")
    more = TITLE_LINE_IN * title.count("\n")
    fig = new_figure(grid_height(rows, max(columns, 5), title_lines=3, aspect=aspect) + more)
    names = short_names(classes, panel_chars(max(columns, 5), font_size=7.5) - len("True: "))
    titles = [
        f"True: {names[t]}\nPred: {names[p]}\np={c:.2f}"
        for t, p, c in zip(true, pred, prob, strict=True)
    ]
    image_grid(fig, pixels, titles, columns=columns, side=panel_side(max(columns, 5)))
    fig.suptitle(title)
    return fig


PAIR_NAME_CHARS = 24  # a name in the gallery's title


@styled
def pair_figure(
    images: ArrayLike,
    indices: ArrayLike,
    confidence: ArrayLike,
    *,
    model: str,
    true: int,
    pred: int,
    total: int,
    classes: Sequence[str],
    columns: int = 8,
) -> Figure:
    """Draw the gallery of test images of class ``true`` predicted as ``pred``.

    Parameters
    ----------
    images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The pair's images, grey or RGB, lowest test index first.
    indices : array-like of int, shape (n,)
        Their test positions, for the panel titles.
    confidence : array-like of float, shape (n,)
        Probability the model gave ``pred`` for each image.
    model : str
        Model name for the title.
    true, pred : int
        The confused pair, as class indices; the title shows their names.
    total : int
        How many test images of ``true`` were predicted as ``pred`` in all.
    classes : sequence of str
        Class names in index order.
    columns : int, default 8
        Panels per row.

    Returns
    -------
    Figure
        The gallery, or a sentence "no test image of t was predicted as p".
    """
    pixels = check_images(images, "images")
    positions = check_array(indices, "indices", ndim=1)
    prob = check_array(confidence, "confidence", ndim=1)
    check_same_length(images=pixels, indices=positions, confidence=prob)
    check_class_labels(classes, [true, pred], "true and pred")
    names = short_names(classes, PAIR_NAME_CHARS)
    true_name, pred_name = names[true], names[pred]
    parts = (f"{model}: true {true_name}", f"predicted as {pred_name}")
    if len(pixels) == 0:
        message = f"no test image of {true_name} was predicted as {pred_name}"
        return message_figure(new_figure(1.0), message, title=wrapped_title(*parts))
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    aspect = pixels.shape[1] / pixels.shape[2]
    images_word = "image" if total == 1 else "images"
    title = wrapped_title(*parts, f"({total} test {images_word}, {len(pixels)} shown)")
    more = TITLE_LINE_IN * title.count("\n")
    fig = new_figure(grid_height(rows, max(columns, 6), title_lines=2, aspect=aspect) + more)
    titles = [f"#{i}\np={c:.2f}" for i, c in zip(positions, prob, strict=True)]
    image_grid(fig, pixels, titles, columns=columns, side=panel_side(max(columns, 6)))
    fig.suptitle(title)
    return fig
