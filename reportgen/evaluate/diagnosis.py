"""Read a model's learning curves the way the tutorial teaches.

The rules, applied to one model's per-epoch history (losses are mean
cross-entropy in nats; the thresholds are the constants below):

- **overfitting**: validation loss ends at least :data:`OVERFIT_RISE` (10%)
  above its lowest epoch while training loss is still lower than at that epoch;
- **underfitting**: after the last epoch, training and validation loss are
  both above :data:`UNDERFIT_LOSS` (0.5);
- **good fit**: training and validation loss both end below where they
  started, and none of the other rules applies;
- **learning rate too high**: a loss is not finite, training diverged, or a
  loss jumps from one epoch to the next by :data:`TRAIN_SPIKE_RATIO` (×1.25,
  training) or :data:`VAL_SPIKE_RATIO` (×1.5, validation) and by at least
  :data:`SPIKE_MIN_RISE` (0.05).

Trends need two epochs.  :func:`diagnose` names the epochs behind each
finding, so a reader can check the claim against the curves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reportgen.core.text import pct, pp

OVERFITTING = "overfitting"
UNDERFITTING = "underfitting"
GOOD_FIT = "good fit"
LR_TOO_HIGH = "learning rate too high"
LABELS = (OVERFITTING, UNDERFITTING, GOOD_FIT, LR_TOO_HIGH)

# Cross-entropy (nats) above which a loss counts as "high".  0.5 means the true
# class gets e^-0.5 ≈ 61% probability on average; chance on 10 classes is
# ln 10 ≈ 2.30, and an MLP that fits MNIST is below 0.15 after one epoch.
UNDERFIT_LOSS = 0.5

# Validation loss must end this far (relative) above its lowest epoch to count
# as rising: epoch-to-epoch noise on 5,000 validation images is a few percent.
OVERFIT_RISE = 0.10

# A one-epoch jump in training loss by this factor is a spike.  The epoch mean
# of the training loss should never rise with a sane learning rate.
TRAIN_SPIKE_RATIO = 1.25

# Validation loss is noisier and creeps up when overfitting, so a spike there
# must be a sharper jump.
VAL_SPIKE_RATIO = 1.5

# ... and a spike must also be this large in absolute terms (nats): near zero
# loss, 0.02 → 0.03 is a 50% rise but no instability.
SPIKE_MIN_RISE = 0.05

# Fewer epochs than this make any reading of a trend tentative.
SHORT_HISTORY_EPOCHS = 3

REQUIRED_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")

_SUMMARIES = {
    OVERFITTING: "Overfitting: training loss keeps falling while validation loss rises, "
    "so the model memorises the training set; stop earlier or regularize more.",
    UNDERFITTING: "Underfitting: training and validation loss both stay high; "
    "train longer, use a larger model or a larger learning rate.",
    GOOD_FIT: "Good fit: training and validation loss fall together.",
    LR_TOO_HIGH: "Learning rate too high: the loss spikes instead of falling steadily; "
    "lower the learning rate or add a schedule.",
}


@dataclass(frozen=True)
class Diagnosis:
    """Labels from the rules above, a plain summary and the epochs that show them."""

    labels: list[str] = field(default_factory=list)
    summary: str = ""
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Curves:
    epochs: list[int]
    train_loss: list[float]
    val_loss: list[float]
    train_accuracy: list[float]
    val_accuracy: list[float]


def _curves(history: Sequence[Mapping[str, float]]) -> _Curves:
    columns: dict[str, list[float]] = {key: [] for key in REQUIRED_KEYS}
    epochs = []
    for position, record in enumerate(history, start=1):
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            raise ValueError(
                f"history[{position - 1}] lacks {', '.join(missing)}; "
                f"each epoch needs {', '.join(REQUIRED_KEYS)}"
            )
        for key in REQUIRED_KEYS:
            columns[key].append(float(record[key]))
        epochs.append(int(record.get("epoch", position)))
    return _Curves(epochs, **columns)


def _spikes(curves: _Curves) -> list[str]:
    """Return one sentence per epoch whose train or validation loss jumped."""
    found = []
    for name, losses, ratio in (
        ("train", curves.train_loss, TRAIN_SPIKE_RATIO),
        ("validation", curves.val_loss, VAL_SPIKE_RATIO),
    ):
        for i in range(1, len(losses)):
            before, after = losses[i - 1], losses[i]
            finite = math.isfinite(before) and math.isfinite(after) and before > 0
            if finite and after >= ratio * before and after - before >= SPIKE_MIN_RISE:
                found.append(
                    f"{name} loss jumped from {before:.3f} at epoch {curves.epochs[i - 1]} "
                    f"to {after:.3f} at epoch {curves.epochs[i]} (×{after / before:.1f})"
                )
    return found


def _non_finite(curves: _Curves, diverged_epoch: int | None) -> list[str]:
    found = []
    for name, losses in (("train", curves.train_loss), ("validation", curves.val_loss)):
        bad = [e for e, v in zip(curves.epochs, losses, strict=True) if not math.isfinite(v)]
        if bad:
            found.append(f"{name} loss became non-finite at epoch {bad[0]}")
    if diverged_epoch is not None:
        found.append(f"training diverged (non-finite loss) during epoch {diverged_epoch}")
    return found


def _overfitting(curves: _Curves) -> list[str]:
    val = curves.val_loss
    best = min(range(len(val)), key=lambda i: (val[i], i))
    last = len(val) - 1
    rose = best < last and val[last] >= val[best] * (1 + OVERFIT_RISE)
    if not (rose and curves.train_loss[last] < curves.train_loss[best]):
        return []
    e = curves.epochs
    gap = curves.train_accuracy[last] - curves.val_accuracy[last]
    return [
        f"validation loss rose from epoch {e[best]} ({val[best]:.3f}) to epoch {e[last]} "
        f"({val[last]:.3f}) while train loss kept falling "
        f"({curves.train_loss[best]:.3f} → {curves.train_loss[last]:.3f})",
        f"at epoch {e[last]} train accuracy is {pct(curves.train_accuracy[last])} against "
        f"{pct(curves.val_accuracy[last])} on validation (gap {pp(gap)})",
    ]


def _underfitting(curves: _Curves) -> list[str]:
    train, val = curves.train_loss[-1], curves.val_loss[-1]
    if not (train > UNDERFIT_LOSS and val > UNDERFIT_LOSS):
        return []
    return [
        f"after epoch {curves.epochs[-1]} train loss is still {train:.3f} and validation loss "
        f"{val:.3f}, both above {UNDERFIT_LOSS} (train accuracy {pct(curves.train_accuracy[-1])})"
    ]


def _good_fit(curves: _Curves) -> list[str]:
    train, val, e = curves.train_loss, curves.val_loss, curves.epochs
    if not (train[-1] < train[0] and val[-1] < val[0]):
        return []
    best = min(range(len(val)), key=lambda i: (val[i], i))
    ending = (
        "at its lowest value"
        if best == len(val) - 1
        else f"within {pct(OVERFIT_RISE, 0)} of its lowest ({val[best]:.3f}, epoch {e[best]})"
    )
    return [
        f"train loss fell from {train[0]:.3f} (epoch {e[0]}) to {train[-1]:.3f} (epoch {e[-1]}) "
        f"and validation loss from {val[0]:.3f} to {val[-1]:.3f}, ending {ending}"
    ]


def diagnose(
    history: Sequence[Mapping[str, float]], *, diverged_epoch: int | None = None
) -> Diagnosis:
    """Label one model's learning curves with the rules of this module.

    Parameters
    ----------
    history : sequence of mappings
        One mapping per completed epoch, in order, with ``train_loss``,
        ``val_loss``, ``train_accuracy``, ``val_accuracy`` and optionally
        ``epoch`` (1-based position otherwise).
    diverged_epoch : int, optional
        The epoch in which training stopped on a non-finite loss, if it did.

    Returns
    -------
    Diagnosis
        ``labels`` (a subset of :data:`LABELS`, possibly empty when the curves
        show no clear pattern or are too short), a ``summary`` and one
        ``evidence`` sentence per finding naming the epochs.

    Notes
    -----
    Trends (overfitting, good fit, spikes) need at least two epochs; with one
    epoch only the loss level (underfitting) and divergence can be judged.
    "Good fit" is given only when nothing else is found.
    """
    curves = _curves(history)
    n = len(curves.epochs)
    found: dict[str, list[str]] = {}
    unstable = _non_finite(curves, diverged_epoch) + (_spikes(curves) if n >= 2 else [])
    if unstable:
        found[LR_TOO_HIGH] = unstable
    finite = n > 0 and all(math.isfinite(v) for v in (*curves.train_loss, *curves.val_loss))
    if finite:
        if under := _underfitting(curves):
            found[UNDERFITTING] = under
        if n >= 2 and (over := _overfitting(curves)):
            found[OVERFITTING] = over
        if n >= 2 and not found and (good := _good_fit(curves)):
            found[GOOD_FIT] = good
    labels = [label for label in LABELS if label in found]
    evidence = [sentence for label in labels for sentence in found[label]]
    return Diagnosis(labels, _summary(labels, n), evidence)


def _summary(labels: list[str], epochs: int) -> str:
    if epochs == 0:
        head = "No epoch completed, so there are no curves to read."
        return f"{_SUMMARIES[LR_TOO_HIGH]} {head}" if labels else head
    parts = [_SUMMARIES[label] for label in labels]
    if not parts:
        parts = [
            "One epoch is too few to read a trend from the curves."
            if epochs == 1
            else "No clear pattern: the curves match none of overfitting, underfitting, "
            "a good fit or a too-high learning rate."
        ]
    if 1 < epochs < SHORT_HISTORY_EPOCHS:
        parts.append(f"With only {epochs} epochs this reading is tentative.")
    return " ".join(parts)
