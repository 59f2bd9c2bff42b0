"""Data -> matplotlib Figure: pure functions in one visual style, saved as deterministic PNGs.

Every function takes plain data (arrays, DataFrames) and returns a
:class:`matplotlib.figure.Figure` built with the object API: no pyplot state,
no figure manager, nothing shown; :func:`render_png` renders it with Agg.
The style (:data:`STYLE`) is applied with ``rc_context`` while a figure is
built and while it is saved, so the host process's matplotlib settings are
left alone.  Only PNG is written; an SVG output would also need a fixed
``svg.hashsalt`` and ``metadata={"Date": None}``.

:data:`FIGURES` is the one list of figure kinds: what draws each, how it is
named in a run, and its alt text and caption.  The pipeline draws from it,
and the report, the email and the comparison describe figures from it.

Sizes are chosen for the PDF: every figure is :data:`WIDTH_IN` wide, the A4
text width (17 cm), so fonts print at their nominal size, and :data:`DPI`
gives sharp print (180 dpi at that size) while a whole run's PNGs stay a few
MB.  HTML shows the same PNGs scaled to the column.
"""

from __future__ import annotations

import functools
import io
import math
import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure, SubFigure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter
from matplotlib.typing import LineStyleType
from numpy.typing import ArrayLike

from reportgen import evaluation_figures

WIDTH_IN = 6.7  # 17 cm: the A4 text width the PDF report uses
DPI = 180

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
HIGHLIGHT = "#D55E00"  # vermillion: the few things a chart wants noticed
MUTED = "#0072B2"
DIGIT_CMAP = "gray_r"  # ink dark on white paper
WEIGHT_CMAP = "RdBu_r"  # diverging, colour-blind safe; red positive, blue negative
MAP_CMAP = "viridis"
HEATMAP_CMAP = "Blues"

STYLE: dict[Any, Any] = {
    # DejaVu Sans ships with matplotlib, so every machine renders the same
    # glyphs; the PDF report uses the same typeface.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "figure.titlesize": 10,
    "figure.titleweight": "bold",
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "image.interpolation": "nearest",  # pixels stay pixels
}

TRAIN_STYLE: dict[str, Any] = {"linestyle": "-", "marker": "o"}
VAL_STYLE: dict[str, Any] = {"linestyle": "--", "marker": "s"}
# Lines that must be told apart without colour: one style and marker per model.
LINESTYLES: tuple[LineStyleType, ...] = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
LR_LOG_RATIO = 10.0  # a learning rate that varies by this factor or more gets a log axis

P = ParamSpec("P")


def _styled(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build the figure under :data:`STYLE` (fonts and colours are fixed when artists are made)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with mpl.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def _figure(height: float) -> Figure:
    # No canvas is attached: savefig renders PNG with Agg on its own, without
    # pyplot, and seaborn's heatmap then skips its full "draw to check tick
    # label overlap" pass, which would otherwise triple the cost of a heatmap.
    return Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")


def model_color(position: int) -> str:
    """Return the colour of the model at ``position`` in training order (same in every figure)."""
    return OKABE_ITO[position % len(OKABE_ITO)]


# --------------------------------------------------------------------------- saving


def render_png(fig: Figure) -> bytes:
    """Return the figure as PNG bytes; fixed DPI and no metadata make equal figures equal bytes.

    Render a figure once, as built: constrained layout settles further on a
    second draw, so a re-render of the same object may differ by a pixel.
    """
    buffer = io.BytesIO()
    with mpl.rc_context(STYLE):
        # The Agg canvas's own print_png lays out and draws once; savefig would
        # add a layout-only draw first, for no visible difference.
        FigureCanvasAgg(fig).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: ``build(*args, **kwargs)`` on plain data (NumPy, pandas, numbers)."""

    name: str
    build: Callable[..., Figure]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def draw_png(job: FigureJob) -> bytes:
    """Return ``job``'s figure as PNG bytes (see :func:`render_png`)."""
    fig = job.build(*job.args, **job.kwargs)
    data = render_png(fig)
    fig.clear()
    return data


def draw_all(jobs: Sequence[FigureJob], *, workers: int) -> list[bytes]:
    """Return every job's PNG bytes, in order, drawn by up to ``workers`` forked processes.

    Drawing is CPU-bound Python (text layout, Agg rasterising), so a second
    core nearly halves it.  Forked workers inherit the loaded fonts and
    matplotlib state, so their bytes equal an in-process draw; jobs hold
    plain data only, so a worker never runs torch (whose thread pool does not
    survive a fork).  Without ``fork`` (or with one worker) jobs draw here.
    """
    workers = min(workers, len(jobs))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [draw_png(job) for job in jobs]
    with warnings.catch_warnings():
        # Python >= 3.12 warns on any fork of a threaded process; the workers
        # only draw figures, which needs none of the parent's threads.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(draw_png, jobs))


# --------------------------------------------------------------------------- validation


def _array(value: ArrayLike, name: str, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {dims}; got shape {array.shape}")
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"{', '.join(lengths)} must have the same length; got {listed}")


def _images(value: ArrayLike, name: str) -> np.ndarray:
    images = _array(value, name, ndim=3)
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 pixels [N, 28, 28]; got dtype {images.dtype}")
    return images


def _require_columns(history: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks column(s) {', '.join(missing)}; needs {', '.join(columns)}"
        )


NO_EPOCH = "no epoch completed (training diverged in its first epoch)"


# --------------------------------------------------------------------------- shared pieces


def _image_axes(ax: Axes) -> None:
    """Frame an image panel thinly, with no axis: hidden axes are also the cheapest to lay out."""
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.5)
        spine.set_color("#999999")


