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
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure, SubFigure
from matplotlib.font_manager import FontProperties
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
# DejaVu Sans averages about 0.6 em per character: enough to decide where a class name fits.
CHAR_WIDTH_EM = 0.6

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


def _images(value: ArrayLike, name: str, *, one: bool = False) -> np.ndarray:
    """Return uint8 pixels ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB) of any size.

    With ``one``, a single image: ``[H, W]`` or ``[H, W, 3]``.
    """
    pixels = np.asarray(value)
    grey = 2 if one else 3  # dimensions of grey pixels; RGB adds the channel last
    if pixels.dtype != np.uint8 or not (
        pixels.ndim == grey or (pixels.ndim == grey + 1 and pixels.shape[-1] == 3)
    ):
        axes = "H, W" if one else "N, H, W"
        raise ValueError(
            f"{name} must be uint8 pixels [{axes}] (grey) or [{axes}, 3] (RGB); "
            f"got {pixels.dtype} of shape {pixels.shape}"
        )
    return pixels


def _truncate(text: str, width: int, *, middle: bool = False) -> str:
    """Return ``text`` cut to ``width`` characters with "…" at the end (or in the middle)."""
    if len(text) <= width:
        return text
    if not middle:
        return text[: max(width - 1, 1)] + "…"
    tail = max((width - 1) // 3, 1)
    return text[: max(width - 1 - tail, 1)] + "…" + text[-tail:]


def _plain(text: str) -> str:
    """Return ``text`` with its dollar signs escaped, so matplotlib never reads it as math."""
    return text.replace("$", r"\$")


def _short_names(classes: Sequence[str], width: int) -> list[str]:
    """Return the class names cut to ``width`` characters, still telling every class apart.

    Names are cut at the end ("Ankle bo…"); when that makes two alike (names
    that differ only at the end, like "class-name-17"), they are cut in the
    middle instead, which keeps the end.  Names are drawn as written
    (:func:`_plain`).
    """
    names = [_truncate(name, width) for name in classes]
    if len(set(names)) < len(names):
        names = [_truncate(name, width, middle=True) for name in classes]
    return [_plain(name) for name in names]


def _class_labels(classes: Sequence[str], labels: ArrayLike, name: str) -> np.ndarray:
    """Return ``labels`` as int indices after checking each names a class of ``classes``."""
    values = np.asarray(labels, dtype=np.int64).reshape(-1)
    bad = sorted({int(v) for v in values if not 0 <= v < len(classes)})
    if bad:
        raise ValueError(
            f"{name} {bad} are not classes: there are {len(classes)} class names "
            f"(indices 0–{len(classes) - 1})"
        )
    return values


def _class_count(classes: Sequence[str], count: int, what: str) -> None:
    if len(classes) != count:
        raise ValueError(f"classes has {len(classes)} names for {what} of {count} classes")


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


def _grid_height(
    rows: int, columns: int, *, title_lines: int, reserve: float = 0.0, aspect: float = 1.0
) -> float:
    """Return the figure height (in) that fits ``rows`` of panels without blank bands.

    ``reserve`` is the width (in) taken beside the grid, e.g. by a colour bar;
    ``aspect`` is a panel's height over its width (the images' H / W).
    """
    side = (WIDTH_IN - 0.1 - reserve) / columns - 0.1
    return 0.33 + rows * (side * aspect + 0.04 + 0.14 * title_lines)


def _panel_chars(columns: int, *, font_size: float, reserve: float = 0.0) -> int:
    """Return about how many characters of ``font_size`` fit on one line above a grid panel."""
    side_pt = ((WIDTH_IN - 0.1 - reserve) / columns - 0.1) * 72
    return int(side_pt / (CHAR_WIDTH_EM * font_size))


def _show(ax: Axes, image: np.ndarray, *, cmap: str, limits: tuple[float, float]) -> AxesImage:
    """Draw one image: a 2-D one on ``cmap`` within ``limits``, an RGB one ``[H, W, 3]`` as is."""
    if image.ndim == 3:
        return ax.imshow(image)
    return ax.imshow(image, cmap=cmap, vmin=limits[0], vmax=limits[1])


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
    """Draw ``images`` in rows of ``columns`` panels on one colour scale; return one image, axes.

    Grey images ``[n, H, W]`` use ``cmap`` and ``limits``; RGB ``[n, H, W, 3]`` are drawn as is.
    """
    rows = math.ceil(len(images) / columns)
    axes = fig.subplots(rows, columns, squeeze=False)
    drawn = []
    for position, ax in enumerate(axes.flat):
        if position < len(images):
            drawn.append(_show(ax, images[position], cmap=cmap, limits=limits))
            ax.set_title(titles[position], fontsize=title_size)
            _image_axes(ax)
        else:
            ax.set_visible(False)
    return drawn[0], axes


TITLE_LINE_IN = 0.2  # height of one more title line


def _title_width_in(text: str) -> float:
    """Return the width (in) of ``text`` set as a figure title, measured with the title's font."""
    font = FontProperties(family=STYLE["font.sans-serif"], size=STYLE["figure.titlesize"],
                          weight=STYLE["figure.titleweight"])  # fmt: skip
    width, _, _ = RendererAgg(1, 1, 72).get_text_width_height_descent(text, font, ismath=False)
    return width / 72


def _title(*parts: str) -> str:
    """Return ``parts`` joined by spaces, starting a new line where one would overflow the width.

    Class and model names make titles of any length; a part longer than a
    line still gets a line of its own.
    """
    lines = [parts[0]]
    for part in parts[1:]:
        if _title_width_in(f"{lines[-1]} {part}") > WIDTH_IN - 0.2:
            lines.append(part)
        else:
            lines[-1] += " " + part
    return "\n".join(lines)


def _message(fig: Figure, message: str, *, title: str) -> Figure:
    """Fill ``fig`` with one centred sentence instead of an empty chart."""
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, transform=ax.transAxes)
    fig.suptitle(title)
    return fig


