"""A network's predictions on corrupted test images: which images, corrupted how, in batches.

The images are corrupted on the CPU (:mod:`reportgen.data.corruptions`), in
[0, 1] before the dataset's normalisation, a batch at a time, and each batch
goes through the network as the clean test set does; severity 0 feeds the
network the very inputs of the clean predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from reportgen.config.robustness import CorruptionName
from reportgen.core.seeding import derive_seed
from reportgen.data.corruptions import corrupt
from reportgen.data.tensors import standardize
from reportgen.evaluate import predict

Condition = tuple[CorruptionName | None, int]  # (corruption, severity); (None, 0): clean


def subsample(test_images: int, images: int, *, seed: int) -> np.ndarray:
    """Return the test positions measured: all (``images`` 0 or at least the test set), or a
    seeded subsample of ``images``, in test order."""
    if images == 0 or images >= test_images:
        return np.arange(test_images, dtype=np.int64)
    rng = np.random.default_rng(derive_seed(seed, "robustness"))
    return np.sort(rng.choice(test_images, size=images, replace=False)).astype(np.int64)


def conditions(corruptions: Sequence[CorruptionName], severities: Sequence[int]) -> list[Condition]:
    """Return the clean condition, then every corruption at every severity."""
    return [(None, 0), *((name, severity) for name in corruptions for severity in severities)]


@torch.inference_mode()
def corrupted_predictions(
    networks: Mapping[str, nn.Module],
    images: torch.Tensor,
    positions: np.ndarray,
    *,
    conditions: Sequence[Condition],
    seed: int,
    mean: Sequence[float],
    std: Sequence[float],
    batch_sizes: Mapping[str, int],
    device: torch.device,
) -> dict[str, dict[Condition, np.ndarray]]:
    """Return each network's predicted class of each image under each condition.

    Parameters
    ----------
    networks : mapping of str to nn.Module
        Model name → network, evaluated in eval mode.
    images : Tensor of uint8, shape (n, C, H, W)
        The test images at ``positions``, on the CPU.
    positions : ndarray of int64, shape (n,)
        Their positions in the test split: with ``seed``, what each image's corruption draws.
    conditions : sequence of (corruption or None, severity)
    seed : int
        The run's seed.
    mean, std : sequence of float
        The dataset's normalisation, applied after the corruption.
    batch_sizes : mapping of str to int
        Images per batch through each network (its clean predictions' batch).
        Networks of one batch size share each corrupted batch.
    device : torch.device
        Where the networks are.

    Returns
    -------
    dict
        Model → condition → predicted classes ``[n]`` int64: the most probable
        class, as for the clean predictions (non-finite logits count as zeros).
    """
    result: dict[str, dict[Condition, np.ndarray]] = {name: {} for name in networks}
    groups: dict[int, list[str]] = {}
    for name, network in networks.items():
        network.eval()
        groups.setdefault(batch_sizes[name], []).append(name)
    for condition in conditions:
        corruption, severity = condition
        for batch_size, names in groups.items():
            predicted: dict[str, list[np.ndarray]] = {name: [] for name in names}
            for start in range(0, len(positions), batch_size):
                batch = images[start : start + batch_size].float() / 255.0
                if corruption is not None:
                    rows = positions[start : start + batch_size].tolist()
                    batch = corrupt(batch, corruption, severity, seed=seed, indices=rows)
                inputs = standardize(batch.to(device), mean, std)
                for name in names:
                    logits = networks[name](inputs).cpu().to(torch.float64).numpy()
                    proba = predict.proba_from_logits(predict.without_non_finite(logits))
                    predicted[name].append(proba.argmax(axis=1))
            for name in names:
                result[name][condition] = np.concatenate(predicted[name]).astype(np.int64)
    return result
