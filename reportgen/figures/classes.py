"""Per-class figures: the confusion matrix, its most confused classes, the per-class error chart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import seaborn as sns
from matplotlib import colormaps as mpl_colormaps
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike

from reportgen.artifacts.catalogue import MANY_CLASSES
from reportgen.evaluate.confusion import confusion_order, most_confused_classes
from reportgen.figures.checks import check_array, check_class_count
from reportgen.figures.style import (
    CHAR_WIDTH_EM,
    HEATMAP_CMAP,
    HIGHLIGHT,
    MUTED,
    TITLE_LINE_IN,
    WIDTH_IN,
    new_figure,
    short_names,
    styled,
    wrapped_title,
)


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


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _text_in(chars: int, font_size: float) -> float:
    """Return about how wide (in) ``chars`` characters of ``font_size`` are."""
    return chars * CHAR_WIDTH_EM * font_size / 72


@dataclass(frozen=True)
class _ClassAxes:
    """How a heatmap's class axes are labelled: tick labels, font sizes, rotation, figure height."""

    ticks: list[str]  # the names
    size: tuple[float, float]  # tick font size (pt) of the x and y axes
    rotation: float  # of the x tick labels
    height: float  # the figure's (in)


def _confusion_axes(classes: Sequence[str], *, stacked: bool) -> _ClassAxes:
    """Return the class axes of the confusion heatmaps for ``classes``: legible at any count."""
    k = len(classes)
    names = short_names(classes, STACKED_NAME_CHARS if stacked else NAME_CHARS)
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