def _grid_height(rows: int, columns: int, *, title_lines: int, reserve: float = 0.0) -> float:
    """Return the figure height (in) that fits ``rows`` of square panels without blank bands.

    ``reserve`` is the width (in) taken beside the grid, e.g. by a colour bar.
    """
    side = (WIDTH_IN - 0.1 - reserve) / columns - 0.1
    return 0.33 + rows * (side + 0.04 + 0.14 * title_lines)


def _image_grid(
    fig: Figure | SubFigure,
    images: np.ndarray,
    titles: Sequence[str],
    *,
    columns: int,
    cmap: str = DIGIT_CMAP,
    limits: tuple[float, float] = (0, 255),
    title_size: float = 7.5,
) -> tuple[AxesImage, np.ndarray]:
    """Draw ``images`` in rows of ``columns`` panels on one colour scale; return one image, axes."""
    rows = math.ceil(len(images) / columns)
    axes = fig.subplots(rows, columns, squeeze=False)
    drawn = []
    for position, ax in enumerate(axes.flat):
        if position < len(images):
            drawn.append(ax.imshow(images[position], cmap=cmap, vmin=limits[0], vmax=limits[1]))
            ax.set_title(titles[position], fontsize=title_size)
            _image_axes(ax)
        else:
            ax.set_visible(False)
    return drawn[0], axes


def _message(fig: Figure, message: str, *, title: str) -> Figure:
    """Fill ``fig`` with one centred sentence instead of an empty chart."""
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, transform=ax.transAxes)
    fig.suptitle(title)
    return fig


def _epoch_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def loss_accuracy_axes(ax_loss: Axes, ax_acc: Axes, *, titles: tuple[str, str]) -> None:
    """Title and label a loss panel and an accuracy panel (in percent), both over epochs."""
    ax_loss.set_title(titles[0])
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_title(titles[1])
    ax_acc.set_ylabel("accuracy")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    for ax in (ax_loss, ax_acc):
        _epoch_axis(ax)


# --------------------------------------------------------------------------- per model


def _as_square_images(weights: np.ndarray) -> np.ndarray:
    if weights.ndim == 4:  # conv kernels [out, in, k, k]: one input channel on MNIST
        return weights[:, 0]
    if weights.ndim == 3:
        return weights
    side = math.isqrt(weights.shape[1])
    if side * side != weights.shape[1]:
        raise ValueError(
            f"weights rows must reshape to square images; {weights.shape[1]} is not a square"
        )
    return weights.reshape(weights.shape[0], side, side)


