"""The sweep report's figures: seeds as dots, curves averaged over seeds, metric vs swept value.

Pure functions from plain tables to :class:`matplotlib.figure.Figure`, in
the style and at the width of every other figure (:mod:`reportgen.figures.style`);
the figure catalogue (:data:`reportgen.artifacts.catalogue.FIGURES`) describes each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from reportgen.figures.checks import require_columns
from reportgen.figures.panels import loss_accuracy_axes, message_figure
from reportgen.figures.style import line_style, model_color, new_figure, styled

DOT_COLUMNS = ("point", "model", "seed", "value")
SUMMARY_COLUMNS = ("point", "model", "mean", "sd", "low", "high")
CURVE_COLUMNS = ("model", "seed", "epoch", "val_loss", "val_accuracy")
EFFECT_COLUMNS = ("x", "line", "seed", "value")
ROW_IN = 0.22  # height of one point × model row of the dot plot
MAX_EPOCH_TICKS = 12  # up to this many epochs, one tick each; beyond, matplotlib's own


@styled
def seed_dots_figure(
    rows: pd.DataFrame, summary: pd.DataFrame, *, metric: str, level: float = 0.95
) -> Figure:
    """Draw every seed's value as a dot, per point and model, with mean ± sd and the interval.

    Parameters
    ----------
    rows : DataFrame
        One row per point, model and seed with ``point``, ``model``, ``seed``
        and ``value`` (a fraction), points and models in order of first appearance.
    summary : DataFrame
        One row per point and model with ``point``, ``model``, ``mean``,
        ``sd``, ``low`` and ``high`` (NaN where one seed allows no spread),
        as :mod:`reportgen.seedstats` computed them.
    metric : str
        What ``value`` is, for the axis, e.g. "test accuracy".
    level : float
        Coverage of the bootstrap interval of the mean over seeds.

    Returns
    -------
    Figure
        One row per point and model: the seeds as open dots, the mean as a
        bar with whiskers of ± one standard deviation, and the percentile
        bootstrap interval of the mean as a thick translucent band.
    """
    require_columns(rows, DOT_COLUMNS)
    require_columns(summary, SUMMARY_COLUMNS)
    title = f"{metric[:1].upper()}{metric[1:]} per seed"
    if rows.empty:
        return message_figure(new_figure(1.0), "no run finished", title=title)
    points = list(dict.fromkeys(rows["point"]))
    models = list(dict.fromkeys(rows["model"]))
    slots = len(points) * len(models)
    fig = new_figure(1.2 + ROW_IN * slots + 0.1 * len(points))
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # jitter only: the same figure every time
    ticks, labels = [], []
    for p, point in enumerate(points):
        for m, model in enumerate(models):
            y = -(p * (len(models) + 0.6) + m)
            values = rows[(rows["point"] == point) & (rows["model"] == model)]["value"]
            values = values.to_numpy(dtype=np.float64)
            color = model_color(m)
            ticks.append(y)
            labels.append(f"{point} · {model}" if len(points) > 1 else model)
            if values.size == 0:
                continue
            stats = summary[(summary["point"] == point) & (summary["model"] == model)].iloc[0]
            if np.isfinite(stats["sd"]):
                ax.plot([stats["low"], stats["high"]], [y, y], color=color, alpha=0.3,
                        linewidth=6, solid_capstyle="butt")  # fmt: skip
                ax.errorbar([stats["mean"]], [y], xerr=[[stats["sd"]], [stats["sd"]]], fmt="|",
                            color=color, markersize=10, capsize=3, linewidth=1)  # fmt: skip
            else:
                ax.plot([stats["mean"]], [y], "|", color=color, markersize=10)
            jitter = rng.uniform(-0.18, 0.18, values.size)
            ax.scatter(values, y + jitter, s=14, facecolors="none", edgecolors=color, linewidths=1)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(min(ticks) - 0.7, max(ticks) + 0.7)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=2))
    ax.set_xlabel(metric)
    handles = [
        Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
               markeredgecolor="#333333", label="one seed"),
        Line2D([], [], marker="|", linestyle="-", color="#333333", markersize=10,
               label="mean ± sd"),
        Patch(color="#333333", alpha=0.3, label=f"{level * 100:g}% bootstrap interval of the mean"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    fig.suptitle(title)
    return fig


@styled
def averaged_curves_figure(history: pd.DataFrame, *, point: str) -> Figure:
    """Draw validation loss and accuracy per epoch, averaged over seeds, with a ± sd band.

    Parameters
    ----------
    history : DataFrame
        One row per model, seed and epoch with ``model``, ``seed``, ``epoch``,
        ``val_loss`` and ``val_accuracy`` (every run of one point).
    point : str
        The point's label, for the title.

    Returns
    -------
    Figure
        Loss (left) and accuracy (right); per model the mean over seeds as a
        line and mean ± one standard deviation as a band (none with one seed).
    """
    require_columns(history, CURVE_COLUMNS)
    title = f"Validation curves over seeds: {point}"
    if history.empty:
        return message_figure(new_figure(1.0), "no epoch completed", title=title)
    fig = new_figure(2.8)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    models = list(dict.fromkeys(history["model"]))
    for m, model in enumerate(models):
        rows = history[history["model"] == model]
        for ax, column in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
            values = rows.pivot_table(index="epoch", columns="seed", values=column, aggfunc="first")
            mean = values.mean(axis=1)
            sd = values.std(axis=1, ddof=1)
            style = line_style(m)
            ax.plot(mean.index, mean.to_numpy(), label=model, **style)
            if values.shape[1] > 1:
                ax.fill_between(mean.index, (mean - sd).to_numpy(), (mean + sd).to_numpy(),
                                color=style["color"], alpha=0.2, linewidth=0)  # fmt: skip
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Validation loss", "Validation accuracy"))
    epochs = sorted(history["epoch"].unique())
    if len(epochs) <= MAX_EPOCH_TICKS:  # a tick per epoch, never a fraction of one
        ax_loss.set_xticks(epochs)
    seeds = history["seed"].nunique()
    handles: list[Line2D | Patch] = [
        Line2D([], [], label=model, **line_style(m)) for m, model in enumerate(models)
    ]
    handles.append(Patch(color="#333333", alpha=0.2, label=f"± sd over {seeds} seeds"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle(title)
    return fig


@styled
def effect_figure(
    rows: pd.DataFrame, *, key: str, metric: str, categorical: bool, order: Sequence[str] = ()
) -> Figure:
    """Draw a metric against one swept key's value: one line per model, the seeds' spread.

    Parameters
    ----------
    rows : DataFrame
        One row per run with ``x`` (the swept value; a number, or a label when
        ``categorical``), ``line`` (the model, with the other swept keys'
        values), ``seed`` and ``value``.
    key : str
        The swept key (or "point"), for the axis.
    metric : str
        What ``value`` is.
    categorical : bool
        Place ``x`` at even steps in the order ``order`` instead of on a number line.
    order : sequence of str
        The categories, in order (categorical only).

    Returns
    -------
    Figure
        Per line, the mean over seeds with whiskers of ± one standard
        deviation and every seed as a small dot.
    """
    require_columns(rows, EFFECT_COLUMNS)
    title = f"{metric[:1].upper()}{metric[1:]} against {key}"
    if rows.empty:
        return message_figure(new_figure(1.0), "no run finished", title=title)
    lines = list(dict.fromkeys(rows["line"]))
    legend_rows = -(-len(lines) // 3)
    fig = new_figure(2.6 + 0.2 * legend_rows)
    ax = fig.subplots()
    positions = {label: i for i, label in enumerate(order)}
    offset_step = 0.06 if categorical else 0.0
    for i, line in enumerate(lines):
        part = rows[rows["line"] == line]
        xs = list(dict.fromkeys(part["x"]))
        if not categorical:
            xs = sorted(xs)
        place = (lambda x: positions[x]) if categorical else (lambda x: float(x))
        offset = (i - (len(lines) - 1) / 2) * offset_step
        means, sds, where = [], [], []
        for x in xs:
            values = part[part["x"] == x]["value"].to_numpy(dtype=np.float64)
            means.append(values.mean())
            sds.append(values.std(ddof=1) if values.size > 1 else 0.0)
            where.append(place(x) + offset)
            ax.scatter(np.full(values.size, place(x) + offset), values, s=6,
                       color=line_style(i)["color"], alpha=0.45, linewidths=0)  # fmt: skip
        ax.errorbar(where, means, yerr=sds, capsize=3, label=line, **line_style(i))
    if categorical:
        ax.set_xticks(range(len(order)), order, rotation=30 if len(order) > 4 else 0,
                      ha="right" if len(order) > 4 else "center")  # fmt: skip
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=2))
    fig.legend(loc="outside lower center", ncols=min(len(lines), 3))
    fig.suptitle(title)
    return fig
