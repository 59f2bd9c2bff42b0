"""Pieces several figures share: image grids, a sentence instead of a chart, loss/accuracy axes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator, PercentFormatter

from reportgen.figures.style import CHAR_WIDTH_EM, DIGIT_CMAP, WIDTH_IN, new_figure, styled


def image_axes(ax: Axes) -> None:
    """Frame an image panel thinly, with no axis: hidden axes are also the cheapest to lay out."""
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.5)
        spine.set_color("#999999")


def grid_height(
    rows: int, columns: int, *, title_lines: int, reserve: float = 0.0, aspect: float = 1.0
) -> float:
    """Return the figure height (in) that fits ``rows`` of panels without blank bands.

    ``reserve`` is the width (in) taken beside the grid, e.g. by a colour bar;
    ``aspect`` is a panel's height over its width (the images' H / W).
    """
    side = (WIDTH_IN - 0.1 - reserve) / columns - 0.1
    return 0.33 + rows * (side * aspect + 0.04 + 0.14 * title_lines)


def panel_chars(columns: int, *, font_size: float, reserve: float = 0.0) -> int:
    """Return about how many characters of ``font_size`` fit on one line above a grid panel."""
    side_pt = ((WIDTH_IN - 0.1 - reserve) / columns - 0.1) * 72
    return int(side_pt / (CHAR_WIDTH_EM * font_size))


def draw_image(ax: Axes, image: np.ndarray, *, cmap: str, limits: tuple[float, float]) -> AxesImage:
    """Draw one image: a 2-D one on ``cmap`` within ``limits``, an RGB one ``[H, W, 3]`` as is."""
    if image.ndim == 3:
        return ax.imshow(image)
    return ax.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])


def image_grid(
    fig: Figure | SubFigure,
    images: np.ndarray,
    titles: Sequence[str],
    *,
    columns: int,
    cmap: str = DIGIT_CMAP,
    limits: tuple[float, float] = (0, 255),
    title_size: float = 7.5,
) -> tuple[AxesImage, np.ndarray]:
    """Draw ``images`` in rows of ``columns`` panels on one colour scale; return one image, axes.

    Grey images ``[n, H, W]`` use ``cmap`` and ``limits``; RGB ``[n, H, W, 3]`` are drawn as is.
    """
    rows = math.ceil(len(images) / columns)
    axes = fig.subplots(rows, columns, squeeze=False)
    drawn = []
    for position, ax in enumerate(axes.flat):
        if position < len(images):
            drawn.append(draw_image(ax, images[position], cmap=cmap, limits=limits))
            ax.set_title(titles[position], fontsize=title_size)
            image_axes(ax)
        else:
            ax.set_visible(False)
    return drawn[0], axes


def message_figure(fig: Figure, message: str, *, title: str) -> Figure:
    """Fill ``fig`` with one centred sentence instead of an empty chart."""
    ax = fig.add_subplot()
    ax.set_axis_off()
    # Wrapped at the figure's width: a long sentence is never cut at its edges.
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, transform=ax.transAxes,
            wrap=True)  # fmt: skip
    fig.suptitle(title)
    return fig


@styled
def notice_figure(message: str, *, title: str) -> Figure:
    """Draw one sentence in place of a figure that cannot apply (e.g. to a user's network)."""
    return message_figure(new_figure(1.0), message, title=title)


def epoch_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


ACCURACY_TOP = 1.002  # room for a marker at 100%, not for a tick beyond it


def loss_accuracy_axes(ax_loss: Axes, ax_acc: Axes, *, titles: tuple[str, str]) -> None:
    """Title and label a loss panel and an accuracy panel (in percent), both over epochs."""
    ax_loss.set_title(titles[0])
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_title(titles[1])
    ax_acc.set_ylabel("accuracy")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    low, high = ax_acc.get_ylim()
    if high > ACCURACY_TOP:  # the margin above 100%: a tick there would read "100.5%"
        ax_acc.set_ylim(low, ACCURACY_TOP)
    for ax in (ax_loss, ax_acc):
        epoch_axis(ax)