@_styled
def weights_figure(
    weights: ArrayLike, *, model: str, count: int = 10, unit: str = "Neuron", columns: int = 5
) -> Figure:
    """Draw the first layer's weights of the first ``count`` units as images.

    Parameters
    ----------
    weights : array-like, shape (units, 784), (units, k, k) or (units, 1, k, k)
        First-layer weight rows (MLP) or convolution kernels (CNN).
    model : str
        Model name for the title.
    count : int, default 10
        Units to draw, from unit 0.
    unit : str, default "Neuron"
        Panel title prefix ("Neuron k", or "Kernel k" for convolutions).
    columns : int, default 5
        Panels per row.

    Returns
    -------
    Figure
        One panel per unit on a diverging colour scale centred on zero and
        shared by all panels (symmetric limits), with one colour bar.
    """
    array = _array(weights, "weights", ndim=(2, 3, 4)).astype(np.float64)
    if count < 1:
        raise ValueError(f"count must be at least 1; got {count}")
    images = _as_square_images(array)[:count]
    count = len(images)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    finite = np.abs(images[np.isfinite(images)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    fig = _figure(_grid_height(rows, max(columns, 5), title_lines=1, reserve=0.85))
    titles = [f"{unit} {k}" for k in range(count)]
    image, axes = _image_grid(fig, images, titles, columns=columns, cmap=WEIGHT_CMAP,
                              limits=(-limit, limit), title_size=8)  # fmt: skip
    fig.colorbar(image, ax=axes, shrink=0.85, label="weight", aspect=25)
    shown = f"{unit.lower()}s 0–{count - 1}" if count > 1 else f"{unit.lower()} 0"
    layer = "first-layer weights of" if unit == "Neuron" else "first convolution's"
    fig.suptitle(f"{model}: {layer} {shown}")
    return fig


def _bar_width_pt(count: int) -> float:
    """Return a line width (pt) that makes ``count`` vertical lines fill the bar-chart width."""
    plot_width_pt = WIDTH_IN * 0.7 * 72
    return max(0.3, min(4.0, 0.85 * plot_width_pt / max(count, 1)))


@_styled
def activations_figure(
    image: ArrayLike,
    pre: ArrayLike,
    post: ArrayLike,
    *,
    model: str,
    index: int,
    label: int,
    prediction: int,
) -> Figure:
    """Draw a test image beside its first-hidden-layer activations, before and after ReLU.

    Parameters
    ----------
    image : array-like of uint8, shape (28, 28)
        The test image.
    pre, post : array-like of float, shape (units,)
        The first hidden layer's values before and after ReLU for ``image``.
    model : str
        Model name for the title.
    index : int
        The image's test position, for its title.
    label, prediction : int
        True and predicted class, for its title.

    Returns
    -------
    Figure
        Image on the left; two stacked bar charts over neuron index sharing
        both axes, so the ReLU's clipping at zero is visible.
    """
    pixels = _images(np.asarray(image)[np.newaxis], "image")[0]
    before = _array(pre, "pre", ndim=1).astype(np.float64)
    after = _array(post, "post", ndim=1).astype(np.float64)
    _same_length(pre=before, post=after)
    fig = _figure(3.3)
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 3.3))
    ax_image = fig.add_subplot(grid[:, 0])
    ax_image.imshow(pixels, cmap=DIGIT_CMAP, vmin=0, vmax=255)
    ax_image.set_title(f"Test image #{index}\ntrue {label} · predicted {prediction}", fontsize=8)
    _image_axes(ax_image)
    ax_pre = fig.add_subplot(grid[0, 1])
    ax_post = fig.add_subplot(grid[1, 1], sharex=ax_pre, sharey=ax_pre)
    neurons = np.arange(len(before))
    # One line collection per panel instead of hundreds of bar patches: same look, a
    # fraction of the drawing time.
    bar_width = _bar_width_pt(len(before))
    colors = [MUTED if value >= 0 else HIGHLIGHT for value in before]
    ax_pre.vlines(neurons, 0, before, colors=colors, linewidth=bar_width)
    ax_pre.set_title(f"Before ReLU: {len(before)} neurons (negative in vermillion)")
    ax_pre.set_ylabel("pre-activation")
    active = int(np.count_nonzero(after > 0))
    ax_post.vlines(neurons, 0, after, colors=MUTED, linewidth=bar_width)
    ax_post.set_title(f"After ReLU: {active} of {len(after)} neurons active")
    ax_post.set_ylabel("activation")
    ax_post.set_xlim(-0.5, len(before) - 0.5)
    for ax in (ax_pre, ax_post):
        ax.set_xlabel("neuron index")
        ax.axhline(0, color="#444444", linewidth=0.6)
        ax.grid(axis="x", visible=False)
    fig.suptitle(f"{model}: first hidden layer for test image #{index}")
    return fig


