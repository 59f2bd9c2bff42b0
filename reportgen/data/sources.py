"""Which data a run uses: one :class:`DataSource` per ``data.dataset``, asked instead of its name.

A source knows what its data is called and how a sentence names one of its
classes, what it can check of a configuration before any work starts, how
to obtain and verify its files (:meth:`DataSource.acquire`), what identifies
them (:meth:`DataSource.fingerprint`) and how to decode and split them
(:meth:`DataSource.load`).  Whatever the source, the rest of the run sees one
:class:`~reportgen.data.tensors.Dataset` with the class names, the image
shape, the normalisation and a fingerprint of the data.

Importing this module loads neither torch nor PIL: ``reportgen config``
checks a configuration against its source without them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reportgen.config.schema import Config, DataSection, DatasetName
from reportgen.core.errors import ConfigError
from reportgen.core.events import Progress, info, silent
from reportgen.core.text import first_few
from reportgen.data.idx import FASHION_MNIST, MNIST, IdxDataset, raw_dir

if TYPE_CHECKING:
    import torch

    from reportgen.data.tensors import DataInfo, Dataset

FOLDER_KEYS = {"path": None, "image_size": None, "channels": 3, "memory_mb": 4_096}  # defaults


@dataclass(frozen=True)
class Acquired:
    """How the data was obtained, for the run's manifest and ``reportgen data``."""

    fingerprint: dict[str, str]  # file name → SHA-256, or {"folder": SHA-256}
    source: str  # "cache", a download, a package, "image folder"
    location: Path  # the folder holding the verified files, or the image folder


class DataSource(Protocol):
    """What the rest of reportgen may ask of the data behind one ``data.dataset``."""

    @property
    def kind(self) -> DatasetName:
        """Return the ``data.dataset`` value this source serves."""
        ...

    @property
    def title(self) -> str:
        """Return a short name for titles and messages: "MNIST", "Image-folder"."""
        ...

    def class_phrase(self, name: str) -> str:
        """Return how a sentence names a class: "digit 4", “Shirt”."""
        ...

    def default_pairs(self) -> tuple[tuple[int, int], ...]:
        """Return the confused pairs shown when ``report.confused_pairs`` is unset."""
        ...

    def check(self, config: Config) -> None:
        """Refuse, naming the key, settings this data cannot satisfy (before any work)."""
        ...

    def acquire(self, section: DataSection, *, root: str | None, progress: Progress) -> Acquired:
        """Obtain and verify the data's files; ``root`` overrides ``data.root``."""
        ...

    def fingerprint(
        self, section: DataSection, *, data_path: Path | None
    ) -> tuple[dict[str, str], str]:
        """Return what identifies the data now, and in words where it is (for ``verify``)."""
        ...

    def load(
        self, config: Config, *, root: str | None, progress: Progress
    ) -> tuple[Acquired, Dataset]:
        """Obtain, verify, decode and split the data."""
        ...


# --------------------------------------------------------------------------- MNIST, Fashion-MNIST


