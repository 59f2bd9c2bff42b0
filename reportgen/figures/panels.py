"""Pieces several figures share: image grids, a sentence instead of a chart, loss/accuracy axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator, PercentFormatter

from reportgen.figures.placed import (
    FRAME_COLOR,
    FRAME_WIDTH,
    TITLE_PAD_PT,
    ImagePanels,
    grid_boxes,
)
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


PANEL_GAP_IN = 0.1  # between two panels of a grid


def panel_side(columns: int, *, reserve: float = 0.0) -> float:
    """Return the side (in) of a panel when ``columns`` of them fill the width beside ``reserve``.

    ``reserve`` is the width (in) taken beside the grid, e.g. by a colour bar.
    """
    return (WIDTH_IN - 0.1 - reserve) / columns - PANEL_GAP_IN


def title_band(lines: int, size: float = 7.5) -> float:
    """Return the height (in) above a row of panels for titles of ``lines`` lines of ``size`` pt.

    The title's distance from its panel, its lines, and a little air above it.
    """
    return (TITLE_PAD_PT + lines * 1.25 * size) / 72 + 0.03


def grid_height(
    rows: int,
    columns: int,
    *,
    title_lines: int,
    title_size: float = 7.5,
    reserve: float = 0.0,
    aspect: float = 1.0,
) -> float:
    """Return the figure height (in) that fits ``rows`` of panels without blank bands.

    ``reserve`` is the width (in) taken beside the grid, e.g. by a colour bar;
    ``aspect`` is a panel's height over its width (the images' H / W).
    """
    side = panel_side(columns, reserve=reserve)
    return 0.33 + rows * (side * aspect + title_band(title_lines, title_size))


def panel_chars(columns: int, *, font_size: float, reserve: float = 0.0) -> int:
    """Return about how many characters of ``font_size`` fit on one line above a grid panel."""
    side_pt = panel_side(columns, reserve=reserve) * 72
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
    side: float,
    cmap: str = DIGIT_CMAP,
    limits: tuple[float, float] = (0, 255),
    title_size: float = 7.5,
    frames: Sequence[tuple[str, float]] | None = None,
) -> tuple[AxesImage, Axes]:
    """Draw ``images`` in rows of ``columns`` panels on one colour scale; return one, the Axes.

    Grey images ``[n, H, W]`` use ``cmap`` and ``limits``; RGB ``[n, H, W, 3]``
    are drawn as is.  Every panel is an image on one hidden Axes
    (:mod:`reportgen.figures.placed`), laid out ``side`` inches wide with its
    title above it; the figure's layout places and scales that Axes as a
    whole (a colour bar beside it takes ``ax=`` it).  ``frames`` gives each
    panel's frame colour and width (pt); thin grey by default.
    """
    lines = max(title.count("\n") + 1 for title in titles)
    boxes, width, height = grid_boxes(
        len(images), columns, side=side, aspect=images.shape[1] / images.shape[2],
        band=title_band(lines, title_size), gap=PANEL_GAP_IN,
    )  # fmt: skip
    ax = fig.add_subplot()
    panels = ImagePanels(ax, width, height)
    drawn = []
    for position, box in enumerate(boxes):
        frame = frames[position] if frames is not None else (FRAME_COLOR, FRAME_WIDTH)
        drawn.append(panels.image(box, images[position], cmap=cmap, limits=limits, frame=frame))
        panels.title(box, titles[position], fontsize=title_size)
    panels.finish()
    ax.set_aspect("equal")  # scaled as a whole: panels keep the images' shape
    return drawn[0], ax


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