@_styled
def feature_maps_figure(
    image: ArrayLike,
    maps: ArrayLike,
    *,
    model: str,
    index: int,
    label: int,
    prediction: int,
    columns: int = 8,
) -> Figure:
    """Draw a test image beside the first convolution's feature maps (after ReLU).

    Parameters
    ----------
    image : array-like of uint8, shape (28, 28)
        The test image.
    maps : array-like of float, shape (channels, h, w)
        The first conv layer's activations after ReLU.
    model : str
        Model name for the title.
    index, label, prediction : int
        Test position, true and predicted class, for the image's title.
    columns : int, default 8
        Feature maps per row.

    Returns
    -------
    Figure
        Image on the left, a grid of maps on one shared colour scale on the right.
    """
    pixels = _images(np.asarray(image)[np.newaxis], "image")[0]
    activations = _array(maps, "maps", ndim=3).astype(np.float64)
    columns = min(columns, len(activations))
    rows = math.ceil(len(activations) / columns)
    fig = _figure(0.45 + rows * 0.72)
    panels = fig.subfigures(1, 2, width_ratios=(1, 4.2), squeeze=False)
    left, right = panels[0, 0], panels[0, 1]
    ax_image = left.subplots()
    ax_image.imshow(pixels, cmap=DIGIT_CMAP, vmin=0, vmax=255)
    ax_image.set_title(f"Test image #{index}\ntrue {label} · predicted {prediction}", fontsize=8)
    _image_axes(ax_image)
    finite = activations[np.isfinite(activations)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    titles = [f"Map {k}" for k in range(len(activations))]
    shown, axes = _image_grid(right, activations, titles, columns=columns, cmap=MAP_CMAP,
                              limits=(0, top), title_size=7)  # fmt: skip
    right.colorbar(shown, ax=axes, shrink=0.85, label="activation (after ReLU)")
    fig.suptitle(f"{model}: first convolution's feature maps for test image #{index}")
    return fig


@_styled
def misclassified_figure(
    images: ArrayLike,
    labels: ArrayLike,
    predictions: ArrayLike,
    confidence: ArrayLike,
    *,
    model: str,
    total: int,
    columns: int = 5,
) -> Figure:
    """Draw a grid of misclassified test images titled "True: t, Pred: p" and the confidence.

    Parameters
    ----------
    images : array-like of uint8, shape (n, 28, 28)
        The misclassified images in the order to show them (the pipeline
        passes the lowest test indices first).
    labels, predictions : array-like of int, shape (n,)
        True and predicted classes.
    confidence : array-like of float, shape (n,)
        The predicted class's probability.
    model : str
        Model name for the title.
    total : int
        How many test images the model misclassified in all.
    columns : int, default 5
        Panels per row.

    Returns
    -------
    Figure
        The grid, or one sentence when nothing was misclassified.
    """
    pixels = _images(images, "images")
    true = _array(labels, "labels", ndim=1)
    pred = _array(predictions, "predictions", ndim=1)
    prob = _array(confidence, "confidence", ndim=1)
    _same_length(images=pixels, labels=true, predictions=pred, confidence=prob)
    title = f"{model}: misclassified test images"
    if len(pixels) == 0:
        return _message(_figure(1.2), "no test image was misclassified", title=title)
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    fig = _figure(_grid_height(rows, max(columns, 5), title_lines=2))
    titles = [f"True: {t}, Pred: {p}\np={c:.2f}" for t, p, c in zip(true, pred, prob, strict=True)]
    _image_grid(fig, pixels, titles, columns=columns)
    fig.suptitle(f"{title} (first {len(pixels)} of {total}, lowest test index first)")
    return fig


@_styled
def pair_figure(
    images: ArrayLike,
    indices: ArrayLike,
    confidence: ArrayLike,
    *,
    model: str,
    true: int,
    pred: int,
    total: int,
    columns: int = 8,
) -> Figure:
    """Draw the gallery of test images of class ``true`` predicted as ``pred``.

    Parameters
    ----------
    images : array-like of uint8, shape (n, 28, 28)
        The pair's images, lowest test index first.
    indices : array-like of int, shape (n,)
        Their test positions, for the panel titles.
    confidence : array-like of float, shape (n,)
        Probability the model gave ``pred`` for each image.
    model : str
        Model name for the title.
    true, pred : int
        The confused pair.
    total : int
        How many test images of ``true`` were predicted as ``pred`` in all.
    columns : int, default 8
        Panels per row.

    Returns
    -------
    Figure
        The gallery, or a sentence "no test image of t was predicted as p".
    """
    pixels = _images(images, "images")
    positions = _array(indices, "indices", ndim=1)
    prob = _array(confidence, "confidence", ndim=1)
    _same_length(images=pixels, indices=positions, confidence=prob)
    title = f"{model}: true {true} predicted as {pred}"
    if len(pixels) == 0:
        return _message(
            _figure(1.0), f"no test image of {true} was predicted as {pred}", title=title
        )
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    fig = _figure(_grid_height(rows, max(columns, 6), title_lines=2))
    titles = [f"#{i}\np={c:.2f}" for i, c in zip(positions, prob, strict=True)]
    _image_grid(fig, pixels, titles, columns=columns)
    images_word = "image" if total == 1 else "images"
    fig.suptitle(f"{title} ({total} test {images_word}, {len(pixels)} shown)")
    return fig


HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


@_styled
def curves_figure(history: pd.DataFrame, *, model: str, color: str = OKABE_ITO[0]) -> Figure:
    """Draw one model's train and validation loss (left) and accuracy (right) per epoch.

    Parameters
    ----------
    history : DataFrame
        One row per epoch with ``epoch``, ``train_loss``, ``val_loss``,
        ``train_accuracy`` and ``val_accuracy``.
    model : str
        Model name for the title.
    color : str
        The model's colour (:func:`model_color`); train is solid, validation dashed.

    Returns
    -------
    Figure
        Two panels; the loss panel marks the epoch of lowest validation loss.
    """
    _require_columns(history, HISTORY_COLUMNS)
    if history.empty:
        return _message(_figure(1.0), NO_EPOCH, title=f"{model}: training curves")
    fig = _figure(2.7)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = history["epoch"].to_numpy()
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.plot(epochs, history[f"train_{metric}"], color=color, label="train", **TRAIN_STYLE)
        ax.plot(epochs, history[f"val_{metric}"], color=color, label="validation", **VAL_STYLE)
    val_loss = history["val_loss"].to_numpy(dtype=np.float64)
    if np.isfinite(val_loss).any():
        best = int(np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.nan)))
        ax_loss.axvline(epochs[best], color="#777777", linewidth=0.8, linestyle=":",
                        label=f"lowest validation loss (epoch {epochs[best]})")  # fmt: skip
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Loss", "Accuracy"))
    ax_loss.legend()
    ax_acc.legend()
    fig.suptitle(f"{model}: training curves")
    return fig


