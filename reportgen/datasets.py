"""Which data a run uses: ``data.dataset`` → verified, decoded, split tensors.

MNIST and Fashion-MNIST come from :mod:`reportgen.data`, an image folder from
:mod:`reportgen.imagefolder`; whatever the source, the rest of the run sees
one :class:`~reportgen.data.Dataset` with the class names, the image shape,
the normalisation and a fingerprint of the data.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from reportgen import data
from reportgen.config import DEFAULT_VAL_SIZE, Config, DataSection
from reportgen.data import DataInfo, Dataset, Progress, take
from reportgen.errors import ConfigError
from reportgen.formatting import first_few


@dataclass(frozen=True)
class Acquired:
    """How the data was obtained, for the run's manifest."""

    fingerprint: dict[str, str]  # file name → SHA-256, or {"folder": SHA-256}
    source: str


def folder_path(section: DataSection) -> Path:
    """Return ``data.path`` with ``~`` expanded (relative paths from the working directory)."""
    assert section.path is not None  # the config requires it for an image folder
    return Path(os.path.expanduser(section.path))


def load(
    config: Config, *, root: str | None = None, progress: Progress = lambda message: None
) -> tuple[Acquired, Dataset]:
    """Obtain, verify, decode and split the configured data (``root`` overrides ``data.root``)."""
    section = config.data
    if section.dataset == "imagefolder":
        return _load_folder(config, progress)
    spec = data.IDX_DATASETS[section.dataset]
    root = section.root if root is None else root
    files = data.ensure_mnist(root, download=section.download, progress=progress, dataset=spec)
    dataset = data.load_dataset(
        root,
        seed=config.seed,
        val_size=section.val_size or DEFAULT_VAL_SIZE,
        limit_train=section.limit_train,
        limit_test=section.limit_test,
        dataset=spec,
    )
    return Acquired(files.sha256, files.source), dataset


def _load_folder(config: Config, progress: Progress) -> tuple[Acquired, Dataset]:
    from reportgen import imagefolder  # PIL and the folder walk only when needed

    section = config.data
    folder = imagefolder.load_image_folder(
        folder_path(section),
        channels=section.channels,
        image_size=section.image_size,
        budget_bytes=section.memory_mb * 2**20,
        progress=progress,
    )
    channels, height, width = (int(n) for n in folder.train.images.shape[1:])
    info = DataInfo(
        kind="imagefolder",
        name=f"image folder {folder_path(section).name or section.path}",
        classes=folder.classes,
        image_shape=(channels, height, width),
        mean=folder.mean,
        std=tuple(max(s, 1e-6) for s in folder.std),  # a constant channel must not divide by 0
        fingerprint_method="folder-sha256",
        fingerprint={"folder": folder.fingerprint},
    )
    if folder.val is not None:
        if section.val_size is not None:
            raise ConfigError(
                f"data.val_size: {section.path} has a val/ folder, which is the validation "
                "split; remove data.val_size"
            )
        train_index = _limited(len(folder.train.labels), section.limit_train, "limit_train")
        train = take(folder.train.images, folder.train.labels, train_index, info)
        val = take(folder.val.images, folder.val.labels, _all(len(folder.val.labels)), info)
    else:
        n_train = len(folder.train.labels)
        val_size = section.val_size or max(1, round(n_train / 10))
        train_index, val_index = data.split_train(
            n_train, seed=config.seed, val_size=val_size, limit_train=section.limit_train
        )
        train = take(folder.train.images, folder.train.labels, train_index, info)
        val = take(folder.train.images, folder.train.labels, val_index, info)
    test_index = _limited(len(folder.test.labels), section.limit_test, "limit_test")
    test = take(folder.test.images, folder.test.labels, test_index, info)
    info = dataclasses.replace(
        info, test_files=tuple(folder.test.files[int(i)] for i in test_index)
    )
    return Acquired({"folder": folder.fingerprint}, "image folder"), Dataset(train, val, test, info)


def _all(n: int) -> torch.Tensor:
    return torch.arange(n)


def _limited(n: int, limit: int, key: str) -> torch.Tensor:
    if limit > n:
        raise ConfigError(f"data.{key} ({limit}) exceeds the {n} images there are")
    return _all(limit or n)


def confused_pairs(config: Config, info: DataInfo) -> tuple[tuple[int, int], ...]:
    """Return ``report.confused_pairs`` as class indices (names looked up in the data's classes).

    Unset, it is ``[[4, 9]]`` on MNIST and no pair (automatic pairs only) on other data.
    """
    pairs = config.report.confused_pairs
    if pairs is None:
        return ((4, 9),) if info.kind == "mnist" else ()
    return tuple(
        (class_index(true, info, "report.confused_pairs"),
         class_index(pred, info, "report.confused_pairs"))
        for true, pred in pairs
    )  # fmt: skip


def class_index(ref: int | str, info: DataInfo, key: str) -> int:
    """Return the index of a class given by index or by name; else one line naming ``key``."""
    classes = info.classes
    if isinstance(ref, int):
        if ref >= len(classes):
            raise ConfigError(
                f"{key}: class {ref} does not exist (classes are 0–{len(classes) - 1})"
            )
        return ref
    if ref in classes:
        return classes.index(ref)
    close = difflib.get_close_matches(ref, classes, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = first_few([repr(c) for c in classes], 12)
    raise ConfigError(f"{key}: no class named {ref!r} (classes: {shown}){hint}")


def check_report(config: Config, dataset: Dataset) -> None:
    """Refuse report settings that the data cannot satisfy, naming the key."""
    if config.report.sample_index >= len(dataset.test):
        raise ConfigError(
            f"report.sample_index ({config.report.sample_index}) must be below the number of "
            f"test images ({len(dataset.test)})"
        )
    confused_pairs(config, dataset.info)
