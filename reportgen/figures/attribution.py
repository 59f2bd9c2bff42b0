"""Attribution figures: each misclassified image beside its Integrated Gradients maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from reportgen.core.text import truncate

# Imported last: reportgen.figures imports this module for its registry, and
# this module needs that one's style only when a figure is drawn.
from reportgen.figures import panels, style
from reportgen.figures.evaluation import NAME_CHARS
from reportgen.figures.placed import Box, ImagePanels

NO_INK = (0.82, 0.82, 0.82, 1.0)  # an attribution map's pixels where the image is black
TRIPLES_PER_ROW = 3  # image, map toward the predicted class, map toward the true class
# An attribution figure's geometry, in inches (its width is reportgen.figures.WIDTH_IN).
MARGIN, PAD, GAP = 0.05, 0.06, 0.25  # page edge, between panels, between two images' triples
TITLE, HEADER, FOOTER = 0.3, 0.28, 0.24  # panel titles, figure title, legend line


LEGEND = "maps: toward the class named above · red raises its score · blue lowers it · grey: no ink"


def map_colours(values: np.ndarray, image: np.ndarray, limit: float) -> np.ndarray:
    """Return an attribution map as RGBA: diverging colours on the ink, grey where there is none.

    With the black baseline a black pixel gets no attribution, so painting
    those pixels grey shows the image's shape without hiding any value.
    (A contour line over the map would too, but Agg's blending of a line
    over an image is not reproducible to the last bit.)
    """
    norm = mpl.colors.Normalize(vmin=-limit, vmax=limit)
    rgba = mpl.colormaps[style.WEIGHT_CMAP](norm(values))
    blank = image.reshape(*image.shape[:2], -1).max(axis=-1) == 0
    rgba[blank] = NO_INK
    return rgba


def _display_images(images: ArrayLike) -> np.ndarray:
    pixels = np.asarray(images)
    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4):
        raise ValueError(
            f"images must be uint8 [N, H, W] (grey) or [N, H, W, 3] (RGB); got {pixels.dtype} "
            f"{pixels.shape}"
        )
    return pixels


def attribution_figure(
    images: ArrayLike,
    toward_predicted: ArrayLike,
    toward_true: ArrayLike,
    indices: ArrayLike,
    true_names: Sequence[str],
    predicted_names: Sequence[str],
    *,
    model: str,
    title: str,
    total: int,
) -> Figure:
    """Draw each image beside its attribution maps toward the predicted and the true class.

    Parameters
    ----------
    images : array-like of uint8, shape (n, H, W) or (n, H, W, 3)
        The images as shown to people (grey or RGB).
    toward_predicted, toward_true : array-like of float, shape (n, H, W)
        Attribution of each pixel to the predicted and to the true class's logit.
    indices : array-like of int, shape (n,)
        Test positions, for the titles.
    true_names, predicted_names : sequence of str
        Each image's true and predicted class name.
    model : str
        Model name for the title.
    title : str
        What the images are, e.g. "true 4 predicted as 9".
    total : int
        How many images the grid or gallery holds (the figure shows the first n).

    Returns
    -------
    Figure
        Rows of triples: the image, then the two maps on one diverging scale
        per image, centred at zero (red raises the class's score, blue lowers
        it); where the image is black, the maps are grey.
    """
    with style.drawing_style():
        pixels = _display_images(images)
        pred_maps = np.asarray(toward_predicted, dtype=np.float64)
        true_maps = np.asarray(toward_true, dtype=np.float64)
        positions = np.asarray(indices)
        count = len(pixels)
        lengths = {len(pred_maps), len(true_maps), len(positions), len(true_names),
                   len(predicted_names)}  # fmt: skip
        if lengths != {count}:
            raise ValueError("images, maps, indices and names must have the same length")
        heading = f"{model}: attributions, {title}"
        if count == 0:
            return panels.message_figure(
                style.new_figure(1.0), "no image to attribute", title=heading
            )
        place = _Triples(math.ceil(count / TRIPLES_PER_ROW))
        fig = style.new_figure(place.height)
        fig.set_layout_engine("none")  # placed by hand: no layout solver over dozens of panels
        drawn = ImagePanels.over(fig)
        for slot in range(count * 3):
            image_at, part = divmod(slot, 3)
            box = place.box(image_at, part)
            image = pixels[image_at]
            limit = float(max(np.abs(pred_maps[image_at]).max(), np.abs(true_maps[image_at]).max()))
            limit = limit if limit > 0 else 1.0
            true_name = truncate(true_names[image_at], NAME_CHARS)
            pred_name = truncate(predicted_names[image_at], NAME_CHARS)
            if part == 0:  # grey on the digit scale, RGB as it is
                drawn.image(box, image, cmap=style.DIGIT_CMAP, limits=(0, 255))
                drawn.title(box, f"test image\n#{positions[image_at]}", fontsize=6)
            else:  # the map toward the class named above it
                values = pred_maps[image_at] if part == 1 else true_maps[image_at]
                drawn.image(box, map_colours(values, image, limit))
                named = pred_name if part == 1 else true_name
                drawn.title(box, f"{named}\n({'predicted' if part == 1 else 'true'})", fontsize=6)
        drawn.finish()
        shown = f"first {count} of {total}" if total > count else f"{count}"
        fig.suptitle(f"{heading} ({shown} shown)", y=1 - 0.06 / place.height, va="top")
        fig.text(0.5, 0.05 / place.height, LEGEND, ha="center", va="bottom", fontsize=7)
        return fig


@dataclass(frozen=True)
class _Triples:
    """Where each panel of an attribution figure goes: rows of image–map–map triples."""

    rows: int

    @property
    def side(self) -> float:
        """Return a panel's side (in): the width shared by the panels once gaps are taken."""
        gaps = 2 * MARGIN + TRIPLES_PER_ROW * 2 * PAD + (TRIPLES_PER_ROW - 1) * GAP
        return (style.WIDTH_IN - gaps) / (3 * TRIPLES_PER_ROW)

    @property
    def height(self) -> float:
        return HEADER + self.rows * (self.side + TITLE + PAD) + FOOTER

    def box(self, image_at: int, part: int) -> Box:
        """Return where one panel goes, in inches from the figure's lower-left corner."""
        row, column = divmod(image_at, TRIPLES_PER_ROW)
        left = MARGIN + column * (3 * self.side + 2 * PAD + GAP) + part * (self.side + PAD)
        top = self.height - HEADER - row * (self.side + TITLE + PAD) - TITLE
        return Box(left, top - self.side, self.side, self.side)