def _nonzero_labels(values: np.ndarray, fmt: str) -> np.ndarray:
    return np.array([[format(v, fmt) if v else "" for v in row] for row in values], dtype=object)


@_styled
def confusion_figure(matrix: ArrayLike, *, model: str) -> Figure:
    """Draw the confusion matrix as counts (left) and row-normalized (right) heatmaps.

    Parameters
    ----------
    matrix : array-like of int, shape (k, k)
        Counts; rows are true labels, columns predictions.
    model : str
        Model name for the title.

    Returns
    -------
    Figure
        Two annotated heatmaps.  Counts are coloured on a log scale so that
        the few errors stay visible beside the large diagonal; the right
        panel shows each cell as a percentage of its true class.  Empty cells
        are left blank.
    """
    counts = _array(matrix, "matrix", ndim=2)
    if counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (true × predicted); got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("matrix must hold non-negative counts")
    support = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts * 100.0, support, out=np.zeros(counts.shape), where=support > 0)
    fig = _figure(3.3)
    ax_counts, ax_norm = fig.subplots(1, 2)
    annotation = {"fontsize": 5.5}
    colorbar = {"shrink": 0.8, "fraction": 0.05, "pad": 0.03}
    sns.heatmap(
        counts, ax=ax_counts, cmap=HEATMAP_CMAP, norm=LogNorm(vmin=0.7, vmax=max(2, counts.max())),
        mask=counts == 0, annot=_nonzero_labels(counts, "d"), fmt="", annot_kws=annotation,
        square=True, cbar_kws={"label": "images (log scale)", **colorbar},
    )  # fmt: skip
    sns.heatmap(
        percent, ax=ax_norm, cmap=HEATMAP_CMAP, vmin=0, vmax=100, mask=counts == 0,
        annot=_nonzero_labels(percent, ".1f"), fmt="", annot_kws=annotation, square=True,
        cbar_kws={"label": "% of true class", **colorbar},
    )  # fmt: skip
    for ax, title in ((ax_counts, "Counts"), (ax_norm, "Row-normalized (%)")):
        ax.collections[0].colorbar.ax.minorticks_off()  # log minor ticks: clutter and time
        ax.set_title(title)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.tick_params(length=0, rotation=0)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(f"{model}: confusion matrix on the test set")
    return fig