@dataclass(frozen=True)
class IdxSource:
    """MNIST or Fashion-MNIST: four official IDX files, verified, split by a seeded permutation."""

    files: IdxDataset
    digits: bool  # classes are digits, named "digit 4" in sentences
    pairs: tuple[tuple[int, int], ...] = ()
    default_val_size: int = 5_000  # training images held out when data.val_size is unset

    @property
    def kind(self) -> DatasetName:
        return self.files.kind

    @property
    def title(self) -> str:
        return self.files.title

    def class_phrase(self, name: str) -> str:
        return f"digit {name}" if self.digits else f"“{name}”"

    def default_pairs(self) -> tuple[tuple[int, int], ...]:
        return self.pairs

    def check(self, config: Config) -> None:
        section, files = config.data, self.files
        given = [key for key, default in FOLDER_KEYS.items() if getattr(section, key) != default]
        if given:  # judged by value: a resolved config lists every key
            raise ConfigError(
                f'data.{given[0]}: applies to data.dataset = "imagefolder" only '
                f"(data.dataset is {self.kind!r})"
            )
        val_size = section.val_size or self.default_val_size
        if val_size >= files.train_size:
            raise ConfigError(
                f"data.val_size ({val_size}) must be below the {files.train_size} training images"
            )
        available = files.train_size - val_size
        if section.limit_train > available:
            raise ConfigError(
                f"data.limit_train ({section.limit_train}) exceeds the {available} training "
                f"images left after data.val_size ({val_size}) are held out"
            )
        if section.limit_test > files.test_size:
            raise ConfigError(
                f"data.limit_test ({section.limit_test}) exceeds the {files.test_size} test images"
            )
        tests = section.limit_test or files.test_size
        if config.report.sample_index >= tests:
            raise ConfigError(
                f"report.sample_index ({config.report.sample_index}) must be below the number "
                f"of test images ({tests})"
            )

    def acquire(self, section: DataSection, *, root: str | None, progress: Progress) -> Acquired:
        from reportgen.data.acquire import ensure_idx

        files = ensure_idx(section.root if root is None else root, download=section.download,
                           progress=progress, dataset=self.files)  # fmt: skip
        return Acquired(files.sha256, files.source, files.directory)

    def fingerprint(
        self, section: DataSection, *, data_path: Path | None
    ) -> tuple[dict[str, str], str]:
        # Pinned by the official hashes: a run that recorded others was made from other files.
        current = {name: spec.sha256 for name, spec in self.files.files.items()}
        return current, f"the official {self.title} files"

    def info(self) -> DataInfo:
        """Return what the data is: ten classes, 28×28 grey, the official files' hashes."""
        from reportgen.data.tensors import DataInfo

        files = self.files
        return DataInfo(
            kind=self.kind, name=files.name, classes=files.classes, image_shape=(1, 28, 28),
            mean=(files.mean,), std=(files.std,), fingerprint_method="idx-sha256",
            fingerprint={name: spec.sha256 for name, spec in files.files.items()},
        )  # fmt: skip

    def load(
        self, config: Config, *, root: str | None, progress: Progress
    ) -> tuple[Acquired, Dataset]:
        import numpy as np
        import torch

        from reportgen.data.idx import read_idx_file
        from reportgen.data.tensors import Dataset, split_train, take

        root = config.data.root if root is None else root
        acquired = self.acquire(config.data, root=root, progress=progress)
        target = raw_dir(root, self.files)
        arrays = {name: read_idx_file(target / name) for name in self.files.files}
        train_x = torch.from_numpy(arrays["train-images-idx3-ubyte"].copy()).unsqueeze(1)
        train_y = torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64))
        test_x = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].copy()).unsqueeze(1)
        test_y = torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
        section = config.data
        train_index, val_index = split_train(
            len(train_y), seed=config.seed, val_size=section.val_size or self.default_val_size,
            limit_train=section.limit_train,
        )  # fmt: skip
        test_index = torch.arange(min(section.limit_test or len(test_y), len(test_y)))
        data = self.info()
        dataset = Dataset(
            train=take(train_x, train_y, train_index, data),
            val=take(train_x, train_y, val_index, data),
            test=take(test_x, test_y, test_index, data),
            info=data,
        )
        return acquired, dataset


# --------------------------------------------------------------------------- image folders


def folder_path(section: DataSection) -> Path:
    """Return ``data.path`` with ``~`` expanded (relative paths from the working directory)."""
    if section.path is None:
        raise ConfigError(
            'data.path is required with data.dataset = "imagefolder": the folder holding '
            "train/<class>/ and test/<class>/"
        )
    return Path(os.path.expanduser(section.path))


