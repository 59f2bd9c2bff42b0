"""Image panels placed by hand on one hidden Axes: dozens of images without dozens of Axes.

A matplotlib Axes costs about 10 ms to build (its axes, ticks, spines and
grid) and more to lay out, however little it shows, and a gallery of 40
images paid for 40 of them.  Here every panel is one image artist on a
single hidden Axes whose data coordinates are inches; each panel keeps what
an image Axes showed: the image resampled into its box (nearest pixel), a
thin grey frame and a title above it.  :data:`GRID_LABEL` marks such an
Axes, so that whoever reads a figure back finds the panels in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.text import Text

GRID_LABEL = "<image panels>"  # the label of an Axes that holds panels
FRAME_COLOR = "#999999"  # a panel's frame, as panels.image_axes frames an image Axes
FRAME_WIDTH = 0.5  # pt
TITLE_PAD_PT = 6.0  # matplotlib's axes.titlepad: from a panel's top to its title


@dataclass(frozen=True)
class Box:
    """A panel's place, in inches from the lower-left corner of the panels' Axes."""

    left: float
    bottom: float
    width: float
    height: float


class ImagePanels:
    """Panels drawn onto one hidden Axes ``ax``, whose data coordinates are inches."""

    def __init__(self, ax: Axes, width: float, height: float) -> None:
        self.ax = ax
        ax.set_label(GRID_LABEL)
        ax.set_axis_off()
        ax.set_xlim(0.0, width)
        ax.set_ylim(0.0, height)
        self._frames: list[Rectangle] = []
        self._frame_colors: list[str] = []
        self._frame_widths: list[float] = []

    @classmethod
    def over(cls, fig: Figure) -> ImagePanels:
        """Return panels on an Axes that covers ``fig`` (placed by hand, no layout engine)."""
        width, height = (float(v) for v in fig.get_size_inches())
        return cls(fig.add_axes((0.0, 0.0, 1.0, 1.0)), width, height)

    def image(
        self,
        box: Box,
        image: np.ndarray,
        *,
        cmap: str | None = None,
        limits: tuple[float, float] = (0.0, 255.0),
        frame: tuple[str, float] = (FRAME_COLOR, FRAME_WIDTH),
    ) -> AxesImage:
        """Draw ``image`` into ``box``: a 2-D one on ``cmap`` within ``limits``, RGB(A) as is.

        ``frame`` is the colour and width (pt) of the line around it.
        """
        extent = (box.left, box.left + box.width, box.bottom, box.bottom + box.height)
        # aspect="auto": the box already has the image's shape; the limits stay as set.
        if image.ndim == 3:  # RGB(A) as it is
            shown = self.ax.imshow(image, extent=extent, aspect="auto", interpolation="nearest")
        else:
            shown = self.ax.imshow(image, extent=extent, aspect="auto", interpolation="nearest",
                                   cmap=cmap, vmin=limits[0], vmax=limits[1])  # fmt: skip
        self._frames.append(Rectangle((box.left, box.bottom), box.width, box.height))
        self._frame_colors.append(frame[0])
        self._frame_widths.append(frame[1])
        return shown

    def title(self, box: Box, text: str, *, fontsize: float) -> Text:
        """Write ``text`` centred above ``box``, where an Axes title would stand."""
        centre_top = (box.left + box.width / 2, box.bottom + box.height)
        return self.ax.annotate(text, centre_top, xytext=(0.0, TITLE_PAD_PT),
                                textcoords="offset points", ha="center", va="baseline",
                                fontsize=fontsize, multialignment="center",
                                annotation_clip=False)  # fmt: skip

    def finish(self) -> None:
        """Frame every panel drawn, in one collection above the images (not cut at the edge)."""
        frames = PatchCollection(self._frames, facecolors="none", edgecolors=self._frame_colors,
                                 linewidths=self._frame_widths, zorder=2.5,
                                 clip_on=False)  # fmt: skip
        self.ax.add_collection(frames, autolim=False)
        limits = self.ax.get_xlim(), self.ax.get_ylim()
        self.ax.set_xlim(*limits[0])  # imshow widened them to its extent: set them again
        self.ax.set_ylim(*limits[1])


def image_panels(fig: Figure) -> list[tuple[str, AxesImage]]:
    """Return the title and image of every panel placed on ``fig``, in the order drawn."""
    return [(text.get_text(), image) for ax in fig.get_axes() if ax.get_label() == GRID_LABEL
            for text, image in zip(ax.texts, ax.images, strict=True)]  # fmt: skip


def grid_boxes(
    count: int, columns: int, *, side: float, aspect: float, band: float, gap: float
) -> tuple[list[Box], float, float]:
    """Return ``count`` panel boxes in rows of ``columns``, and the width and height they fill.

    Panels are ``side`` wide and ``side * aspect`` high, ``gap`` apart, and
    each row has a band ``band`` high above it for the titles (all in inches).
    """
    rows = -(-count // columns)
    row = band + side * aspect
    width, height = columns * side + (columns - 1) * gap, rows * row
    boxes = []
    for position in range(count):
        r, c = divmod(position, columns)
        boxes.append(Box(c * (side + gap), height - (r + 1) * row, side, side * aspect))
    return boxes, width, height