@_styled
def class_errors_figure(error_rates: ArrayLike, *, model: str, worst: Sequence[int] = ()) -> Figure:
    """Draw the per-class error rate (1 − recall) as bars, the worst classes highlighted.

    Parameters
    ----------
    error_rates : array-like of float, shape (k,)
        Error rate of class ``0 … k-1``, as fractions.
    model : str
        Model name for the title.
    worst : sequence of int
        Classes to highlight (the pipeline passes the three worst).

    Returns
    -------
    Figure
        One bar per class, labelled with its percentage.
    """
    rates = _array(error_rates, "error_rates", ndim=1).astype(np.float64)
    classes = np.arange(len(rates))
    bad = [w for w in worst if not 0 <= w < len(rates)]
    if bad:
        raise ValueError(f"worst classes {bad} are not labels 0–{len(rates) - 1}")
    highlighted = np.isin(classes, list(worst))
    fig = _figure(2.5)
    ax = fig.subplots()
    bars = ax.bar(classes, rates, color=np.where(highlighted, HIGHLIGHT, MUTED), width=0.7)
    ax.bar_label(bars, labels=[f"{r * 100:.1f}" for r in rates], fontsize=7, padding=1.5)
    ax.set_xticks(classes)
    ax.set_xlabel("true class")
    ax.set_ylabel("error rate (1 − recall)")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    ax.set_ylim(0, max(float(rates.max()) * 1.18, 0.01))
    ax.grid(axis="x", visible=False)
    named = ", ".join(str(w) for w in worst)
    ax.legend(
        handles=[Patch(color=HIGHLIGHT, label="worst classes"), Patch(color=MUTED, label="others")],
        loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2,
    )  # fmt: skip
    fig.suptitle(f"{model}: per-class error rate" + (f" (worst: {named})" if named else ""))
    return fig


# --------------------------------------------------------------------------- across models


def _models(history: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(history["model"]))


def _line_style(position: int, *, color: str | None = None) -> dict[str, Any]:
    """Return the colour, line style and marker of the model at ``position``."""
    return {
        "color": model_color(position) if color is None else color,
        "linestyle": LINESTYLES[position % len(LINESTYLES)],
        "marker": MARKERS[position % len(MARKERS)],
    }


def _model_handles(models: Sequence[str]) -> list[Line2D]:
    handles = [Line2D([], [], color=model_color(i), label=m) for i, m in enumerate(models)]
    handles += [
        Line2D([], [], color="#333333", label="train", **TRAIN_STYLE),
        Line2D([], [], color="#333333", label="validation", **VAL_STYLE),
    ]
    return handles


@_styled
def compare_curves_figure(history: pd.DataFrame) -> Figure:
    """Draw every model's train and validation loss and accuracy on shared axes.

    Parameters
    ----------
    history : DataFrame
        The run's long history: one row per model and epoch with ``model``
        (in training order), ``epoch`` and the four curve columns.

    Returns
    -------
    Figure
        Loss (left) and accuracy (right); one colour per model, train solid,
        validation dashed: the regularization-impact plot.
    """
    _require_columns(history, ("model", *HISTORY_COLUMNS))
    title = "Regularization impact: train vs validation, all models"
    if history.empty:
        return _message(_figure(1.0), NO_EPOCH, title=title)
    models = _models(history)
    fig = _figure(3.0)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    for i, name in enumerate(models):
        rows = history[history["model"] == name]
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(rows["epoch"], rows[f"train_{metric}"], color=model_color(i), **TRAIN_STYLE)
            ax.plot(rows["epoch"], rows[f"val_{metric}"], color=model_color(i), **VAL_STYLE)
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Loss", "Accuracy"))
    fig.legend(handles=_model_handles(models), loc="outside lower center", ncols=len(models) + 2)
    fig.suptitle(title)
    return fig


@_styled
def lr_figure(history: pd.DataFrame) -> Figure:
    """Draw the learning rate of every epoch, per model.

    Parameters
    ----------
    history : DataFrame
        The run's long history with ``model``, ``epoch`` and ``lr``.

    Returns
    -------
    Figure
        One step line per model; the y axis is logarithmic when the rate
        varies by :data:`LR_LOG_RATIO` or more.
    """
    _require_columns(history, ("model", "epoch", "lr"))
    if history.empty:
        return _message(_figure(1.0), NO_EPOCH, title="Learning rate per epoch")
    lr = history["lr"].to_numpy(dtype=np.float64)
    if not (np.isfinite(lr).all() and (lr > 0).all()):
        raise ValueError("lr must hold positive finite learning rates")
    fig = _figure(2.4)
    ax = fig.subplots()
    for i, name in enumerate(_models(history)):
        rows = history[history["model"] == name]
        ax.plot(rows["epoch"], rows["lr"], drawstyle="steps-mid", label=name, **_line_style(i))
    if lr.max() / lr.min() >= LR_LOG_RATIO:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)
        ax.set_ylim(0, lr.max() * 1.15)
    _epoch_axis(ax)
    ax.set_ylabel("learning rate")
    ax.legend()
    fig.suptitle("Learning rate per epoch")
    return fig