@styled
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
        are left out, column names stand vertical from 20 classes, and names
        longer than the axis allows end in "…".  Above
        :data:`~reportgen.artifacts.catalogue.MANY_CLASSES` classes, one
        heatmap of the counts in :func:`~reportgen.evaluate.confusion.confusion_order`
        instead (:func:`reordered_confusion_figure`).
    """
    counts = _square_counts(matrix)
    k = len(counts)
    check_class_count(classes, k, "a confusion matrix")
    if k > MANY_CLASSES:
        return reordered_confusion_figure(
            counts, model=model, classes=classes, order=confusion_order(counts)
        )
    stacked = k > SIDE_BY_SIDE_CLASSES
    axes_style = _confusion_axes(classes, stacked=stacked)
    support = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts * 100.0, support, out=np.zeros(counts.shape), where=support > 0)
    fig = new_figure(axes_style.height)
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
    for ax, title in ((ax_counts, "Counts"), (ax_norm, "Row-normalized (%)")):
        ax.collections[0].colorbar.ax.minorticks_off()  # log minor ticks: clutter and time
        ax.set_title(title)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.tick_params(length=0)
        ax.tick_params(axis="x", rotation=axes_style.rotation, labelsize=axes_style.size[0])
        ax.tick_params(axis="y", rotation=0, labelsize=axes_style.size[1])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.suptitle(f"{model}: confusion matrix on the test set")
    return fig


def _square_counts(matrix: ArrayLike) -> np.ndarray:
    counts = check_array(matrix, "matrix", ndim=2)
    if counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square (true × predicted); got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("matrix must hold non-negative counts")
    return counts


# Counts on a log scale from 1: the map starts at a visible blue, so that a single image
# stands out from an empty (white) cell even where a cell is a pixel or two wide.
COUNT_CMAP = ListedColormap(mpl_colormaps[HEATMAP_CMAP](np.linspace(0.25, 1.0, 256)))
MIN_TICK_PT = 4.5  # the smallest class name on a reordered matrix's axes
MAX_SIDE_IN = 5.0  # of a reordered matrix: square, beside its names and colour bar


@dataclass(frozen=True)
class _ThinnedTicks:
    """Which positions of a class axis are named, and how large: as many as fit, evenly."""

    positions: list[int]
    size: float  # font size (pt)
    step: int  # every n-th position is named


def _thinned_ticks(k: int, side_in: float) -> _ThinnedTicks:
    cell_pt = side_in * 72 / k
    size = _clamp(0.8 * cell_pt, MIN_TICK_PT, 7.0)
    step = max(1, math.ceil(1.15 * size / cell_pt))  # a name's line and a little air
    return _ThinnedTicks(list(range(0, k, step)), size, step)


def _count_norm(counts: np.ndarray) -> LogNorm:
    return LogNorm(vmin=1, vmax=max(2, int(counts.max())))


@styled
def reordered_confusion_figure(
    matrix: ArrayLike, *, model: str, classes: Sequence[str], order: Sequence[int]
) -> Figure:
    """Draw a confusion matrix of many classes, rows and columns in ``order``, without values.

    Parameters
    ----------
    matrix : array-like of int, shape (k, k)
        Counts; rows are true classes, columns predictions, in index order.
    model : str
        Model name for the title.
    classes : sequence of str, length k
        Class names in index order.
    order : sequence of int
        Every class index once: the order of the rows and columns drawn
        (:func:`~reportgen.evaluate.confusion.confusion_order` puts confused
        classes side by side).

    Returns
    -------
    Figure
        One square heatmap of the counts on a log colour scale, empty cells
        white and no cell values; as many class names (cut to 20 characters)
        as fit the axes, evenly spaced, the axis labels saying which.
    """
    counts = _square_counts(matrix)
    k = len(counts)
    check_class_count(classes, k, "a confusion matrix")
    position = np.asarray(order, dtype=np.int64)
    if sorted(position.tolist()) != list(range(k)):
        raise ValueError(f"order must hold every class index 0–{k - 1} once")
    names = short_names(classes, STACKED_NAME_CHARS)
    ordered = counts[np.ix_(position, position)]
    longest = max(len(name) for name in names)
    guess = _thinned_ticks(k, MAX_SIDE_IN)
    side = min(MAX_SIDE_IN, WIDTH_IN - _text_in(longest, guess.size) - 0.3 - 1.0)
    ticks = _thinned_ticks(k, side)
    labels = [names[position[i]] for i in ticks.positions]
    title = wrapped_title(
        f"{model}: confusion matrix on the test set", f"({k} classes, confused ones side by side)"
    )
    height = side + _text_in(longest, ticks.size) + 0.75 + TITLE_LINE_IN * title.count("\n")
    fig = new_figure(height)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_equal(ordered, 0), cmap=COUNT_CMAP, norm=_count_norm(ordered),
                      interpolation="nearest", aspect="equal")  # fmt: skip
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8, fraction=0.05, pad=0.03)
    colorbar.set_label("images (log scale)")
    colorbar.ax.minorticks_off()
    ax.set_xticks(ticks.positions, labels, rotation=90, fontsize=ticks.size)
    ax.set_yticks(ticks.positions, labels, fontsize=ticks.size)
    which = "" if ticks.step == 1 else f" (every {_ordinal(ticks.step)} named)"
    ax.set_xlabel("predicted class" + which)
    ax.set_ylabel("true class" + which)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title)
    return fig


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@styled
def confused_classes_figure(matrix: ArrayLike, *, model: str, classes: Sequence[str]) -> Figure:
    """Draw the sub-matrix of the most confused classes, named, every count written in.

    Parameters
    ----------
    matrix : array-like of int, shape (k, k)
        Counts; rows are true classes, columns predictions.
    model : str
        Model name for the title.
    classes : sequence of str, length k
        Class names in index order.

    Returns
    -------
    Figure
        One square heatmap of the classes of the largest confusions
        (:func:`~reportgen.evaluate.confusion.most_confused_classes`, up to
        15), in the order of the full reordered matrix: names cut to 20
        characters, every non-empty cell's count written in, a log colour
        scale.  A matrix with no confusion has nothing to show (ValueError).
    """
    counts = _square_counts(matrix)
    check_class_count(classes, len(counts), "a confusion matrix")
    shown = most_confused_classes(counts)
    if not shown:
        raise ValueError("matrix has no off-diagonal count: no class is confused with another")
    sub = counts[np.ix_(shown, shown)]
    names = short_names([classes[label] for label in shown], STACKED_NAME_CHARS)
    longest = _text_in(max(len(name) for name in names), 7.5)
    side = min(4.0, WIDTH_IN - longest - 0.3 - 1.0)
    title = wrapped_title(
        f"{model}: the {len(shown)} most confused classes", f"of {len(counts)} (test set)"
    )
    fig = new_figure(side + longest + 0.75 + TITLE_LINE_IN * title.count("\n"))
    ax = fig.subplots()
    sns.heatmap(
        sub, ax=ax, cmap=COUNT_CMAP, norm=_count_norm(sub), mask=sub == 0,
        annot=_nonzero_labels(sub, "d"), fmt="", annot_kws={"fontsize": 6.0}, square=True,
        xticklabels=names, yticklabels=names, cbar=False,
    )  # fmt: skip
    colorbar = fig.colorbar(ax.collections[0], ax=ax, shrink=0.8, fraction=0.05, pad=0.03)
    colorbar.set_label("images (log scale)")
    colorbar.ax.minorticks_off()
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(length=0)
    ax.tick_params(axis="x", rotation=90, labelsize=7.5)
    ax.tick_params(axis="y", rotation=0, labelsize=7.5)
    ax.grid(False)
    fig.suptitle(title)
    return fig


VERTICAL_BAR_CLASSES = 12  # up to here one vertical bar per class; above, horizontal bars
WORST_NAME_CHARS = 20  # three such names fit one title line


BAR_NAME_CHARS = 30  # a name beside a horizontal bar: a quarter of the width at most


def highest_error_classes(
    error_rates: np.ndarray, support: np.ndarray, classes: Sequence[str], limit: int
) -> np.ndarray:
    """Return the ``limit`` classes of highest error rate, highest first, as class indices.

    Ranked as the report's per-class errors table ranks them: ties go to the
    class with more test images, then by name.
    """
    rank = lambda label: (-error_rates[label], -support[label], classes[label])  # noqa: E731
    order = sorted(range(len(error_rates)), key=rank)
    return np.asarray(order[:limit], dtype=np.int64)


@styled
def class_errors_figure(
    error_rates: ArrayLike,
    *,
    model: str,
    classes: Sequence[str],
    worst: Sequence[int] = (),
    support: ArrayLike | None = None,
    limit: int | None = None,
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
    support : array-like of int, shape (k,), optional
        Test images of each class: the first tie-break of the ranking below
        (without it, ties go by name).
    limit : int, optional
        With more classes than this (the pipeline passes ``report.table_rows``),
        only the ``limit`` of highest error rate, ranked as the report's
        per-class errors table (:func:`highest_error_classes`), highest at the
        top; the class axis says how many of how many are shown.

    Returns
    -------
    Figure
        One bar per class shown, labelled with its percentage: vertical bars up
        to 12 classes (names slanted when they do not fit), horizontal bars
        above, the figure growing with the classes shown, never with the
        classes left out.  Names longer than the axis allows end in "…".
    """
    rates = check_array(error_rates, "error_rates", ndim=1).astype(np.float64)
    check_class_count(classes, len(rates), "error rates")
    bad = [w for w in worst if not 0 <= w < len(rates)]
    if bad:
        raise ValueError(f"worst classes {bad} are not labels 0–{len(rates) - 1}")
    counts = np.zeros(len(rates), np.int64) if support is None else np.asarray(support, np.int64)
    if counts.shape != rates.shape:
        raise ValueError(f"support must be [{len(rates)}] (one per class); got {counts.shape}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    cut = limit is not None and len(rates) > limit
    shown = (highest_error_classes(rates, counts, classes, limit) if cut and limit is not None
             else np.arange(len(rates)))  # fmt: skip
    class_axis = f"true class ({len(shown)} of {len(rates):,} classes)" if cut else "true class"
    positions = np.arange(len(shown))
    colors = np.where(np.isin(shown, list(worst)), HIGHLIGHT, MUTED)
    values = [f"{r * 100:.1f}" for r in rates[shown]]
    top = max(float(rates.max(initial=0.0)) * 1.18, 0.01)
    percent = PercentFormatter(xmax=1.0, decimals=1)
    short = short_names(classes, WORST_NAME_CHARS)
    named = ", ".join(short[w] for w in worst)
    title = wrapped_title(
        f"{model}: per-class error rate", *([f"(worst: {named})"] if named else [])
    )
    more = TITLE_LINE_IN * title.count("\n")
    if len(shown) <= VERTICAL_BAR_CLASSES:
        names = np.asarray(short_names(classes, NAME_CHARS), dtype=object)[shown].tolist()
        longest = max(len(name) for name in names)
        slanted = _text_in(longest, 7.5) > 0.9 * WIDTH_IN * 0.8 / len(shown)
        fig = new_figure(2.5 + more + (0.7 * _text_in(longest, 7.5) if slanted else 0.0))
        ax = fig.subplots()
        bars = ax.bar(positions, rates[shown], color=colors, width=0.7)
        ax.bar_label(bars, labels=values, fontsize=7, padding=1.5)
        if slanted:
            ax.set_xticks(positions, names, rotation=45, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(positions, names)
        ax.set_xlabel(class_axis)
        ax.set_ylabel("error rate (1 − recall)")
        ax.yaxis.set_major_formatter(percent)
        ax.set_ylim(0, top)
        ax.grid(axis="x", visible=False)
    else:
        row_in, size = (0.16, 7.0) if len(shown) <= NAMED_CLASSES else (0.11, 5.0)
        fig = new_figure(0.9 + more + row_in * len(shown))
        ax = fig.subplots()
        bars = ax.barh(positions, rates[shown], color=colors, height=0.7)
        ax.bar_label(bars, labels=values, fontsize=size - 0.5, padding=1.5)
        names = np.asarray(short_names(classes, BAR_NAME_CHARS), dtype=object)[shown].tolist()
        ax.set_yticks(positions, names, fontsize=size)
        ax.set_ylim(len(shown) - 0.5, -0.5)  # the first shown at the top, as in the tables
        ax.set_ylabel(class_axis)
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
