"""Predictions -> metrics, as the types of :mod:`reportgen.metrics`.

The functions over label arrays and confusion matrices are pure.  The others
read a network: :func:`predict_proba`, :func:`image_layer_weights`,
:func:`layer_output`, :func:`first_layer_weights` and
:func:`first_activations`; those that run it switch it to eval mode first.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from reportgen import per_class
from reportgen.data import Split
from reportgen.errors import ConfigError
from reportgen.metrics import (
    AverageScores,
    Bounds,
    ClassError,
    ClassificationReport,
    ClassScores,
    ConfusedPair,
    PairGallery,
    PairSource,
)
from reportgen.models import CNN, MLP


@torch.inference_mode()
def predict_proba(model: nn.Module, split: Split, *, batch_size: int) -> np.ndarray:
    """Return softmax class probabilities ``[N, classes]`` (float32) of ``model`` in eval mode."""
    model.eval()
    chunks = [
        torch.softmax(model(split.inputs(slice(start, start + batch_size))), dim=1).cpu()
        for start in range(0, len(split), batch_size)
    ]
    return torch.cat(chunks).numpy()


@torch.inference_mode()
def predict_logits(model: nn.Module, split: Split, *, batch_size: int) -> np.ndarray:
    """Return the logits ``[N, classes]`` of ``model`` in eval mode, as float64.

    Calibration and temperature scaling need the logits themselves: float32
    probabilities round a confident prediction to exactly 1.
    """
    model.eval()
    chunks = [
        model(split.inputs(slice(start, start + batch_size))).cpu()
        for start in range(0, len(split), batch_size)
    ]
    return torch.cat(chunks).to(torch.float64).numpy()


def proba_from_logits(logits: np.ndarray) -> np.ndarray:
    """Return the float32 softmax probabilities of :func:`predict_logits`' logits.

    The float64 logits hold float32 values exactly, so these are the
    probabilities :func:`predict_proba` computes, without running the model again.
    """
    return torch.softmax(torch.from_numpy(logits).float(), dim=1).numpy()


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the fraction of matching labels."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Return mean cross-entropy of the true labels' probabilities (clipped away from 0)."""
    picked = proba[np.arange(len(y_true)), y_true].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int, resamples: int, seed: int
) -> ClassificationReport:
    """Return per-class precision/recall/F1/support plus accuracy and macro/weighted/micro averages.

    Classes absent from both arrays get zeros rather than a warning, so small
    generated test sets report every label.  Each class's scores get
    percentile-bootstrap intervals from the resamples ``resamples`` and
    ``seed`` draw: pass the accuracy interval's, and they share its draws.
    """
    labels = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    intervals = per_class.class_intervals(
        y_true, y_pred, classes=num_classes, resamples=resamples, seed=seed
    )
    averages = {}
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        averages[f"{average}_avg"] = AverageScores(
            precision=float(p), recall=float(r), f1=float(f), support=len(y_true)
        )
    classes = [
        ClassScores(label=label, precision=float(precision[label]), recall=float(recall[label]),
                    f1=float(f1[label]), support=int(support[label]),
                    precision_ci=_bounds(intervals[label].precision),
                    recall_ci=_bounds(intervals[label].recall),
                    f1_ci=_bounds(intervals[label].f1))
        for label in labels
    ]  # fmt: skip
    return ClassificationReport(classes=classes, accuracy=accuracy(y_true, y_pred), **averages)