@_styled
def compare_history_figure(history: pd.DataFrame) -> Figure:
    """Draw the validation loss and accuracy per epoch of every run and model on shared axes.

    Parameters
    ----------
    history : DataFrame
        One row per run, model and epoch with ``run``, ``model``, ``epoch``,
        ``val_loss`` and ``val_accuracy``; runs and models in order of first
        appearance.

    Returns
    -------
    Figure
        Loss (left) and accuracy (right); one colour per run, one line style
        and marker per model.
    """
    _require_columns(history, ("run", "model", "epoch", "val_loss", "val_accuracy"))
    title = "Validation curves of every run"
    if history.empty:
        return _message(_figure(1.0), NO_EPOCH, title=title)
    runs = list(dict.fromkeys(history["run"]))
    models = _models(history)
    legend_rows = -(-(len(runs) + len(models)) // 4)
    fig = _figure(2.8 + 0.2 * legend_rows)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    for r, run in enumerate(runs):
        for m, model in enumerate(models):
            rows = history[(history["run"] == run) & (history["model"] == model)]
            for ax, column in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
                values = rows[column].to_numpy(dtype=np.float64)
                ax.plot(rows["epoch"], np.where(np.isfinite(values), values, np.nan),
                        **_line_style(m, color=model_color(r)))  # fmt: skip
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Validation loss", "Validation accuracy"))
    handles = [Line2D([], [], color=model_color(r), label=run) for r, run in enumerate(runs)]
    handles += [
        Line2D([], [], label=model, **_line_style(m, color="#333333"))
        for m, model in enumerate(models)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- the registry

# "attribution": one per model and "pair_attribution" one per confused pair, when
# report.attributions is on.
Scope = Literal["run", "model", "pair", "compare", "attribution", "pair_attribution"]


@dataclass(frozen=True)
class FigureKind:
    """One kind of figure: what draws it, and how a page describes it.

    ``alt`` and ``caption`` are :meth:`str.format` templates; the page showing
    the figure fills the slots its kind uses: ``{model}``, ``{n}`` (units or
    images shown), ``{index}`` (the test image), ``{true}``, ``{pred}``,
    ``{images}`` (the pair's test images, counted), ``{why}`` and ``{shown}``.
    """

    kind: str
    scope: Scope  # one figure per run, per model, per confused pair, or per comparison
    build: Callable[..., Figure]
    alt: str
    caption: str
    cnn: FigureKind | None = None  # the variant for a CNN, whose first layer is convolutional

    def for_network(self, network: str) -> FigureKind:
        """Return the variant of this kind for a network of ``network`` kind ("mlp", "cnn")."""
        return self.cnn if network == "cnn" and self.cnn is not None else self

    def describe(self, **slots: Any) -> tuple[str, str]:
        """Return the alt text and caption with ``slots`` filled in."""
        return self.alt.format(**slots), self.caption.format(**slots)


FIGURES: dict[str, FigureKind] = {
    figure.kind: figure
    for figure in (
        FigureKind(
            "compare_curves", "run", compare_curves_figure,
            "Train and validation loss and accuracy per epoch of every model, on shared axes",
            "Regularization impact: train and validation loss (left) and accuracy (right) per "
            "epoch of every model on shared axes.",
        ),
        FigureKind(
            "lr", "run", lr_figure,
            "Learning rate per epoch of every model",
            "Learning rate used in each epoch, per model.",
        ),
        FigureKind(
            "weights", "model", weights_figure,
            "First-layer weights of {n} neurons of the {model} model drawn as 28×28 images",
            "First-layer weights of the {model} model: the 784 input weights of each of {n} "
            "neurons reshaped to 28×28.",
            cnn=FigureKind(
                "weights", "model", weights_figure,
                "First convolutional layer kernels of the {model} model",
                "First convolutional layer of the {model} model: its 3×3 kernels (up to {n} "
                "shown).",
            ),
        ),
        FigureKind(
            "activations", "model", activations_figure,
            "Test image {index} and the first hidden layer activations of the {model} model",
            "Test image {index} and the activations it produces in the first hidden layer of "
            "the {model} model.",
            cnn=FigureKind(
                "activations", "model", feature_maps_figure,
                "Test image {index} and the first convolutional layer feature maps of the "
                "{model} model",
                "Test image {index} and the feature maps it produces in the first convolutional "
                "layer of the {model} model.",
            ),
        ),
        FigureKind(
            "misclassified", "model", misclassified_figure,
            "Grid of {n} misclassified test images of the {model} model with true and "
            "predicted labels",
            "The first {n} misclassified test images of the {model} model, each titled "
            "“True: t, Pred: p”.",
        ),
        FigureKind(
            "curves", "model", curves_figure,
            "Loss and accuracy per epoch of the {model} model, train against validation",
            "Training curves of the {model} model: train and validation loss and accuracy per "
            "epoch.",
        ),
        FigureKind(
            "confusion", "model", confusion_figure,
            "Confusion matrix heatmaps of the {model} model on the test set",
            "Confusion matrix of the {model} model on the test set: rows are true labels, "
            "columns predictions.",
        ),
        FigureKind(
            "class_errors", "model", class_errors_figure,
            "Bar chart of the per-class test error rate of the {model} model",
            "Per-class error rate (1 − recall) of the {model} model on the test set.",
        ),
        FigureKind(
            "reliability", "model", evaluation_figures.reliability_figure,
            "Reliability diagram of the {model} model with the number of test images per "
            "confidence bin, and equal-mass bins before and after temperature scaling",
            "Calibration of the {model} model on the test set. Left: accuracy against "
            "top-class confidence in equal-width bins (the gap to the diagonal hatched in "
            "vermillion), and below, the test images in each bin on a log scale. Right: "
            "equal-mass bins before and after temperature scaling, as error rate against "
            "1 − confidence on log axes, so that confidences near 100% spread out; on the "
            "diagonal the model is calibrated, above it over-confident.",
        ),
        FigureKind(
            "roc", "model", evaluation_figures.roc_figure,
            "One-vs-rest ROC curves per class of the {model} model on a log false-positive axis",
            "One-vs-rest ROC curves of the {model} model, one per class, with the "
            "false-positive rate on a log scale so that near-perfect curves stay apart; the "
            "classes with the lowest AUC are in colour, the others grey.",
        ),
        FigureKind(
            "pr", "model", evaluation_figures.pr_figure,
            "One-vs-rest precision–recall curves per class of the {model} model",
            "One-vs-rest precision–recall curves of the {model} model over the whole range "
            "(left) and zoomed on high recall (right); the classes with the lowest average "
            "precision are in colour, the others grey.",
        ),
        FigureKind(
            "misclassified_attributions", "attribution", evaluation_figures.attribution_figure,
            "Misclassified test images of the {model} model beside Integrated Gradients maps "
            "toward the predicted and the true class",
            "Why the {model} model chose the wrong class: each misclassified image, then "
            "Integrated Gradients toward the predicted class and toward the true class (red "
            "raises the class’s score, blue lowers it, grey is no ink; black-image baseline, "
            "{steps} steps). "
            "Red ink in the middle map that is blue in the right one pushed the model toward "
            "the wrong class. {evidence}",
        ),
        FigureKind(
            "pair_attributions", "pair_attribution", evaluation_figures.attribution_figure,
            "Test images of {true} that the {model} model predicted as {pred}, beside "
            "Integrated Gradients maps toward {pred} and toward {true}",
            "Why the {model} model read {true} as {pred}: each image, then Integrated Gradients "
            "toward {pred} (predicted) and toward {true} (true); red raises the class’s score, "
            "blue lowers it, grey is no ink (black-image baseline, {steps} steps). {evidence}",
        ),
        FigureKind(
            "pair", "pair", pair_figure,
            "Test images of digit {true} that the {model} model predicted as {pred}",
            "True {true}, predicted {pred}: {images} of the {model} model ({why}); {shown} "
            "shown.",
        ),
        FigureKind(
            "compare_history", "compare", compare_history_figure,
            "Validation loss and validation accuracy per epoch of every model of every run",
            "Validation loss (left) and validation accuracy (right) per epoch: one colour per "
            "run, one line style per model.",
        ),
    )
}  # fmt: skip


def kinds(scope: Scope) -> list[FigureKind]:
    """Return the figure kinds of one scope, in the order pages show them."""
    return [figure for figure in FIGURES.values() if figure.scope == scope]


def figure_name(kind: str, model: str = "", *, true: int = 0, pred: int = 0) -> str:
    """Return a figure's name in a run: ``lr``, ``baseline_weights``, ``baseline_pair_4_as_9``."""
    scope = FIGURES[kind].scope
    if scope in ("model", "attribution"):
        return f"{model}_{kind}"
    if scope == "pair":
        return f"{model}_pair_{true}_as_{pred}"
    if scope == "pair_attribution":
        return f"{model}_pair_{true}_as_{pred}_attributions"
    return kind
