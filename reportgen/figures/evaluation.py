"""Figures of the deeper evaluation: the reliability diagram, ROC and precision–recall curves.

Pure functions from plain data to a :class:`matplotlib.figure.Figure`.  Class
names label everything, and the curves stay readable with many classes: the
worst few are drawn in colour and named, the rest in light grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

# Imported last: reportgen.figures imports this module for its registry, and
# this module needs that one's style only when a figure is drawn.
from reportgen.core.text import truncate
from reportgen.evaluate.calibration import Bins
from reportgen.evaluate.ranking import Curve
from reportgen.figures import panels, style

HIGHLIGHTED = 3  # classes drawn in colour and named in a curve figure's legend
OTHERS = "#c8c8c8"  # every other class: light grey, behind the highlighted ones
NAME_CHARS = 13  # longer class names are shortened in panel titles (6 pt, 0.64 in wide)
LEGEND_CHARS = 28  # … and in legends


def _reliability_panel(ax: Axes, bins: Bins) -> None:
    filled = bins.count > 0
    centres = (bins.low + bins.high) / 2
    width = float(bins.high[0] - bins.low[0])
    ax.bar(centres[filled], bins.accuracy[filled], width=width * 0.92, color=style.MUTED,
           label="accuracy")  # fmt: skip
    gap_low = np.minimum(bins.accuracy, bins.confidence)[filled]
    gap = np.abs(bins.accuracy - bins.confidence)[filled]
    ax.bar(centres[filled], gap, bottom=gap_low, width=width * 0.92, facecolor="none",
           edgecolor=style.HIGHLIGHT, hatch="////", linewidth=0.6,
           label="gap to mean confidence")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="#444444", linestyle="--", linewidth=0.8, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    # Framed: a low-confidence bin that is right can reach the top left corner.
    ax.legend(loc="upper left", frameon=True, framealpha=0.9, edgecolor="none")


def _counts_panel(ax: Axes, bins: Bins) -> None:
    filled = bins.count > 0
    centres = (bins.low + bins.high) / 2
    width = float(bins.high[0] - bins.low[0])
    bars = ax.bar(centres[filled], bins.count[filled], width=width * 0.92, color="#777777")
    ax.bar_label(bars, labels=[f"{c:,}" for c in bins.count[filled]], fontsize=6, padding=1)
    ax.set_yscale("log")
    ax.set_ylim(0.7, max(10.0, float(bins.count.max()) * 8))
    ax.set_ylabel("images\n(log scale)")
    ax.set_xlabel("top-class confidence")
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.grid(axis="x", visible=False)
    ax.minorticks_off()


def _error_panel(ax: Axes, before: Bins, after: Bins | None, *, temperature: float | None) -> None:
    """Draw equal-mass bins as error rate against 1 − confidence, both on log axes.

    A confident model's bins all sit above 99% confidence, where a linear
    axis stacks them on one point; on log axes of the error rates each bin
    has its place, and the diagonal is still "calibrated" (above it,
    over-confident).  A bin without errors is drawn at the bottom edge as an
    open triangle.  Without ``after`` (no temperature fitted), only ``before``.
    """
    drawn = [before] if after is None else [before, after]
    sets = []
    for bins in drawn:
        filled = bins.count > 0
        sets.append((1.0 - bins.confidence[filled], 1.0 - bins.accuracy[filled]))
    # Below half an error in the largest bin nothing can be told apart: both
    # axes start a decade under it, and smaller values are drawn at the edge.
    largest = max(*(int(bins.count.max()) for bins in drawn), 1)
    floor = 10 ** math.floor(math.log10(0.5 / largest))
    styles = [(f"before scaling (ECE {100 * before.expected_error:.2f}%)", style.MUTED, "o")]
    if after is not None:
        styles.append((f"after T = {temperature or 1.0:.2f} (ECE "
                       f"{100 * after.expected_error:.2f}%)", style.HIGHLIGHT, "s"))  # fmt: skip
    for (expected, observed), (label, colour, marker) in zip(sets, styles, strict=True):
        shown_x, shown_y = np.maximum(expected, floor), np.maximum(observed, floor)
        errors = observed > 0
        ax.plot(shown_x[errors], shown_y[errors], color=colour, marker=marker, linestyle="none",
                label=label, alpha=0.85)  # fmt: skip
        ax.plot(shown_x[~errors], shown_y[~errors], color=colour, marker="v", linestyle="none",
                markerfacecolor="white")  # fmt: skip
    ax.plot([floor, 1], [floor, 1], color="#444444", linestyle="--", linewidth=0.8,
            label="calibrated")  # fmt: skip
    ax.plot([], [], color="#777777", marker="v", linestyle="none", markerfacecolor="white",
            label="no error in the bin")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor * 0.8, 1.0)
    ax.set_ylim(floor * 0.8, 1.0)
    ax.set_xlabel("1 − mean confidence of the bin (log scale)")
    ax.set_ylabel("error rate of the bin (log scale)")
    ax.legend(loc="upper left")


def reliability_figure(
    bins: Bins,
    equal_mass: Bins,
    equal_mass_scaled: Bins | None,
    *,
    model: str,
    temperature: float | None,
) -> Figure:
    """Draw a reliability diagram with its bin counts, and a zoom on equal-mass bins.

    Parameters
    ----------
    bins : Bins
        Equal-width bins of the test set's top-class confidence.
    equal_mass, equal_mass_scaled : Bins
        Equal-mass bins before and after temperature scaling (None: no
        temperature was fitted, a model evaluated from its predictions).
    model : str
        Model name for the title.
    temperature : float or None
        The fitted temperature, for the legend.

    Returns
    -------
    Figure
        Left: accuracy per equal-width bin against the diagonal, the gap to
        each bin's mean confidence in vermillion, and below it the count per
        bin on a log axis (a confident model fills only the top bins).
        Right: equal-mass bins, before and after scaling, as error rate
        against 1 − confidence on log axes, where confidences near 1 spread
        out instead of piling up in one corner.
    """
    with style.drawing_style():
        if int(bins.count.sum()) == 0:
            return panels.message_figure(
                style.new_figure(1.0), "no test image", title=f"{model}: calibration"
            )
        fig = style.new_figure(3.9)
        grid = fig.add_gridspec(2, 2, height_ratios=(3, 1.25), width_ratios=(1, 1))
        ax_rel = fig.add_subplot(grid[0, 0])
        ax_count = fig.add_subplot(grid[1, 0], sharex=ax_rel)
        ax_zoom = fig.add_subplot(grid[:, 1])
        _reliability_panel(ax_rel, bins)
        ax_rel.set_title(
            f"{len(bins.count)} equal-width bins (ECE {100 * bins.expected_error:.2f}%)"
        )
        ax_rel.tick_params(labelbottom=False)
        _counts_panel(ax_count, bins)
        _error_panel(ax_zoom, equal_mass, equal_mass_scaled, temperature=temperature)
        per_bin = math.ceil(int(equal_mass.count.sum()) / len(equal_mass.count))
        ax_zoom.set_title(f"{len(equal_mass.count)} equal-mass bins, ~{per_bin:,} images each")
        fig.suptitle(f"{model}: calibration on the test set")
        return fig


def worst(values: Sequence[float | None], *, count: int) -> list[int]:
    """Return the classes of the ``count`` lowest defined values, lowest first (ties: class)."""
    defined = [(value, label) for label, value in enumerate(values) if value is not None]
    return [label for _, label in sorted(defined)[:count]]


def _post_steps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return a curve's ``[2k - 1, 2]`` vertices drawn as steps (``drawstyle="steps-post"``)."""
    return np.column_stack([np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]])