@_styled
def notice_figure(message: str, *, title: str) -> Figure:
    """Draw one sentence in place of a figure that cannot apply (e.g. to a user's network)."""
    return _message(_figure(1.0), message, title=title)


def _epoch_axis(ax: Axes) -> None:
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
        _epoch_axis(ax)


# --------------------------------------------------------------------------- per model


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


@_styled
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
    array = _array(weights, "weights", ndim=(2, 3, 4)).astype(np.float64)
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
        fig = _figure(_grid_height(rows, max(columns, 5), title_lines=1, reserve=0.85,
                                   aspect=aspect))  # fmt: skip
        image, axes = _image_grid(fig, images[:, 0], titles, columns=columns, cmap=WEIGHT_CMAP,
                                  limits=(-limit, limit), title_size=8)  # fmt: skip
        fig.colorbar(image, ax=axes, shrink=0.85, label="weight", aspect=25)
        fig.suptitle(title)
        return fig
    fig = _figure(_grid_height(rows, max(columns, 5), title_lines=1, aspect=aspect) + 0.2)
    _image_grid(fig, _signed_colours(images, limit), titles, columns=columns, title_size=8)
    fig.suptitle(f"{title}\nRGB channels on one scale: mid-grey is 0, full colour ±{limit:.3g}")
    return fig


def _bar_width_pt(count: int) -> float:
    """Return a line width (pt) that makes ``count`` vertical lines fill the bar-chart width."""
    plot_width_pt = WIDTH_IN * 0.7 * 72
    return max(0.3, min(4.0, 0.85 * plot_width_pt / max(count, 1)))


SAMPLE_TITLE_CHARS = 22  # characters of 8 pt that fit on a line above the sample image
MAX_MAPS = 32  # feature maps drawn at most; the title says how many there are


def _sample_title(index: int, label: int, prediction: int, classes: Sequence[str]) -> str:
    """Return the sample image's title: its test position, true and predicted class names."""
    _class_labels(classes, [label, prediction], "label and prediction")
    line = f"true {classes[label]} · predicted {classes[prediction]}"
    if len(line) <= SAMPLE_TITLE_CHARS:
        return f"Test image #{index}\n{_plain(line)}"
    names = _short_names(classes, SAMPLE_TITLE_CHARS - len("true: "))
    return f"Test image #{index}\ntrue: {names[label]}\npred: {names[prediction]}"


def _sample_image(ax: Axes, image: np.ndarray, title: str) -> None:
    _show(ax, image, cmap=DIGIT_CMAP, limits=(0, 255))
    ax.set_title(title, fontsize=8)
    _image_axes(ax)


