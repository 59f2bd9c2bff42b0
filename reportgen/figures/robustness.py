"""Robustness figures: accuracy against severity per corruption, and one image under each."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike

from reportgen.figures.checks import check_images
from reportgen.figures.panels import image_grid, panel_side
from reportgen.figures.style import WIDTH_IN, line_style, new_figure, plain, styled

PANELS_PER_ROW = 5
IMAGE_COLUMNS = 6  # panels per row of the example: two rows of six for 11 images


@styled
def robustness_figure(
    curves: Mapping[str, Mapping[str, Sequence[tuple[float, float, float]]]],
    *,
    severities: Sequence[int],
    titles: Mapping[str, str],
    images: int,
) -> Figure:
    """Draw one small panel per corruption: each model's accuracy against severity.

    Parameters
    ----------
    curves : mapping
        Model → corruption → ``(accuracy, low, high)`` per severity of
        ``severities`` (severity 0, the clean images, first).
    severities : sequence of int
        The x values: 0, then the severities measured.
    titles : mapping
        Corruption → its title over the panel.
    images : int
        Test images each accuracy is measured on (in the figure's title).
    """
    models = list(curves)
    if not models:
        raise ValueError("curves must hold at least one model")
    corruptions = list(curves[models[0]])
    for model in models:
        if list(curves[model]) != corruptions:
            raise ValueError(f"curves[{model!r}] must hold the same corruptions as the others")
        for name, points in curves[model].items():
            if len(points) != len(severities):
                raise ValueError(
                    f"curves[{model!r}][{name!r}] has {len(points)} points for "
                    f"{len(severities)} severities"
                )
    columns = min(PANELS_PER_ROW, len(corruptions))
    rows = math.ceil(len(corruptions) / columns)
    fig = new_figure(0.75 + 1.45 * rows)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    lowest = min(low for model in models for pts in curves[model].values() for _, low, _ in pts)
    x = np.asarray(severities)
    for position, ax in enumerate(axes.flat):
        if position >= len(corruptions):
            ax.set_visible(False)
            continue
        name = corruptions[position]
        for order, model in enumerate(models):
            values = np.asarray(curves[model][name], dtype=np.float64)  # [S, 3]
            style = line_style(order)
            ax.fill_between(x, values[:, 1], values[:, 2], color=style["color"], alpha=0.18,
                            linewidth=0)  # fmt: skip
            ax.plot(x, values[:, 0], **style, linewidth=1.2, markersize=3)
        ax.set_title(plain(titles.get(name, name)), fontsize=8)
        ax.set_xticks(x)
        ax.tick_params(labelsize=6.5)
    for ax in axes[-1]:
        ax.set_xlabel("severity", fontsize=7.5)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=7.5)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes[0, 0].set_ylim(max(0.0, lowest - 0.03), 1.005)
    handles = [Line2D([], [], label=plain(m), linewidth=1.2, markersize=3, **line_style(i))
               for i, m in enumerate(models)]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=len(models))
    fig.suptitle(f"Accuracy under corruption ({images:,} test images; bands: bootstrap intervals)")
    return fig


@styled
def corruptions_figure(
    images: ArrayLike,
    titles: Sequence[str],
    *,
    index: int,
    severity: int,
) -> Figure:
    """Draw one test image clean, then under each corruption, at one severity.

    Parameters
    ----------
    images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The clean image first, then the corrupted ones.
    titles : sequence of str
        One per image.
    index : int
        The test image's position (in the title).
    severity : int
        The severity shown (in the title).
    """
    pixels = check_images(images, "images")
    if len(titles) != len(pixels):
        raise ValueError(f"{len(titles)} titles for {len(pixels)} images")
    columns = min(IMAGE_COLUMNS, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    height, width = pixels.shape[1:3]
    side = (WIDTH_IN - 0.2) / columns - 0.15
    fig = new_figure(0.45 + rows * (side * height / width + 0.3))
    image_grid(fig, pixels, [plain(title) for title in titles], columns=columns,
               side=panel_side(max(columns, IMAGE_COLUMNS)))  # fmt: skip
    fig.suptitle(f"Test image {index:,} under each corruption at severity {severity}")
    return fig
