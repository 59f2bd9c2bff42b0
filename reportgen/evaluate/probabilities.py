"""Logits -> probabilities: the one softmax of reportgen, in the precision each use needs.

The report's probabilities (``predictions.csv``, the galleries' titles, the
curves) are float32, as the network computes them; calibration, the
temperature fit and the negative log-likelihood need float64, where a
confident prediction's probability is not rounded to exactly 1.  Both come
from the same function, torch's softmax, in the dtype asked for.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from reportgen.evaluate import arrays


def log_softmax(logits: ArrayLike) -> np.ndarray:
    """Return float64 log-probabilities ``[N, K]`` of ``logits``, stable for large logits."""
    z = torch.from_numpy(arrays.scores(logits, "logits"))
    return torch.log_softmax(z, dim=1).numpy()


def softmax(logits: ArrayLike, *, dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Return probabilities ``[N, K]`` of ``logits``, computed in ``dtype`` (float64 or float32).

    In float32 these are bit for bit the probabilities of ``torch.softmax``
    on the network's float32 logits, so predicting once gives both.
    """
    z = torch.from_numpy(arrays.scores(logits, "logits")).to(dtype)
    return torch.softmax(z, dim=1).numpy()