@_styled
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
    pixels = _images(image, "image", one=True)
    after = _array(post, "post", ndim=1).astype(np.float64)
    before = None if pre is None else _array(pre, "pre", ndim=1).astype(np.float64)
    if before is not None:
        _same_length(pre=before, post=after)
    title = _sample_title(index, label, prediction, classes)
    fig = _figure(3.3 if before is not None else 2.5)
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


@_styled
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
    pixels = _images(image, "image", one=True)
    activations = _array(maps, "maps", ndim=3).astype(np.float64)
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    total = len(activations)
    activations = activations[:limit]
    columns = min(columns, len(activations))
    rows = math.ceil(len(activations) / columns)
    fig = _figure(0.45 + rows * 0.72)
    panels = fig.subfigures(1, 2, width_ratios=(1, 4.2), squeeze=False)
    left, right = panels[0, 0], panels[0, 1]
    _sample_image(left.subplots(), pixels, _sample_title(index, label, prediction, classes))
    finite = activations[np.isfinite(activations)]
    low = min(float(finite.min()), 0.0) if finite.size else 0.0
    top = float(finite.max()) if finite.size else 0.0
    top = top if top > low else low + 1.0
    titles = [f"Map {k}" for k in range(len(activations))]
    shown, axes = _image_grid(right, activations, titles, columns=columns, cmap=MAP_CMAP,
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


@_styled
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
    pixels = _images(images, "images")
    true = _array(labels, "labels", ndim=1)
    pred = _array(predictions, "predictions", ndim=1)
    prob = _array(confidence, "confidence", ndim=1)
    _same_length(images=pixels, labels=true, predictions=pred, confidence=prob)
    _class_labels(classes, true, "labels")
    _class_labels(classes, pred, "predictions")
    title = f"{model}: misclassified test images"
    if len(pixels) == 0:
        return _message(_figure(1.2), "no test image was misclassified", title=title)
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    aspect = pixels.shape[1] / pixels.shape[2]
    title = _title(title, f"(first {len(pixels)} of {total}, lowest test index first)")
    more = TITLE_LINE_IN * title.count("\n")
    fig = _figure(_grid_height(rows, max(columns, 5), title_lines=3, aspect=aspect) + more)
    names = _short_names(classes, _panel_chars(max(columns, 5), font_size=7.5) - len("True: "))
    titles = [
        f"True: {names[t]}\nPred: {names[p]}\np={c:.2f}"
        for t, p, c in zip(true, pred, prob, strict=True)
    ]
    _image_grid(fig, pixels, titles, columns=columns)
    fig.suptitle(title)
    return fig


PAIR_NAME_CHARS = 24  # a name in the gallery's title


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
    pixels = _images(images, "images")
    positions = _array(indices, "indices", ndim=1)
    prob = _array(confidence, "confidence", ndim=1)
    _same_length(images=pixels, indices=positions, confidence=prob)
    _class_labels(classes, [true, pred], "true and pred")
    names = _short_names(classes, PAIR_NAME_CHARS)
    true_name, pred_name = names[true], names[pred]
    parts = (f"{model}: true {true_name}", f"predicted as {pred_name}")
    if len(pixels) == 0:
        message = f"no test image of {true_name} was predicted as {pred_name}"
        return _message(_figure(1.0), message, title=_title(*parts))
    columns = min(columns, len(pixels))
    rows = math.ceil(len(pixels) / columns)
    aspect = pixels.shape[1] / pixels.shape[2]
    images_word = "image" if total == 1 else "images"
    title = _title(*parts, f"({total} test {images_word}, {len(pixels)} shown)")
    more = TITLE_LINE_IN * title.count("\n")
    fig = _figure(_grid_height(rows, max(columns, 6), title_lines=2, aspect=aspect) + more)
    titles = [f"#{i}\np={c:.2f}" for i, c in zip(positions, prob, strict=True)]
    _image_grid(fig, pixels, titles, columns=columns)
    fig.suptitle(title)
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


# How the class axes adapt to the number of classes: names stay legible, long ones end in
# "…" (the report's tables hold them in full).
SIDE_BY_SIDE_CLASSES = 12  # up to here both heatmaps sit side by side, values at 5.5 pt
ANNOTATED_CLASSES = 20  # up to here cells show their values (smaller above 12 classes)
ROTATED_CLASSES = 20  # from here column names stand vertical
NAMED_CLASSES = 60  # above this, ticks show every n-th class index instead of names
NAME_CHARS = 12  # a class name on a side-by-side heatmap's axis
STACKED_NAME_CHARS = 20  # on a full-width heatmap's axis or a horizontal bar chart's
MAX_INDEX_TICKS = 20


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _text_in(chars: int, font_size: float) -> float:
    """Return about how wide (in) ``chars`` characters of ``font_size`` are."""
    return chars * CHAR_WIDTH_EM * font_size / 72


@dataclass(frozen=True)
class _ClassAxes:
    """How a heatmap's class axes are labelled: tick labels, font sizes, rotation, figure height."""

    ticks: list[str] | int  # the names, or a step: every n-th class index
    size: tuple[float, float]  # tick font size (pt) of the x and y axes
    rotation: float  # of the x tick labels
    height: float  # the figure's (in)


def _confusion_axes(classes: Sequence[str], *, stacked: bool) -> _ClassAxes:
    """Return the class axes of the confusion heatmaps for ``classes``: legible at any count."""
    k = len(classes)
    if k > NAMED_CLASSES:
        step = math.ceil(k / MAX_INDEX_TICKS)
        return _ClassAxes(step, (7.0, 7.0), 0.0, 0.35 + 2 * (5.0 + 0.8))
    names = _short_names(classes, STACKED_NAME_CHARS if stacked else NAME_CHARS)
    longest = max(len(name) for name in names)
    if stacked:  # one heatmap per row, full width; cells need not be square
        panel = _clamp(0.12 * k, 2.4, 5.0)
        y_size = _clamp(0.8 * panel * 72 / k, 4.0, 7.5)
        width = WIDTH_IN - 0.25 - _text_in(longest, y_size) - 0.9  # less y labels, colour bar
    else:  # two square heatmaps side by side
        panel, y_size = 0.0, 7.5
        width = WIDTH_IN / 2 - 0.25 - _text_in(longest, y_size) - 0.55
    cell_pt = width * 72 / k
    x_size = _clamp(0.8 * cell_pt, 4.0, 7.5)
    rotated = k >= ROTATED_CLASSES or longest * CHAR_WIDTH_EM * x_size > 0.9 * cell_pt
    extent = _text_in(longest, x_size) - x_size / 72 if rotated else 0.0  # beyond one line
    if stacked:
        height = 0.35 + 2 * (panel + 0.75 + extent)
    else:  # 3.3 in fit square heatmaps with one-character names; longer names narrow them
        height = 3.3 + extent - (_text_in(longest, y_size) - _text_in(1, y_size))
    return _ClassAxes(names, (x_size, y_size), 90.0 if rotated else 0.0, height)


@_styled
def confusion_figure(matrix: ArrayLike, *, model: str, classes: Sequence[str]) -> Figure:
    """Draw the confusion matrix as counts and row-normalized heatmaps, classes named.

    Parameters
    ----------
    matrix : array-like of int, shape (k, k)
        Counts; rows are true classes, columns predictions.
    model : str
        Model name for the title.
    classes : sequence of str, length k
        Class names in index order, for the tick labels.

    Returns
    -------
    Figure
        Two heatmaps.  Counts are coloured on a log scale so that the few
        errors stay visible beside the large diagonal; the second panel shows
        each cell as a percentage of its true class.  Empty cells are left
        blank.  Up to 12 classes the panels sit side by side with every
        value written in; above, they are stacked at full width and the
        figure grows with the classes, values shrink (up to 20 classes) or
        are left out, column names stand vertical from 20 classes, names
        longer than the axis allows end in "…", and above 60 classes the
        ticks show every n-th class index instead.
    """
    counts = _array(matrix, "matrix", ndim=2)
    if counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (true × predicted); got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("matrix must hold non-negative counts")
    k = len(counts)
    _class_count(classes, k, "a confusion matrix")
    stacked = k > SIDE_BY_SIDE_CLASSES
    axes_style = _confusion_axes(classes, stacked=stacked)
    support = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts * 100.0, support, out=np.zeros(counts.shape), where=support > 0)
    fig = _figure(axes_style.height)
    ax_counts, ax_norm = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
    annotate = k <= ANNOTATED_CLASSES
    annotation = {"fontsize": 5.5 if k <= SIDE_BY_SIDE_CLASSES else 4.0}
    colorbar = {"shrink": 0.8, "fraction": 0.05, "pad": 0.03}
    ticks = {"xticklabels": axes_style.ticks, "yticklabels": axes_style.ticks}
    sns.heatmap(
        counts, ax=ax_counts, cmap=HEATMAP_CMAP, norm=LogNorm(vmin=0.7, vmax=max(2, counts.max())),
        mask=counts == 0, annot=_nonzero_labels(counts, "d") if annotate else False, fmt="",
        annot_kws=annotation, square=not stacked,
        cbar_kws={"label": "images (log scale)", **colorbar}, **ticks,
    )  # fmt: skip
    sns.heatmap(
        percent, ax=ax_norm, cmap=HEATMAP_CMAP, vmin=0, vmax=100, mask=counts == 0,
        annot=_nonzero_labels(percent, ".1f") if annotate else False, fmt="",
        annot_kws=annotation, square=not stacked, cbar_kws={"label": "% of true class", **colorbar},
        **ticks,
    )  # fmt: skip
    suffix = " (index)" if isinstance(axes_style.ticks, int) else ""
    for ax, title in ((ax_counts, "Counts"), (ax_norm, "Row-normalized (%)")):
        ax.collections[0].colorbar.ax.minorticks_off()  # log minor ticks: clutter and time
        ax.set_title(title)
        ax.set_xlabel("predicted label" + suffix)
        ax.set_ylabel("true label" + suffix)
        ax.tick_params(length=0)
        ax.tick_params(axis="x", rotation=axes_style.rotation, labelsize=axes_style.size[0])
        ax.tick_params(axis="y", rotation=0, labelsize=axes_style.size[1])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(f"{model}: confusion matrix on the test set")
    return fig


