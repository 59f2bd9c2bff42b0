"""What a network learned: first-layer weights as images; activations of one test image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from reportgen.figures.checks import (
    check_array,
    check_class_labels,
    check_images,
    check_same_length,
)
from reportgen.figures.panels import draw_image, grid_height, image_axes, image_grid, panel_side
from reportgen.figures.style import (
    DIGIT_CMAP,
    HIGHLIGHT,
    MAP_CMAP,
    MUTED,
    WEIGHT_CMAP,
    WIDTH_IN,
    new_figure,
    plain,
    short_names,
    styled,
)


def _weight_images(weights: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Return first-layer weights as one image per unit, ``[units, C, h, w]``, on the input.

    A linear layer's rows ``[units, C*H*W]`` reshape to the image; convolution
    kernels ``[out, in, k, k]`` must take the image's ``C`` channels.  Anything
    else does not map onto the image and is refused.
    """
    channels, height, width = image_shape
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ValueError(
            f"image_shape must be (C, H, W) with C 1 (grey) or 3 (RGB); got {tuple(image_shape)}"
        )
    if weights.ndim == 4:  # convolution kernels [out, in, k, k]
        if weights.shape[1] != channels:
            raise ValueError(
                f"kernels of shape {weights.shape} take {weights.shape[1]} input channels; "
                f"the image has {channels}"
            )
        return weights
    if weights.ndim == 3:  # single-channel kernels [out, k, k]
        if channels != 1:
            raise ValueError(
                f"kernels of shape {weights.shape} have one input channel; the image has {channels}"
            )
        return weights[:, np.newaxis]
    inputs = channels * height * width
    if weights.shape[1] != inputs:
        raise ValueError(
            f"weights rows have {weights.shape[1]} inputs, which do not reshape to the image's "
            f"{channels}×{height}×{width} = {inputs}"
        )
    return weights.reshape(weights.shape[0], channels, height, width)


def _signed_colours(images: np.ndarray, limit: float) -> np.ndarray:
    """Return ``[n, C, h, w]`` signed values as RGB ``[n, h, w, C]`` in [0, 1], zero at mid-grey.

    Each channel maps ``w`` to ``0.5 + w / (2 limit)`` on one scale shared by
    all units, so colours compare across panels; non-finite values show as zero.
    """
    finite = np.nan_to_num(images, nan=0.0, posinf=limit, neginf=-limit)
    return np.clip(0.5 + finite / (2 * limit), 0.0, 1.0).transpose(0, 2, 3, 1)


