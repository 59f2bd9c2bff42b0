"""Training curves: a model's loss and accuracy, all models together, the learning rate, runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reportgen.figures.checks import NO_EPOCH, require_columns
from reportgen.figures.panels import epoch_axis, loss_accuracy_axes, message_figure
from reportgen.figures.style import (
    LR_LOG_RATIO,
    OKABE_ITO,
    TRAIN_STYLE,
    VAL_STYLE,
    line_style,
    model_color,
    model_handles,
    new_figure,
    styled,
)

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy")


@styled
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
    require_columns(history, HISTORY_COLUMNS)
    if history.empty:
        return message_figure(new_figure(1.0), NO_EPOCH, title=f"{model}: training curves")
    fig = new_figure(2.7)
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


def _models(history: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(history["model"]))


@styled
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
    require_columns(history, ("model", *HISTORY_COLUMNS))
    title = "Regularization impact: train vs validation, all models"
    if history.empty:
        return message_figure(new_figure(1.0), NO_EPOCH, title=title)
    models = _models(history)
    fig = new_figure(3.0)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    for i, name in enumerate(models):
        rows = history[history["model"] == name]
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(rows["epoch"], rows[f"train_{metric}"], color=model_color(i), **TRAIN_STYLE)
            ax.plot(rows["epoch"], rows[f"val_{metric}"], color=model_color(i), **VAL_STYLE)
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Loss", "Accuracy"))
    fig.legend(handles=model_handles(models), loc="outside lower center", ncols=len(models) + 2)
    fig.suptitle(title)
    return fig


@styled
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
    require_columns(history, ("model", "epoch", "lr"))
    if history.empty:
        return message_figure(new_figure(1.0), NO_EPOCH, title="Learning rate per epoch")
    lr = history["lr"].to_numpy(dtype=np.float64)
    if not (np.isfinite(lr).all() and (lr > 0).all()):
        raise ValueError("lr must hold positive finite learning rates")
    fig = new_figure(2.4)
    ax = fig.subplots()
    for i, name in enumerate(_models(history)):
        rows = history[history["model"] == name]
        ax.plot(rows["epoch"], rows["lr"], drawstyle="steps-mid", label=name, **line_style(i))
    if lr.max() / lr.min() >= LR_LOG_RATIO:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)
        ax.set_ylim(0, lr.max() * 1.15)
    epoch_axis(ax)
    ax.set_ylabel("learning rate")
    ax.legend()
    fig.suptitle("Learning rate per epoch")
    return fig


@styled
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
    require_columns(history, ("run", "model", "epoch", "val_loss", "val_accuracy"))
    title = "Validation curves of every run"
    if history.empty:
        return message_figure(new_figure(1.0), NO_EPOCH, title=title)
    runs = list(dict.fromkeys(history["run"]))
    models = _models(history)
    legend_rows = -(-(len(runs) + len(models)) // 4)
    fig = new_figure(2.8 + 0.2 * legend_rows)
    ax_loss, ax_acc = fig.subplots(1, 2, sharex=True)
    for r, run in enumerate(runs):
        for m, model in enumerate(models):
            rows = history[(history["run"] == run) & (history["model"] == model)]
            for ax, column in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
                values = rows[column].to_numpy(dtype=np.float64)
                ax.plot(rows["epoch"], np.where(np.isfinite(values), values, np.nan),
                        **line_style(m, color=model_color(r)))  # fmt: skip
    loss_accuracy_axes(ax_loss, ax_acc, titles=("Validation loss", "Validation accuracy"))
    handles = [Line2D([], [], color=model_color(r), label=run) for r, run in enumerate(runs)]
    handles += [
        Line2D([], [], label=model, **line_style(m, color="#333333"))
        for m, model in enumerate(models)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    fig.suptitle(title)
    return fig
