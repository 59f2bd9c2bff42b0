"""A trained network's outputs on a split: logits and class probabilities, in eval mode."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from reportgen.data.tensors import Split
from reportgen.evaluate.probabilities import softmax


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
    """Return the float32 probabilities of :func:`predict_logits`' logits.

    The float64 logits hold float32 values exactly, so these are the bits of
    a softmax in the network's own float32.
    """
    return softmax(logits, dtype=torch.float32)


def predict_proba(model: nn.Module, split: Split, *, batch_size: int) -> np.ndarray:
    """Return softmax class probabilities ``[N, classes]`` (float32) of ``model`` in eval mode."""
    return proba_from_logits(predict_logits(model, split, batch_size=batch_size))


def without_non_finite(logits: np.ndarray) -> np.ndarray:
    """Return ``logits`` with every row that is not all finite set to zeros.

    A diverged network's NaN or infinite logits say nothing about the image;
    zeros give it equal probabilities, so its prediction is class 0 (the
    lowest on ties) and every count of right and wrong is still defined.
    """
    return np.where(np.isfinite(logits).all(axis=1, keepdims=True), logits, 0.0)
