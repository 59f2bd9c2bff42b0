"""Predictions -> metrics: pure functions over arrays, plus one batched predictor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from reportgen.models import NUM_CLASSES

LABELS = list(range(NUM_CLASSES))


@torch.inference_mode()
def predict_proba(model: nn.Module, x: torch.Tensor, *, batch_size: int) -> np.ndarray:
    """Return softmax class probabilities ``[N, 10]`` (float32) of ``model`` in eval mode."""
    model.eval()
    chunks = [
        torch.softmax(model(x[start : start + batch_size]), dim=1).cpu()
        for start in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(chunks).numpy()


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the fraction of matching labels."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Return mean cross-entropy of the true labels' probabilities (clipped away from 0)."""
    picked = proba[np.arange(len(y_true)), y_true].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Return per-class precision/recall/F1/support plus accuracy and macro/weighted/micro averages.

    Classes absent from both arrays get zeros rather than a warning, so small
    generated test sets report every label.
    """
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=LABELS, zero_division=0
    )
    report: dict[str, Any] = {
        "classes": [
            {
                "label": label,
                "precision": float(precision[label]),
                "recall": float(recall[label]),
                "f1": float(f1[label]),
                "support": int(support[label]),
            }
            for label in LABELS
        ],
        "accuracy": accuracy(y_true, y_pred),
    }
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=LABELS, average=average, zero_division=0
        )
        report[f"{average}_avg"] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": len(y_true),
        }
    return report


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Return the 10×10 count matrix: rows are true labels, columns predictions."""
    return confusion_matrix(y_true, y_pred, labels=LABELS)


def class_errors(matrix: np.ndarray) -> list[dict[str, Any]]:
    """Return, per class, its error rate (1 − recall) and most frequent wrong prediction."""
    rows = []
    for label in LABELS:
        row = matrix[label]
        support = int(row.sum())
        wrong = row.copy()
        wrong[label] = 0
        errors = int(wrong.sum())
        top = int(np.argmax(wrong))  # lowest label wins ties: deterministic
        rows.append(
            {
                "label": label,
                "support": support,
                "errors": errors,
                "error_rate": errors / support if support else 0.0,
                "top_wrong_prediction": top if errors else None,
                "top_wrong_count": int(wrong[top]) if errors else 0,
            }
        )
    return rows


def worst_classes(errors: list[dict[str, Any]], *, count: int = 3) -> list[int]:
    """Return the labels with the highest error rate (ties broken by label)."""
    ranked = sorted(errors, key=lambda row: (-row["error_rate"], row["label"]))
    return [row["label"] for row in ranked[:count] if row["errors"] > 0]


def most_confused_pairs(matrix: np.ndarray, *, count: int) -> list[dict[str, int]]:
    """Return the ``count`` largest off-diagonal cells as ``{true, pred, count}``, largest first."""
    cells = [
        (int(matrix[t, p]), t, p) for t in LABELS for p in LABELS if t != p and matrix[t, p] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [{"true": t, "pred": p, "count": n} for n, t, p in cells[:count]]


def misclassified_indices(y_true: np.ndarray, y_pred: np.ndarray, *, limit: int) -> list[int]:
    """Return the positions of the first ``limit`` wrong predictions, in test-set order."""
    return [int(i) for i in np.flatnonzero(y_true != y_pred)[:limit]]


def pair_indices(
    y_true: np.ndarray, y_pred: np.ndarray, *, true: int, pred: int, limit: int
) -> list[int]:
    """Return the positions of the first ``limit`` images of ``true`` predicted as ``pred``."""
    return [int(i) for i in np.flatnonzero((y_true == true) & (y_pred == pred))[:limit]]