@dataclass(frozen=True)
class FolderSource:
    """The user's own images in torchvision's ImageFolder layout (:mod:`~.data.imagefolder`)."""

    kind: DatasetName = "imagefolder"
    title: str = "Image-folder"

    def class_phrase(self, name: str) -> str:
        return f"“{name}”"

    def default_pairs(self) -> tuple[tuple[int, int], ...]:
        return ()  # the classes are the user's: only the most confused pairs are found

    def check(self, config: Config) -> None:
        folder_path(config.data)  # sizes and class names are checked once the folder is read

    def acquire(self, section: DataSection, *, root: str | None, progress: Progress) -> Acquired:
        from reportgen.data.imagefolder import scan_image_folder

        scan = scan_image_folder(folder_path(section), channels=section.channels,
                                 image_size=section.image_size)  # fmt: skip
        progress(info("data", f"image folder: {len(scan.classes)} classes in {scan.root}"))
        return Acquired({"folder": scan.fingerprint}, "image folder", scan.root)

    def fingerprint(
        self, section: DataSection, *, data_path: Path | None
    ) -> tuple[dict[str, str], str]:
        from reportgen.data.imagefolder import folder_fingerprint

        path = data_path if data_path is not None else folder_path(section)
        return {"folder": folder_fingerprint(path)}, f"the image folder {path}"

    def load(
        self, config: Config, *, root: str | None, progress: Progress
    ) -> tuple[Acquired, Dataset]:
        from reportgen.data.imagefolder import load_image_folder
        from reportgen.data.tensors import DataInfo, Dataset, split_train, take

        section = config.data
        path = folder_path(section)
        folder = load_image_folder(path, channels=section.channels, image_size=section.image_size,
                                   budget_bytes=section.memory_mb * 2**20,
                                   progress=progress)  # fmt: skip
        channels, height, width = (int(n) for n in folder.train.images.shape[1:])
        data = DataInfo(
            kind=self.kind,
            name=f"image folder {path.name or section.path}",
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
            train = take(folder.train.images, folder.train.labels, train_index, data)
            val = take(folder.val.images, folder.val.labels, _all(len(folder.val.labels)), data)
        else:
            n_train = len(folder.train.labels)
            val_size = section.val_size or max(1, round(n_train / 10))
            train_index, val_index = split_train(
                n_train, seed=config.seed, val_size=val_size, limit_train=section.limit_train
            )
            train = take(folder.train.images, folder.train.labels, train_index, data)
            val = take(folder.train.images, folder.train.labels, val_index, data)
        test_index = _limited(len(folder.test.labels), section.limit_test, "limit_test")
        test = take(folder.test.images, folder.test.labels, test_index, data)
        data = dataclasses.replace(
            data, test_files=tuple(folder.test.files[int(i)] for i in test_index)
        )
        acquired = Acquired({"folder": folder.fingerprint}, "image folder", path)
        return acquired, Dataset(train, val, test, data)


def _all(n: int) -> torch.Tensor:
    import torch

    return torch.arange(n)


def _limited(n: int, limit: int, key: str) -> torch.Tensor:
    if limit > n:
        raise ConfigError(f"data.{key} ({limit}) exceeds the {n} images there are")
    return _all(limit or n)


# --------------------------------------------------------------------------- the registry


SOURCES: Mapping[str, DataSource] = {
    "mnist": IdxSource(MNIST, digits=True, pairs=((4, 9),)),
    "fashion-mnist": IdxSource(FASHION_MNIST, digits=False),
    "imagefolder": FolderSource(),
}


def source_for(kind: str) -> DataSource:
    """Return the source of ``data.dataset`` (the config allows only these names)."""
    return SOURCES[kind]


def check_config(config: Config) -> Config:
    """Return ``config`` once its data source has checked what it can before any work starts."""
    source_for(config.data.dataset).check(config)
    return config


def load(
    config: Config, *, root: str | None = None, progress: Progress = silent
) -> tuple[Acquired, Dataset]:
    """Obtain, verify, decode and split the configured data (``root`` overrides ``data.root``)."""
    acquired, dataset = source_for(config.data.dataset).load(config, root=root, progress=progress)
    check_report(config, dataset)
    return acquired, dataset


# --------------------------------------------------------------------------- classes


def confused_pairs(config: Config, classes: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Return ``report.confused_pairs`` as class indices (names looked up in the data's classes).

    Unset, it is the source's default: ``[[4, 9]]`` on MNIST, no pair (automatic
    pairs only) on other data.
    """
    pairs = config.report.confused_pairs
    if pairs is None:
        return source_for(config.data.dataset).default_pairs()
    return tuple(
        (class_index(true, classes, "report.confused_pairs"),
         class_index(pred, classes, "report.confused_pairs"))
        for true, pred in pairs
    )  # fmt: skip


AUTO_TOP_K = 5  # the k of top-k accuracy when report.top_k is unset …
AUTO_TOP_K_CLASSES = 20  # … and the data have at least this many classes


def top_k(config: Config, num_classes: int) -> int | None:
    """Return the k of the report's top-k accuracy for data of ``num_classes``, None for none.

    Unset, ``report.top_k`` is 5 with at least 20 classes (where top-1 says too
    little) and none below; 0 is none.  A k that is not below the number of
    classes is refused: every image would count as right.
    """
    k = config.report.top_k
    if k is None:
        return AUTO_TOP_K if num_classes >= AUTO_TOP_K_CLASSES else None
    if k == 0:
        return None
    if k >= num_classes:
        raise ConfigError(
            f"report.top_k ({k}) must be below the number of classes ({num_classes}), or 0 for none"
        )
    return k


def class_index(ref: int | str, classes: tuple[str, ...], key: str) -> int:
    """Return the index of a class given by index or by name; else one line naming ``key``."""
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
    """Refuse report settings that the data, once read, cannot satisfy, naming the key."""
    if config.report.sample_index >= len(dataset.test):
        raise ConfigError(
            f"report.sample_index ({config.report.sample_index}) must be below the number of "
            f"test images ({len(dataset.test)})"
        )
    confused_pairs(config, dataset.info.classes)
    top_k(config, dataset.info.num_classes)
