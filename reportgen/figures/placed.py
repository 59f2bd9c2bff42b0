"""Image panels placed by hand on one figure-wide Axes: dozens of images without dozens of Axes.

A matplotlib Axes costs about 10 ms to build (its axes, ticks, spines and
grid) however little it shows, and a gallery of 40 images paid for 40 of
them.  Here every panel is one image artist on a single hidden Axes whose
data coordinates are the figure's inches; each panel keeps what an image
Axes showed: the image resampled into its box (nearest pixel), a thin grey
frame and a title above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

FRAME_COLOR = "#999999"  # as panels.image_axes frames an image Axes
FRAME_WIDTH = 0.5  # pt
TITLE_PAD_PT = 6.0  # matplotlib's axes.titlepad: from a panel's top to its title


@dataclass(frozen=True)
class Box:
    """A panel's place on the figure, in inches from its lower-left corner."""

    left: float
    bottom: float
    width: float
    height: float


class ImagePanels:
    """One hidden Axes over the whole figure, onto which panels are drawn at given boxes."""

    def __init__(self, fig: Figure) -> None:
        width, height = fig.get_size_inches()
        self.ax: Axes = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        self.ax.set_axis_off()
        self.ax.set_xlim(0.0, float(width))
        self.ax.set_ylim(0.0, float(height))
        self._frames: list[Rectangle] = []

    def image(
        self,
        box: Box,
        image: np.ndarray,
        *,
        cmap: str | None = None,
        limits: tuple[float, float] | None = None,
    ) -> AxesImage:
        """Draw ``image`` into ``box``: a 2-D one on ``cmap`` within ``limits``, RGB(A) as is."""
        extent = (box.left, box.left + box.width, box.bottom, box.bottom + box.height)
        kwargs = {} if image.ndim == 3 else {"cmap": cmap, "vmin": limits[0] if limits else None,
                                             "vmax": limits[1] if limits else None}  # fmt: skip
        shown = self.ax.imshow(image, extent=extent, aspect="auto", interpolation="nearest",
                               **kwargs)  # fmt: skip
        self._frames.append(Rectangle((box.left, box.bottom), box.width, box.height))
        return shown

    def title(self, box: Box, text: str, *, fontsize: float) -> None:
        """Write ``text`` centred above ``box``, as an Axes title would stand."""
        pad_in = TITLE_PAD_PT / 72
        x, y = box.left + box.width / 2, box.bottom + box.height + pad_in
        self.ax.text(x, y, text, ha="center", va="baseline", fontsize=fontsize,
                     multialignment="center")  # fmt: skip

    def finish(self) -> None:
        """Frame every panel drawn, in one collection above the images."""
        frames = PatchCollection(self._frames, facecolors="none", edgecolors=FRAME_COLOR,
                                 linewidths=FRAME_WIDTH, zorder=2.5)  # fmt: skip
        self.ax.add_collection(frames, autolim=False)
