"""A split's images, labels and positions as tensors; what the data is (classes, shape, scale).

Every split keeps its images as ``uint8 [N, C, H, W]`` (one byte per pixel);
:meth:`Split.inputs` normalises a batch into the float inputs the models take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from reportgen.artifacts.metrics import FingerprintMethod
from reportgen.config.schema import DatasetName
from reportgen.core.errors import DataError
from reportgen.core.seeding import derive_seed, generator


@dataclass(frozen=True)
class Split:
    """One split: its images as bytes, labels and the images' positions in their source."""

    x: torch.Tensor  # [N, C, H, W] uint8, as decoded
    y: torch.Tensor  # [N] int64
    index: torch.Tensor  # [N] int64 positions in the official file (or the folder's list)
    mean: tuple[float, ...]  # per channel, pixel/255 scale: what normalize() subtracts
    std: tuple[float, ...]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def inputs(self, rows: slice | torch.Tensor) -> torch.Tensor:
        """Return the normalised float32 model inputs ``[B, C, H, W]`` of ``rows``."""
        return normalize(self.x[rows], self.mean, self.std)

    def to(self, device: torch.device) -> Split:
        """Return this split with its tensors on ``device`` (positions stay on the CPU)."""
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device))


@dataclass(frozen=True)
class DataInfo:
    """What the data is: its classes, image shape, normalisation and fingerprint."""

    kind: DatasetName  # data.dataset
    name: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # [channels, height, width]
    mean: tuple[float, ...]  # per channel, pixel/255 scale
    std: tuple[float, ...]
    fingerprint_method: FingerprintMethod  # "idx-sha256" or "folder-sha256"
    fingerprint: dict[str, str]
    test_files: tuple[str, ...] = ()  # an image folder's test images, in test order

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits and what the data is."""

    train: Split
    val: Split
    test: Split
    info: DataInfo

    @property
    def test_images(self) -> np.ndarray:
        """Return the test images for drawing: ``[N, H, W]`` grey or ``[N, H, W, 3]`` RGB uint8."""
        return display_images(self.test.x)


def display_images(x: torch.Tensor) -> np.ndarray:
    """Return ``uint8 [N, C, H, W]`` images as matplotlib draws them: ``[N, H, W]`` or RGB."""
    array = x.cpu().numpy()
    return array[:, 0].copy() if array.shape[1] == 1 else array.transpose(0, 2, 3, 1).copy()


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return ``uint8 [B, C, H, W]`` images as the float32 inputs the models take.

    Done per batch, so a split stays one byte per pixel in memory.  One
    channel divides by Python floats, as a whole-set normalisation did, so
    the inputs of MNIST are bit for bit what they always were.
    """
    return standardize(images.float() / 255.0, mean, std)


def standardize(scaled: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return float images in [0, 1] ``[B, C, H, W]`` as model inputs: ``(x − mean) / std``."""
    if len(mean) == 1:
        return (scaled - mean[0]) / std[0]
    shape = (1, len(mean), 1, 1)
    m = torch.tensor(mean, dtype=torch.float32, device=scaled.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=scaled.device).view(shape)
    return (scaled - m) / s


def split_train(
    n_train: int, *, seed: int, val_size: int, limit_train: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, validation) positions of a seeded split of ``n_train`` training images."""
    if val_size >= n_train:
        raise DataError(f"data.val_size ({val_size}) must be below the {n_train} training images")
    order = torch.randperm(n_train, generator=generator(derive_seed(seed, "split")))
    val_index, train_index = order[:val_size], order[val_size:]
    if limit_train:
        train_index = train_index[:limit_train]
    return train_index, val_index


def take(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, info: DataInfo) -> Split:
    """Return the images and labels at ``index`` as a split of their own."""
    return Split(x[index].contiguous(), y[index].long().contiguous(), index, info.mean, info.std)
