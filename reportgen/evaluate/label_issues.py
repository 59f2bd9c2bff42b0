"""Suspected label errors of the test split: confident learning on out-of-sample probabilities.

The method is that of Northcutt, Jiang & Chuang ("Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 2021), written from the paper:

- each class j gets a threshold t_j, the mean probability the model gives j over
  the test images labelled j (its self-confidence on that class);
- an image's *confident class* is the most probable of the classes whose
  probability reaches their threshold (none when no class does);
- the *confident joint* C[i, j] counts the images labelled i whose confident
  class is j; an image is flagged when it lies off C's diagonal (the variant the
  paper calls C_{ỹ,y*}: "confident joint off-diagonal").

Off-diagonal rather than "prune by noise rate": the decision is per image and
needs no rounding of estimated noise rates into per-cell counts, so the set is
the same however the test split is ordered, and the ranking below orders it
anyway.  The evidence ranked is the normalised margin
p_label − max_{k ≠ label} p_k (in [−1, 1], lowest first): unlike the
self-confidence p_label alone it says whether the missing probability went to
one other class or spread thin.

A model's test predictions are out of sample (it never trained on them), which
is what the method needs.  Everything here works on probabilities only, so it
applies equally to a model given by its predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# An image whose probability equals its class's threshold reaches it: the mean of equal
# probabilities can round a hair above them.
THRESHOLD_SLACK = 1e-9
NO_CLASS = -1  # an image no class is confidently predicted for


@dataclass(frozen=True)
class ModelLabelCheck:
    """What one model's probabilities say about the test labels."""

    thresholds: np.ndarray  # [K] float64: t_j, NaN for a class without test images
    confident: np.ndarray  # [N] int64: each image's confident class, NO_CLASS if none
    joint: np.ndarray  # [K, K] int64: the confident joint, rows given labels
    flagged: np.ndarray  # [N] bool: off the confident joint's diagonal
    margin: np.ndarray  # [N] float64: p_label − max_{k ≠ label} p_k


@dataclass(frozen=True)
class SuspectedLabels:
    """The run's suspected label errors, strongest evidence first, and each model's check."""

    order: np.ndarray  # [S] int64: test positions of the suspected images, by rank
    suggested: np.ndarray  # [S] int64: the class suggested instead of the given label
    flagged_by: np.ndarray  # [S] int64: how many models flag the image
    mean_margin: np.ndarray  # [S] float64: the margin averaged over the models
    checks: dict[str, ModelLabelCheck]  # model name -> its check, in the models' order


def _check_inputs(proba: np.ndarray, labels: np.ndarray) -> None:
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must be [images, classes ≥ 2], got shape {proba.shape}")
    if labels.shape != (proba.shape[0],):
        raise ValueError(f"labels must be [{proba.shape[0]}], got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= proba.shape[1]):
        raise ValueError(f"labels must lie in 0..{proba.shape[1] - 1}")
    if not np.isfinite(proba).all():
        raise ValueError("proba must be finite")


def class_thresholds(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return t_j, the mean probability of class j over the images labelled j (NaN if none)."""
    _check_inputs(proba, labels)
    num_classes = proba.shape[1]
    p_label = proba[np.arange(len(labels)), labels].astype(np.float64)
    totals = np.bincount(labels, weights=p_label, minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def confident_classes(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Return each image's most probable class among those at or above their threshold.

    Ties go to the lowest class index; an image with no class at its threshold
    gets ``NO_CLASS``.  A class without a threshold (no test image labelled
    with it) is never confident: nothing says how sure the model is of it.
    """
    limits = np.where(np.isnan(thresholds), np.inf, thresholds - THRESHOLD_SLACK)
    reached = proba >= limits[None, :]
    masked = np.where(reached, proba.astype(np.float64), -np.inf)
    best = masked.argmax(axis=1)  # the first maximum: the lowest class on ties
    return np.where(reached.any(axis=1), best, NO_CLASS).astype(np.int64)


def normalized_margin(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return p_label − max_{k ≠ label} p_k per image: below 0, another class is preferred."""
    rows = np.arange(len(labels))
    p = proba.astype(np.float64)
    p_label = p[rows, labels]
    others = p.copy()
    others[rows, labels] = -np.inf
    return p_label - others.max(axis=1)


def check_model(proba: np.ndarray, labels: np.ndarray) -> ModelLabelCheck:
    """Return one model's confident-learning check of the test labels.

    Parameters
    ----------
    proba : ndarray of float, shape (n, k)
        The model's out-of-sample (test) probabilities.
    labels : ndarray of int, shape (n,)
        The given labels.
    """
    thresholds = class_thresholds(proba, labels)
    confident = confident_classes(proba, thresholds)
    num_classes = proba.shape[1]
    counted = confident != NO_CLASS
    joint = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(joint, (labels[counted], confident[counted]), 1)
    return ModelLabelCheck(
        thresholds=thresholds,
        confident=confident,
        joint=joint,
        flagged=counted & (confident != labels),
        margin=normalized_margin(proba, labels),
    )


def suspected_labels(
    probabilities: Mapping[str, np.ndarray], labels: np.ndarray
) -> SuspectedLabels:
    """Return the images whose label any model doubts, ranked across the models.

    The rule: an image is suspected when at least one model flags it (its
    confident class is not the given label).  Images more models flag rank
    first, since independent doubts are stronger evidence; within a group,
    the lower the margin averaged over every model, the earlier; ties go to the
    lower test position.  The suggested class is, of the flagging models'
    confident classes, the one with the highest probability averaged over
    every model (the lowest class on ties).

    Parameters
    ----------
    probabilities : mapping of str to ndarray of float, shape (n, k)
        Each model's test probabilities, in the models' order (at least one).
    labels : ndarray of int, shape (n,)
        The given test labels.
    """
    if not probabilities:
        raise ValueError("need the probabilities of at least one model")
    labels = np.asarray(labels, dtype=np.int64)
    checks = {name: check_model(np.asarray(p), labels) for name, p in probabilities.items()}
    flags = np.stack([check.flagged for check in checks.values()])  # [M, N]
    margins = np.stack([check.margin for check in checks.values()])  # [M, N]
    mean_proba = np.mean([np.asarray(p, dtype=np.float64) for p in probabilities.values()], axis=0)
    flagged_by = flags.sum(axis=0)
    mean_margin = margins.mean(axis=0)
    suspected = np.flatnonzero(flagged_by > 0)
    # np.lexsort sorts by the last key first: most flags, then lowest margin, then position.
    order = suspected[
        np.lexsort((suspected, mean_margin[suspected], -flagged_by[suspected]))
    ].astype(np.int64)
    suggested = np.empty(len(order), dtype=np.int64)
    confident = np.stack([check.confident for check in checks.values()])  # [M, N]
    for position, image in enumerate(order):
        candidates = np.unique(confident[flags[:, image], image])  # ascending: lowest on ties
        suggested[position] = candidates[np.argmax(mean_proba[image, candidates])]
    return SuspectedLabels(
        order=order,
        suggested=suggested,
        flagged_by=flagged_by[order].astype(np.int64),
        mean_margin=mean_margin[order],
        checks=checks,
    )


def errors_on(suspected: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> int:
    """Return how many of a model's misclassified test images are among ``suspected``."""
    wrong = np.flatnonzero(np.asarray(predictions) != np.asarray(labels))
    return int(np.isin(wrong, suspected).sum())