VERTICAL_BAR_CLASSES = 12  # up to here one vertical bar per class; above, horizontal bars
WORST_NAME_CHARS = 20  # three such names fit one title line
BAR_NAME_CHARS = 30  # a name beside a horizontal bar: a quarter of the width at most


@_styled
def class_errors_figure(
    error_rates: ArrayLike, *, model: str, classes: Sequence[str], worst: Sequence[int] = ()
) -> Figure:
    """Draw the per-class error rate (1 − recall) as bars, the worst classes highlighted.

    Parameters
    ----------
    error_rates : array-like of float, shape (k,)
        Error rate of class ``0 … k-1``, as fractions.
    model : str
        Model name for the title.
    classes : sequence of str, length k
        Class names in index order, for the class axis.
    worst : sequence of int
        Class indices to highlight (the pipeline passes the three worst).

    Returns
    -------
    Figure
        One bar per class, labelled with its percentage: vertical bars up to
        12 classes (names slanted when they do not fit), horizontal bars in
        class order above, the figure growing with the classes.  Names longer
        than the axis allows end in "…".
    """
    rates = _array(error_rates, "error_rates", ndim=1).astype(np.float64)
    positions = np.arange(len(rates))
    _class_count(classes, len(rates), "error rates")
    bad = [w for w in worst if not 0 <= w < len(rates)]
    if bad:
        raise ValueError(f"worst classes {bad} are not labels 0–{len(rates) - 1}")
    highlighted = np.isin(positions, list(worst))
    colors = np.where(highlighted, HIGHLIGHT, MUTED)
    values = [f"{r * 100:.1f}" for r in rates]
    top = max(float(rates.max(initial=0.0)) * 1.18, 0.01)
    percent = PercentFormatter(xmax=1.0, decimals=1)
    short = _short_names(classes, WORST_NAME_CHARS)
    named = ", ".join(short[w] for w in worst)
    title = _title(f"{model}: per-class error rate", *([f"(worst: {named})"] if named else []))
    more = TITLE_LINE_IN * title.count("\n")
    if len(rates) <= VERTICAL_BAR_CLASSES:
        names = _short_names(classes, NAME_CHARS)
        longest = max(len(name) for name in names)
        slanted = _text_in(longest, 7.5) > 0.9 * WIDTH_IN * 0.8 / len(rates)
        fig = _figure(2.5 + more + (0.7 * _text_in(longest, 7.5) if slanted else 0.0))
        ax = fig.subplots()
        bars = ax.bar(positions, rates, color=colors, width=0.7)
        ax.bar_label(bars, labels=values, fontsize=7, padding=1.5)
        if slanted:
            ax.set_xticks(positions, names, rotation=45, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(positions, names)
        ax.set_xlabel("true class")
        ax.set_ylabel("error rate (1 − recall)")
        ax.yaxis.set_major_formatter(percent)
        ax.set_ylim(0, top)
        ax.grid(axis="x", visible=False)
    else:
        row_in, size = (0.16, 7.0) if len(rates) <= NAMED_CLASSES else (0.11, 5.0)
        fig = _figure(0.9 + more + row_in * len(rates))
        ax = fig.subplots()
        bars = ax.barh(positions, rates, color=colors, height=0.7)
        ax.bar_label(bars, labels=values, fontsize=size - 0.5, padding=1.5)
        names = _short_names(classes, BAR_NAME_CHARS)
        ax.set_yticks(positions, names, fontsize=size)
        ax.set_ylim(len(rates) - 0.5, -0.5)  # class 0 at the top, as in the tables
        ax.set_ylabel("true class")
        ax.set_xlabel("error rate (1 − recall)")
        ax.xaxis.set_major_formatter(percent)
        ax.set_xlim(0, top)
        ax.grid(axis="y", visible=False)
    ax.legend(
        handles=[Patch(color=HIGHLIGHT, label="worst classes"), Patch(color=MUTED, label="others")],
        loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2,
    )  # fmt: skip
    fig.suptitle(title)
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
Scope = Literal["run", "model", "pair", "compare", "sweep", "attribution", "pair_attribution"]


@dataclass(frozen=True)
class FigureKind:
    """One kind of figure: what draws it, and how a page describes it.

    ``alt`` and ``caption`` are :meth:`str.format` templates; the page showing
    the figure fills the slots its kind uses: ``{model}``, ``{n}`` (units or
    images shown), ``{index}`` (the test image), ``{true}`` and ``{pred}``
    (class names), ``{images}`` (the pair's test images, counted), ``{why}``,
    ``{shown}``, and for a network of the user's (``python`` variants)
    ``{layer}`` (the module drawn, as ``named_modules()`` names it).
    """

    kind: str
    scope: Scope  # one figure per run, per model, per confused pair, or per comparison
    build: Callable[..., Figure]
    alt: str
    caption: str
    cnn: FigureKind | None = None  # the variant for a CNN, whose first layer is convolutional
    python: FigureKind | None = None  # the variant for a network of the user's (model.factory)

    def for_network(self, network: str) -> FigureKind:
        """Return the variant of this kind for a network of ``network`` kind ("mlp", "cnn", …)."""
        if network == "python" and self.python is not None:
            return self.python
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
            "First-layer weights of {n} neurons of the {model} model drawn as images",
            "First-layer weights of the {model} model: the input weights of each of {n} "
            "neurons reshaped to the image's shape.",
            cnn=FigureKind(
                "weights", "model", weights_figure,
                "First convolutional layer kernels of the {model} model",
                "First convolutional layer of the {model} model: its kernels (up to {n} shown).",
            ),
            python=FigureKind(
                "weights", "model", weights_figure,
                "Weights of the first layer ({layer}) of the {model} model drawn as images",
                "First layer ({layer}) of the {model} model: up to {n} of its neurons' input "
                "weights reshaped to the image's shape, or of its convolution kernels.",
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
            python=FigureKind(
                "activations", "model", layer_output_figure,
                "Test image {index} and the output of module {layer} of the {model} model",
                "Test image {index} and the output it produces in module {layer} of the {model} "
                "model: one bar per unit, or one map per channel.",
            ),
        ),
        FigureKind(
            "misclassified", "model", misclassified_figure,
            "Grid of {n} misclassified test images of the {model} model with true and "
            "predicted classes",
            "The first {n} misclassified test images of the {model} model, each titled with "
            "its true class, the predicted class and the probability the model gave it.",
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
            "Confusion matrix of the {model} model on the test set: rows are true classes, "
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
            "Test images of class {true} that the {model} model predicted as {pred}",
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