def _bounds(interval: per_class.Bounds) -> Bounds:
    return Bounds(low=interval.low, high=interval.high)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Return the class × class count matrix: rows are true labels, columns predictions."""
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))


def class_errors(matrix: np.ndarray) -> list[ClassError]:
    """Return, per class, its error rate (1 − recall) and most frequent wrong prediction."""
    rows = []
    for label in range(matrix.shape[0]):
        row = matrix[label]
        support = int(row.sum())
        wrong = row.copy()
        wrong[label] = 0
        errors = int(wrong.sum())
        top = int(np.argmax(wrong))  # lowest label wins ties: deterministic
        rows.append(
            ClassError(
                label=label,
                support=support,
                errors=errors,
                error_rate=errors / support if support else 0.0,
                top_wrong_prediction=top if errors else None,
                top_wrong_count=int(wrong[top]) if errors else 0,
            )
        )
    return rows


def worst_classes(errors: Sequence[ClassError], *, count: int = 3) -> list[int]:
    """Return the labels with the highest error rate (ties broken by label)."""
    ranked = sorted(errors, key=lambda row: (-row.error_rate, row.label))
    return [row.label for row in ranked[:count] if row.errors > 0]


def most_confused_pairs(matrix: np.ndarray, *, count: int) -> list[ConfusedPair]:
    """Return the ``count`` largest off-diagonal cells, largest first (ties: lowest labels)."""
    labels = range(matrix.shape[0])
    cells = [
        (int(matrix[t, p]), t, p) for t in labels for p in labels if t != p and matrix[t, p] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [ConfusedPair(true=t, pred=p, count=n) for n, t, p in cells[:count]]


def misclassified_indices(y_true: np.ndarray, y_pred: np.ndarray, *, limit: int) -> list[int]:
    """Return the positions of the first ``limit`` wrong predictions, in test-set order."""
    return [int(i) for i in np.flatnonzero(y_true != y_pred)[:limit]]


def pair_indices(
    y_true: np.ndarray, y_pred: np.ndarray, *, true: int, pred: int, limit: int
) -> list[int]:
    """Return the positions of the first ``limit`` images of ``true`` predicted as ``pred``."""
    return [int(i) for i in np.flatnonzero((y_true == true) & (y_pred == pred))[:limit]]


def pair_galleries(
    matrix: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    configured: Sequence[tuple[int, int]],
    auto: int,
    limit: int,
    figure: Callable[[int, int], str],
) -> list[PairGallery]:
    """Return the confused-pair galleries: every configured pair, then ``auto`` more.

    The automatic pairs are the most confused cells of ``matrix`` that are not
    configured already, so a run always shows ``auto`` additional pairs when
    the model makes that many distinct confusions.  Each gallery holds the
    total ``count`` and the positions of its first ``limit`` images, lowest
    test index first; a configured pair the model never makes has ``count`` 0.
    ``figure(true, pred)`` names the gallery's figure.
    """
    chosen: list[tuple[int, int, PairSource]] = [
        (int(t), int(p), "config") for t, p in dict.fromkeys(configured)
    ]
    taken = {(t, p) for t, p, _ in chosen}
    ranked = most_confused_pairs(matrix, count=auto + len(taken))
    found: list[tuple[int, int, PairSource]] = [
        (c.true, c.pred, "auto") for c in ranked if (c.true, c.pred) not in taken
    ]
    return [
        PairGallery(
            true=t,
            pred=p,
            count=int(matrix[t, p]),
            indices=pair_indices(y_true, y_pred, true=t, pred=p, limit=limit),
            source=source,
            figure=figure(t, p),
        )
        for t, p, source in chosen + found[:auto]
    ]


def first_with_parameters(model: nn.Module) -> tuple[str, nn.Module] | None:
    """Return the first module, in ``named_modules()`` order, that holds parameters itself."""
    for name, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is not None:
            return name, module
    return None


def image_layer_weights(
    model: nn.Module, image_shape: tuple[int, int, int]
) -> tuple[str, np.ndarray, str] | None:
    """Return the first layer's name, weights and unit when they map onto the image, else None.

    The first layer is the first module with parameters, in ``named_modules()``
    order.  It maps onto a ``(C, H, W)`` image when it is an ``nn.Linear`` over
    the flattened image (``in_features == C*H*W``: one weight row per neuron,
    "Neuron") or an ``nn.Conv2d`` over its ``C`` channels without groups (one
    ``[C, k, k]`` kernel per output channel, "Kernel").  Any other first layer
    (an embedding, a normalisation, a linear layer on other features) gives
    None: the report then says the weights figure does not apply.
    """
    first = first_with_parameters(model)
    if first is None:
        return None
    name, module = first
    channels, height, width = image_shape
    if isinstance(module, nn.Linear) and module.in_features == channels * height * width:
        unit = "Neuron"
    elif isinstance(module, nn.Conv2d) and module.groups == 1 and module.in_channels == channels:
        unit = "Kernel"
    else:
        return None
    return name, module.weight.detach().float().cpu().numpy().copy(), unit


MAX_LAYER_NAMES = 5  # names an unknown report.layer's message suggests


@torch.inference_mode()
def layer_output(
    model: nn.Module, x: torch.Tensor, *, layer: str | None, key: str = "report.layer"
) -> tuple[str, np.ndarray] | None:
    """Return a module's name and its output ``[units]`` or ``[channels, h, w]`` for one input.

    ``x`` is a batch of one, shaped as the model takes it; the model runs in
    eval mode with a forward hook on the module named ``layer`` (a name from
    ``named_modules()``), or by default on the first module with parameters.
    The output loses its batch dimension.  None when there is no such module
    to default to, or the output is not one tensor of 1 or 3 dimensions per
    image (the caller says in a sentence that it cannot be drawn).

    Raises
    ------
    ConfigError
        ``layer`` names no module; the message lists the closest names.
    """
    if x.shape[0] != 1:
        raise ValueError(f"x must be a batch of one input; got shape {tuple(x.shape)}")
    modules = {name: module for name, module in model.named_modules() if name}
    if layer is None:
        first = first_with_parameters(model)
        if first is None:
            return None
        layer, module = first
    elif layer in modules:
        module = modules[layer]
    else:
        close = difflib.get_close_matches(layer, list(modules), n=MAX_LAYER_NAMES, cutoff=0.0)
        allowed = ", ".join(close) if close else "none (the model has no submodules)"
        raise ConfigError(f"{key}: the model has no module {layer!r}; modules: {allowed}")
    captured: list[object] = []

    def keep(_module: nn.Module, _args: object, output: object) -> None:
        if not captured:  # a module called twice: its first output is the one after the input
            # A copy: a later in-place op (ReLU(inplace=True)) would change the output itself.
            captured.append(output.clone() if isinstance(output, torch.Tensor) else output)

    model.eval()
    handle = module.register_forward_hook(keep)
    try:
        model(x)
    finally:
        handle.remove()
    output = captured[0] if captured else None
    if not isinstance(output, torch.Tensor) or output.ndim not in (2, 4) or output.shape[0] != 1:
        return None
    return layer, output[0].detach().float().cpu().numpy().copy()


def first_layer_weights(model: nn.Module) -> np.ndarray:
    """Return the first layer's weights of a built-in MLP or CNN.

    Superseded by :func:`image_layer_weights`, which reads any network.
    """
    if not isinstance(model, MLP | CNN):
        raise TypeError(f"expected an MLP or CNN from reportgen.models; got {type(model).__name__}")
    return model.first_layer().weight.detach().cpu().numpy().copy()


@torch.inference_mode()
def first_activations(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Return the first hidden layer's values before and after ReLU for one image (eval mode).

    ``x`` is one normalized image ``[C, H, W]``; the result is ``[units]`` for
    an MLP and ``[channels, H, W]`` feature maps for a CNN.
    """
    if not isinstance(model, MLP | CNN):
        raise TypeError(f"expected an MLP or CNN from reportgen.models; got {type(model).__name__}")
    model.eval()
    pre, post = model.first_activations(x.unsqueeze(0))
    return pre[0].cpu().numpy().copy(), post[0].cpu().numpy().copy()