def _curve_panel(
    ax: Axes,
    curves: Sequence[Curve | None],
    micro: Curve,
    areas: Sequence[float | None],
    *,
    classes: Sequence[str],
    area: str,
    floor: float = 0.0,
) -> None:
    """Draw every class's curve in grey, the worst few in colour with their areas, and the micro."""
    lowest = worst(areas, count=HIGHLIGHTED)

    def points(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
        return np.maximum(curve.x, floor), curve.y

    # The other classes, grey, as one collection: hundreds of classes are one artist
    # to lay out and draw, not one each.
    others = [_post_steps(*points(curve)) for label, curve in enumerate(curves)
              if curve is not None and label not in lowest]  # fmt: skip
    if others:
        ax.add_collection(LineCollection(others, colors=OTHERS, linewidths=0.8,
                                         capstyle="projecting", joinstyle="round"),
                          autolim=False)  # fmt: skip
    for rank, label in enumerate(lowest):
        curve = curves[label]
        assert curve is not None  # a class with an area has a curve
        name = truncate(classes[label], LEGEND_CHARS)
        ax.plot(*points(curve), color=style.OKABE_ITO[(rank + 1) % len(style.OKABE_ITO)],
                linewidth=1.6, drawstyle="steps-post",
                label=f"{name} ({area} {areas[label]:.4f})")  # fmt: skip
    ax.plot(*points(micro), color="#000000", linewidth=1.0, linestyle="--",
            drawstyle="steps-post", label="micro-average")  # fmt: skip
    if len(curves) > len(lowest):
        ax.plot([], [], color=OTHERS, linewidth=0.8, label="other classes")


def roc_figure(
    curves: Sequence[Curve | None],
    micro: Curve,
    aucs: Sequence[float | None],
    *,
    model: str,
    classes: Sequence[str],
) -> Figure:
    """Draw one-vs-rest ROC curves per class on a log false-positive axis.

    Parameters
    ----------
    curves : sequence of Curve or None
        Per class (class 0 first): false-positive rate ``x``, true-positive
        rate ``y``; None for a class without positives or negatives.
    micro : Curve
        The micro-averaged curve.
    aucs : sequence of float or None
        Per-class AUC, for choosing and naming the worst classes.
    model : str
        Model name for the title.
    classes : sequence of str
        Class names, class 0 first.

    Returns
    -------
    Figure
        False-positive rate on a log axis, where near-perfect curves still
        differ; the :data:`HIGHLIGHTED` lowest-AUC classes in colour.
    """
    with style.drawing_style():
        title = f"{model}: one-vs-rest ROC per class"
        if all(curve is None for curve in curves):
            message = "no class has both positives and negatives"
            return panels.message_figure(style.new_figure(1.0), message, title=title)
        rates = np.concatenate([c.x for c in (*curves, micro) if c is not None])
        floor = float(rates[rates > 0].min()) if (rates > 0).any() else 1e-4
        floor = min(10 ** math.floor(math.log10(floor)), 1e-2)  # two decades at least
        fig = style.new_figure(3.2)
        ax = fig.subplots()
        _curve_panel(ax, curves, micro, aucs, classes=classes, area="AUC", floor=floor)
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(0.0, 1.005)
        ax.set_xlabel("false-positive rate (log scale; 0 drawn at the left edge)")
        ax.set_ylabel("true-positive rate (recall)")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.legend(loc="lower right", title="lowest AUC")
        fig.suptitle(f"{title} (lowest {min(HIGHLIGHTED, len(curves))} highlighted)")
        return fig


MIN_ZOOM_TOP = 0.99  # the zoom's lower limit is at most this: a band even for perfect curves


def pr_figure(
    curves: Sequence[Curve | None],
    micro: Curve,
    average_precisions: Sequence[float | None],
    *,
    model: str,
    classes: Sequence[str],
) -> Figure:
    """Draw one-vs-rest precision–recall curves per class, whole and zoomed on high recall.

    Parameters
    ----------
    curves : sequence of Curve or None
        Per class (class 0 first): recall ``x``, precision ``y``.
    micro : Curve
        The micro-averaged curve.
    average_precisions : sequence of float or None
        Per-class average precision, for choosing and naming the worst.
    model : str
        Model name for the title.
    classes : sequence of str
        Class names, class 0 first.

    Returns
    -------
    Figure
        Left, every curve over the whole square; right, the same zoomed to
        recall ≥ 80% and the precisions the curves keep up to 99.5% recall.
    """
    with style.drawing_style():
        title = f"{model}: one-vs-rest precision–recall per class"
        if all(curve is None for curve in curves):
            return panels.message_figure(
                style.new_figure(1.0), "no class has a test image", title=title
            )
        fig = style.new_figure(3.2)
        ax_all, ax_zoom = fig.subplots(1, 2)
        for ax in (ax_all, ax_zoom):
            _curve_panel(ax, curves, micro, average_precisions, classes=classes, area="AP")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(
                    PercentFormatter(xmax=1.0, decimals=0 if ax is ax_all else 1)
                )
        ax_all.set_xlim(0, 1.01)
        ax_all.set_ylim(0, 1.01)
        ax_all.set_title("Whole range")
        # The last point of a curve (recall 100%, every image called positive) has
        # the class's prevalence as precision; the zoom leaves that plunge off the
        # bottom and shows where the curves bend.
        reached = [c.y[(c.x >= 0.8) & (c.x <= 0.995)] for c in (*curves, micro) if c is not None]
        low = min((float(r.min()) for r in reached if r.size), default=0.0)
        # Every curve at 100% precision there: still show a band below it.
        low = max(0.0, min(low - 0.05 * (1.0 - low), MIN_ZOOM_TOP))
        ax_zoom.set_xlim(0.8, 1.002)
        ax_zoom.set_ylim(low, 1.0 + 0.03 * (1.0 - low))
        ax_zoom.set_title("Zoom: recall ≥ 80%")
        ax_zoom.legend(loc="lower left", title="lowest average precision")
        fig.suptitle(f"{title} (lowest {min(HIGHLIGHTED, len(curves))} highlighted)")
        return fig