@styled
def weights_figure(
    weights: ArrayLike,
    *,
    model: str,
    count: int,
    unit: str,
    image_shape: tuple[int, int, int],
    columns: int = 5,
) -> Figure:
    """Draw the first layer's weights of the first ``count`` units as images of the input's shape.

    Parameters
    ----------
    weights : array-like, shape (units, C*H*W), (units, C, k, k) or (units, k, k)
        Weight rows of a linear layer over the flattened image, or the
        kernels of a convolution over the image's channels.
    model : str
        Model name for the title.
    count : int
        Units to draw, from unit 0.
    unit : str
        Panel title prefix: "Neuron" (a linear layer) or "Kernel" (a convolution).
    image_shape : (C, H, W)
        The input image's channels (1 grey, 3 RGB), height and width.
    columns : int, default 5
        Panels per row.

    Returns
    -------
    Figure
        Grey input: one panel per unit on a diverging colour scale centred on
        zero and shared by all panels (symmetric limits), with one colour bar.
        RGB input: each unit as a colour image, every weight mapped to
        ``0.5 + w / (2 limit)`` with ``limit`` the largest ``|w|`` shown, so
        mid-grey is zero; the title says so, as there is no colour bar.

    Raises
    ------
    ValueError
        When the weights do not map onto ``image_shape`` (the caller checks
        first, with :func:`reportgen.evaluate.image_layer_weights`).
    """
    array = check_array(weights, "weights", ndim=(2, 3, 4)).astype(np.float64)
    if count < 1:
        raise ValueError(f"count must be at least 1; got {count}")
    images = _weight_images(array, image_shape)[:count]  # [n, C, h, w]
    count = len(images)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    finite = np.abs(images[np.isfinite(images)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    aspect = images.shape[2] / images.shape[3]
    titles = [f"{unit} {k}" for k in range(count)]
    shown = f"{unit.lower()}s 0–{count - 1}" if count > 1 else f"{unit.lower()} 0"
    layer = "first-layer weights of" if unit == "Neuron" else "first convolution's"
    title = f"{model}: {layer} {shown}"
    if images.shape[1] == 1:
        fig = new_figure(grid_height(rows, max(columns, 5), title_lines=1, title_size=8,
                                     reserve=0.85, aspect=aspect))  # fmt: skip
        image, axes = image_grid(fig, images[:, 0], titles, columns=columns, cmap=WEIGHT_CMAP,
                                 side=panel_side(max(columns, 5), reserve=0.85),
                                 limits=(-limit, limit), title_size=8)  # fmt: skip
        fig.colorbar(image, ax=axes, shrink=0.85, label="weight", aspect=25)
        fig.suptitle(title)
        return fig
    fig = new_figure(
        grid_height(rows, max(columns, 5), title_lines=1, title_size=8, aspect=aspect) + 0.2
    )
    image_grid(fig, _signed_colours(images, limit), titles, columns=columns,
               side=panel_side(max(columns, 5)), title_size=8)  # fmt: skip
    fig.suptitle(f"{title}\nRGB channels on one scale: mid-grey is 0, full colour ±{limit:.3g}")
    return fig


def _bar_width_pt(count: int) -> float:
    """Return a line width (pt) that makes ``count`` vertical lines fill the bar-chart width."""
    plot_width_pt = WIDTH_IN * 0.7 * 72
    return max(0.3, min(4.0, 0.85 * plot_width_pt / max(count, 1)))


SAMPLE_TITLE_CHARS = 22  # characters of 8 pt that fit on a line above the sample image
MAX_MAPS = 32  # feature maps drawn at most; the title says how many there are
# Beside the feature maps: the sample image's fifth of the width and the colour bar (in).
MAPS_RESERVE = WIDTH_IN / 5.2 + 0.85


def _sample_title(index: int, label: int, prediction: int, classes: Sequence[str]) -> str:
    """Return the sample image's title: its test position, true and predicted class names."""
    check_class_labels(classes, [label, prediction], "label and prediction")
    line = f"true {classes[label]} · predicted {classes[prediction]}"
    if len(line) <= SAMPLE_TITLE_CHARS:
        return f"Test image #{index}\n{plain(line)}"
    names = short_names(classes, SAMPLE_TITLE_CHARS - len("true: "))
    return f"Test image #{index}\ntrue: {names[label]}\npred: {names[prediction]}"


def _sample_image(ax: Axes, image: np.ndarray, title: str) -> None:
    draw_image(ax, image, cmap=DIGIT_CMAP, limits=(0, 255))
    ax.set_title(title, fontsize=8)
    image_axes(ax)


@styled
def activations_figure(
    image: ArrayLike,
    pre: ArrayLike | None,
    post: ArrayLike,
    *,
    model: str,
    index: int,
    label: int,
    prediction: int,
    classes: Sequence[str],
    layer: str | None = None,
) -> Figure:
    """Draw a test image beside a layer's activations: before and after ReLU, or one output.

    Parameters
    ----------
    image : array-like of uint8, shape (H, W) or (H, W, 3)
        The test image, grey or RGB.
    pre : array-like of float, shape (units,), or None
        The first hidden layer's values before ReLU; None for a layer whose
        output is not followed by a ReLU one can see (then ``post`` is that
        output, drawn in one panel, negative values highlighted).
    post : array-like of float, shape (units,)
        The values after ReLU (or the layer's output when ``pre`` is None).
    model : str
        Model name for the title.
    index : int
        The image's test position, for its title.
    label, prediction : int
        True and predicted class indices; the title shows their names.
    classes : sequence of str
        Class names in index order.
    layer : str, optional
        The module drawn (a name from ``named_modules()``); None means the
        first hidden layer.

    Returns
    -------
    Figure
        Image on the left; two stacked bar charts over neuron index sharing
        both axes, so the ReLU's clipping at zero is visible (or one chart).
    """
    pixels = check_images(image, "image", one=True)
    after = check_array(post, "post", ndim=1).astype(np.float64)
    before = None if pre is None else check_array(pre, "pre", ndim=1).astype(np.float64)
    if before is not None:
        check_same_length(pre=before, post=after)
    title = _sample_title(index, label, prediction, classes)
    fig = new_figure(3.3 if before is not None else 2.5)
    grid = fig.add_gridspec(2 if before is not None else 1, 2, width_ratios=(1, 3.3))
    _sample_image(fig.add_subplot(grid[:, 0]), pixels, title)
    neurons = np.arange(len(after))
    # One line collection per panel instead of hundreds of bar patches: same look, a
    # fraction of the drawing time.
    bar_width = _bar_width_pt(len(after))
    where = "first hidden layer" if layer is None else f"module ‘{layer}’"
    if before is None:
        ax_out = fig.add_subplot(grid[0, 1])
        colors = [MUTED if value >= 0 else HIGHLIGHT for value in after]
        ax_out.vlines(neurons, 0, after, colors=colors, linewidth=bar_width)
        ax_out.set_title(f"Output: {len(after)} units (negative in vermillion)")
        ax_out.set_ylabel("output")
        charts = [ax_out]
    else:
        ax_pre = fig.add_subplot(grid[0, 1])
        ax_post = fig.add_subplot(grid[1, 1], sharex=ax_pre, sharey=ax_pre)
        colors = [MUTED if value >= 0 else HIGHLIGHT for value in before]
        ax_pre.vlines(neurons, 0, before, colors=colors, linewidth=bar_width)
        ax_pre.set_title(f"Before ReLU: {len(before)} neurons (negative in vermillion)")
        ax_pre.set_ylabel("pre-activation")
        active = int(np.count_nonzero(after > 0))
        ax_post.vlines(neurons, 0, after, colors=MUTED, linewidth=bar_width)
        ax_post.set_title(f"After ReLU: {active} of {len(after)} neurons active")
        ax_post.set_ylabel("activation")
        charts = [ax_pre, ax_post]
    charts[-1].set_xlim(-0.5, len(after) - 0.5)
    for ax in charts:
        ax.set_xlabel("neuron index" if before is not None else "unit index")
        ax.axhline(0, color="#444444", linewidth=0.6)
        ax.grid(axis="x", visible=False)
    fig.suptitle(f"{model}: {where} for test image #{index}")
    return fig


@styled
def feature_maps_figure(
    image: ArrayLike,
    maps: ArrayLike,
    *,
    model: str,
    index: int,
    label: int,
    prediction: int,
    classes: Sequence[str],
    layer: str | None = None,
    limit: int = MAX_MAPS,
    columns: int = 8,
) -> Figure:
    """Draw a test image beside a convolution's feature maps (the first ``limit`` of them).

    Parameters
    ----------
    image : array-like of uint8, shape (H, W) or (H, W, 3)
        The test image, grey or RGB.
    maps : array-like of float, shape (channels, h, w)
        The first conv layer's activations after ReLU, or the output of ``layer``.
    model : str
        Model name for the title.
    index, label, prediction : int
        Test position, true and predicted class index, for the image's title.
    classes : sequence of str
        Class names in index order.
    layer : str, optional
        The module drawn (a name from ``named_modules()``); None means the
        first convolution, after its ReLU.
    limit : int, default 32
        Feature maps drawn at most, from map 0; the title says when there are more.
    columns : int, default 8
        Feature maps per row.

    Returns
    -------
    Figure
        Image on the left, a grid of maps on one shared colour scale on the
        right (from zero, or from the lowest value when some are negative).
    """
    pixels = check_images(image, "image", one=True)
    activations = check_array(maps, "maps", ndim=3).astype(np.float64)
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    total = len(activations)
    activations = activations[:limit]
    columns = min(columns, len(activations))
    rows = math.ceil(len(activations) / columns)
    fig = new_figure(0.45 + rows * 0.72)
    panels = fig.subfigures(1, 2, width_ratios=(1, 4.2), squeeze=False)
    left, right = panels[0, 0], panels[0, 1]
    _sample_image(left.subplots(), pixels, _sample_title(index, label, prediction, classes))
    finite = activations[np.isfinite(activations)]
    low = min(float(finite.min()), 0.0) if finite.size else 0.0
    top = float(finite.max()) if finite.size else 0.0
    top = top if top > low else low + 1.0
    titles = [f"Map {k}" for k in range(len(activations))]
    shown, axes = image_grid(right, activations, titles, columns=columns, cmap=MAP_CMAP,
                             side=panel_side(max(columns, 8), reserve=MAPS_RESERVE),
                             limits=(low, top), title_size=7)  # fmt: skip
    label_text = "activation (after ReLU)" if layer is None else "output"
    right.colorbar(shown, ax=axes, shrink=0.85, label=label_text)
    where = "first convolution's feature maps" if layer is None else f"module ‘{layer}’"
    more = f" (first {len(activations)} of {total} maps)" if total > len(activations) else ""
    fig.suptitle(f"{model}: {where} for test image #{index}{more}")
    return fig


def layer_output_figure(
    image: ArrayLike,
    output: ArrayLike,
    *,
    model: str,
    index: int,
    label: int,
    prediction: int,
    classes: Sequence[str],
    layer: str,
) -> Figure:
    """Draw a test image beside one module's output: bars for ``[units]``, maps for ``[c, h, w]``.

    The output is what :func:`reportgen.evaluate.layer_output` returns; any
    other shape raises ValueError (the caller says in a sentence that the
    module's output cannot be drawn).
    """
    values = np.asarray(output)
    if values.ndim == 1:
        return activations_figure(image, None, values, model=model, index=index, label=label,
                                  prediction=prediction, classes=classes, layer=layer)  # fmt: skip
    if values.ndim == 3:
        return feature_maps_figure(image, values, model=model, index=index, label=label,
                                   prediction=prediction, classes=classes, layer=layer)  # fmt: skip
    raise ValueError(
        f"a layer's output must be [units] or [channels, h, w] to draw; got shape {values.shape}"
    )
