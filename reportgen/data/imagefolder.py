"""The user's own images in torchvision's ImageFolder layout, decoded once into uint8 tensors.

Layout: ``PATH/train/<class>/…`` and ``PATH/test/<class>/…``, optionally
``PATH/val/<class>/…`` (then the validation split; otherwise the caller holds
one out of ``train``).  The rules, so that a run is reproducible and a bad
folder stops it with one line naming the file:

- Classes are the folder names of ``train/``, sorted by code point; a label is
  a class's position.  A training class may be missing from ``test/`` or
  ``val/`` (its support there is 0), but a folder that exists must hold at
  least one image, and a class in ``test/`` or ``val/`` must exist in
  ``train/``.  Files below a class folder are found at any depth (as
  torchvision does) and ordered by relative path, so the order never depends
  on how the file system lists a folder.
- Images are the files ending in one of :data:`IMAGE_EXTENSIONS` (any case),
  decoded only by the :data:`PIL_FORMATS` plugins; other files, and every
  name starting with ``.``, are skipped.  A symbolic link anywhere in a split
  is refused: data from outside ``PATH`` must not be read through a link.
- Conversion (deterministic): 16-bit samples are scaled to 8 bits
  (``round(v / 257)``); transparency is composited onto black, so a
  transparent pixel reads 0; then PIL's ``convert("L")`` (ITU-R 601-2 luma)
  or ``convert("RGB")``.  Only the first frame of a multi-frame file is used
  and EXIF orientation is not applied (as torchvision's loader).  With
  ``image_size`` every image is resized to a square with PIL's antialiased
  bilinear filter, ignoring its aspect ratio; without it every image must
  already have one size.
- The fingerprint is the SHA-256 of, for each image file of every split in
  the order of their relative POSIX paths: the path in UTF-8, a NUL byte, the
  content's length as 8 bytes big-endian, the content.  Skipped files are
  not part of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from reportgen.core.errors import ConfigError, DataError
from reportgen.core.events import Progress, info, silent
from reportgen.core.text import count, hidden_character, one_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# The decoders those extensions need; limiting Image.open to them keeps PIL's
# other plugins (EPS runs Ghostscript) away from files a user did not vet.
PIL_FORMATS = ("BMP", "JPEG", "PNG", "PPM", "TIFF", "WEBP")
SPLITS = ("train", "test", "val")  # val is optional
RESAMPLE = Image.Resampling.BILINEAR
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
# What PIL's decoders raise for a malformed file (anything else is a bug, with its traceback).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
_STATS_CHUNK = 1024  # images per bincount, so the statistics need little memory


@dataclass(frozen=True)
class FolderSplit:
    """One split, decoded: images, labels and the file each image came from."""

    images: torch.Tensor  # [N, C, H, W] uint8
    labels: torch.Tensor  # [N] int64
    files: tuple[str, ...]  # relative POSIX paths, e.g. "train/cat/001.png"

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class FolderData:
    """The decoded folder: splits, class names, training statistics and fingerprint."""

    classes: tuple[str, ...]
    train: FolderSplit
    test: FolderSplit
    val: FolderSplit | None
    mean: tuple[float, ...]  # per channel, [0,1] scale, from the training split
    std: tuple[float, ...]
    fingerprint: str  # hex SHA-256 as defined in the module docstring


@dataclass(frozen=True)
class ScannedSplit:
    """One split as listed: files in tensor order, their labels and content digests."""

    files: tuple[str, ...]
    labels: tuple[int, ...]
    sha256: tuple[str, ...]  # of each file's bytes when scanned: decoding checks them

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class DecodeCost:
    """What decoding one image needs at most, from its header: see :func:`decode_cost`."""

    file: str
    size: tuple[int, int]  # width, height in the file
    mode: str  # PIL's mode of the file's pixels
    bytes: int


@dataclass(frozen=True)
class FolderScan:
    """What decoding will produce and cost, known from the files and image headers alone."""

    root: Path
    classes: tuple[str, ...]
    train: ScannedSplit
    test: ScannedSplit
    val: ScannedSplit | None
    shape: tuple[int, int, int]  # (C, H, W) of every decoded image
    image_size: int | None  # the side every image is resized to, or None to keep sizes
    bytes_needed: int  # the uint8 images plus the int64 labels of every split
    fingerprint: str
    largest: DecodeCost  # the image whose decoding needs the most memory

    def splits(self) -> dict[str, ScannedSplit]:
        """Return the present splits by name, in :data:`SPLITS` order."""
        found = {"train": self.train, "test": self.test, "val": self.val}
        return {name: split for name, split in found.items() if split is not None}


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class _Listing:
    """The image files of each split, before any is read."""

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, tuple[tuple[str, int], ...]]  # split -> (relative path, label)

    def files(self) -> list[str]:
        """Return every image file in fingerprint order (sorted relative paths)."""
        return sorted(rel for entries in self.splits.values() for rel, _ in entries)


def _check_root(path: Path) -> Path:
    root = Path(os.path.expanduser(path))
    if not root.exists():
        raise ConfigError(
            f"data.path {root} does not exist: give a folder holding train/ and test/"
        )
    if not root.is_dir():
        raise ConfigError(f"data.path {root} is not a folder: give one holding train/ and test/")
    return root


def _check_name(rel: str) -> None:
    """Refuse a name that cannot appear on one line of a report or in UTF-8 files.

    Control and bidirectional formatting characters are refused too: a class
    name is shown in every table and figure, where they would disguise it.
    """
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{rel!r}: the name is not valid UTF-8; rename it") from None
    if (hidden := hidden_character(rel)) is not None:
        raise DataError(f"{rel!r}: the name holds {hidden}; rename it")


def _entries(root: Path, rel_dir: str) -> list[os.DirEntry[str]]:
    """Return a folder's entries that are not hidden, sorted by name; refuse symbolic links."""
    try:
        with os.scandir(root / rel_dir) as scan:
            entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"{rel_dir}/: cannot be listed ({one_line(e)})") from e
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}"
        if entry.is_symlink() or entry.is_dir(follow_symlinks=False) or _is_image_name(rel):
            _check_name(rel)  # the names that will be shown; a skipped file's may be anything
        if entry.is_symlink():
            raise DataError(
                f"{rel}: a symbolic link; data.path must hold its images itself, not link to them"
            )
    return entries


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _class_files(root: Path, rel_dir: str) -> tuple[list[str], int]:
    """Return the image files below a class folder (any depth) and how many files were skipped."""
    files: list[str] = []
    skipped = 0
    for entry in _entries(root, rel_dir):
        rel = f"{rel_dir}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            found, skipped_below = _class_files(root, rel)
            files += found
            skipped += skipped_below
        elif not _is_image_name(entry.name):
            skipped += 1
        elif entry.is_file(follow_symlinks=False):
            files.append(rel)
        else:
            raise DataError(f"{rel}: not a regular file")
    return files, skipped


def _split_folder(root: Path, split: str) -> bool:
    """Return whether ``root/split`` exists, refusing one that is a link or not a folder."""
    folder = root / split
    if folder.is_symlink():
        raise DataError(f"{split}/: a symbolic link; data.path must hold its splits itself")
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise DataError(f"{split}: not a folder; expected {split}/<class>/<image>")
    return True


def _class_folders(root: Path, split: str) -> list[str]:
    """Return the class folder names of a split; an image directly in the split is an error."""
    names = []
    for entry in _entries(root, split):
        if entry.is_dir(follow_symlinks=False):
            names.append(entry.name)
        elif _is_image_name(entry.name):
            raise DataError(
                f"{split}/{entry.name}: an image outside a class folder; put it in {split}/<class>/"
            )
    if not names:
        raise DataError(f"{split}/: no class folders; expected {split}/<class>/<image>")
    return names


def _list(path: Path) -> _Listing:
    """List the image files of every split, checking the layout and the classes."""
    root = _check_root(path)
    for split in ("train", "test"):
        if not _split_folder(root, split):
            raise DataError(
                f"{split}/: missing in data.path {root}; "
                "expected train/<class>/<image> and test/<class>/<image>"
            )
    folders = {
        split: sorted(_class_folders(root, split))
        for split in SPLITS
        if split != "val" or _split_folder(root, split)
    }
    classes = tuple(folders["train"])
    if len(classes) < 2:
        raise DataError(
            f"train/: one class folder ({classes[0]}); a classifier needs at least two classes"
        )
    label = {name: index for index, name in enumerate(classes)}
    splits: dict[str, tuple[tuple[str, int], ...]] = {}
    for split, names in folders.items():
        entries: list[tuple[str, int]] = []
        for name in names:
            if name not in label:
                raise DataError(
                    f"{split}/{name}/: class {name!r} is not a folder in train/ "
                    f"(the classes are {', '.join(classes)})"
                )
            files, skipped = _class_files(root, f"{split}/{name}")
            if not files:
                also = f" ({count(skipped, 'other file')} skipped)" if skipped else ""
                raise DataError(
                    f"{split}/{name}/: no images{also}; images end in {', '.join(IMAGE_EXTENSIONS)}"
                )
            entries += [(rel, label[name]) for rel in sorted(files)]
        splits[split] = tuple(entries)
    return _Listing(root, classes, splits)


# --------------------------------------------------------------------------- reading


def _read(root: Path, rel: str) -> bytes:
    """Return a file's bytes; a file replaced by a link since it was listed is refused."""
    try:
        fd = os.open(root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise DataError(f"{rel}: cannot be read ({one_line(e)})") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"{rel}: not a regular file")
        try:
            return f.read()
        except OSError as e:
            raise DataError(f"{rel}: cannot be read ({one_line(e)})") from e


class Fingerprint:
    """SHA-256 over framed files: UTF-8 path, NUL, 8-byte big-endian length, content."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, rel: str, content: bytes) -> None:
        """Add one file; files must come in the order of their relative paths."""
        self._digest.update(rel.encode("utf-8") + b"\0" + len(content).to_bytes(8, "big"))
        self._digest.update(content)

    def hexdigest(self) -> str:
        """Return the fingerprint as 64 hex digits."""
        return self._digest.hexdigest()


@contextlib.contextmanager
def _strict_pil() -> Iterator[None]:
    """Make a truncated image and a decompression bomb errors, whatever the process set."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _open(rel: str, content: bytes) -> Image.Image:
    """Open an image lazily (its header only), naming the file in every failure."""
    try:
        return Image.open(io.BytesIO(content), formats=PIL_FORMATS)
    except UnidentifiedImageError as e:
        raise DataError(
            f"{rel}: not a readable image (PIL reads {', '.join(PIL_FORMATS)} here)"
        ) from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{rel}: refused as a possible decompression bomb ({e})") from e
    except _PIL_ERRORS as e:
        raise DataError(f"{rel}: not a readable image ({one_line(e)})") from e


# --------------------------------------------------------------------------- scanning


def decode_cost(rel: str, image: Image.Image, *, channels: int) -> DecodeCost:
    """Return the most memory decoding ``image`` needs, from its header alone.

    Its pixels as PIL holds them (4 bytes a pixel for a mode of several
    bands or 32-bit samples), 16-bit samples widened to int64 for scaling,
    and the converted copy (1 byte a pixel grey, 4 for PIL's RGB).
    """
    width, height = image.size
    pixels = width * height
    bands = len(image.getbands())
    stored = (
        4 if bands > 1 or image.mode in ("I", "F") else 2 if image.mode.startswith("I;16") else 1
    )
    widened = 8 * bands if image.mode in _SIXTEEN_BIT_MODES else 0
    converted = 1 if channels == 1 else 4
    return DecodeCost(rel, image.size, image.mode, pixels * (stored + widened + converted))


def _check_options(channels: int, image_size: int | None) -> None:
    if channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {channels!r}")
    if image_size is not None and (isinstance(image_size, bool) or image_size < 1):
        raise ConfigError(f"data.image_size must be a positive number of pixels, got {image_size}")


def scan_image_folder(path: Path, *, channels: int, image_size: int | None) -> FolderScan:
    """Return the listing, decoded shape, memory needed and fingerprint of an image folder.

    Every image file is read once to hash it, but only its header is parsed,
    so a folder too large for memory is known before anything is decoded.
    """
    _check_options(channels, image_size)
    listing = _list(path)
    fingerprint = Fingerprint()
    file_sha256: dict[str, str] = {}
    first: tuple[str, tuple[int, int]] | None = None
    largest: DecodeCost | None = None
    with _strict_pil():
        for rel in listing.files():
            content = _read(listing.root, rel)
            fingerprint.add(rel, content)
            file_sha256[rel] = hashlib.sha256(content).hexdigest()
            with _open(rel, content) as image:
                size = image.size
                cost = decode_cost(rel, image, channels=channels)
            if largest is None or cost.bytes > largest.bytes:
                largest = cost
            if first is None:
                first = (rel, size)
            elif image_size is None and size != first[1]:
                raise DataError(
                    f"{first[0]} is {_dims(first[1])} but {rel} is {_dims(size)}: "
                    "images differ in size; set data.image_size to resize them all"
                )
    assert first is not None and largest is not None  # _list found an image per class
    width, height = (image_size, image_size) if image_size is not None else first[1]
    scanned = {
        name: ScannedSplit(
            files=tuple(rel for rel, _ in entries),
            labels=tuple(label for _, label in entries),
            sha256=tuple(file_sha256[rel] for rel, _ in entries),
        )
        for name, entries in listing.splits.items()
    }
    total = sum(len(split) for split in scanned.values())
    pixels = channels * height * width
    return FolderScan(
        root=listing.root,
        classes=listing.classes,
        train=scanned["train"],
        test=scanned["test"],
        val=scanned.get("val"),
        shape=(channels, height, width),
        image_size=image_size,
        bytes_needed=total * (pixels + 8),  # uint8 pixels + one int64 label each
        fingerprint=fingerprint.hexdigest(),
        largest=largest,
    )


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def folder_fingerprint(path: Path) -> str:
    """Return the fingerprint of an image folder without decoding or parsing any image."""
    listing = _list(path)
    fingerprint = Fingerprint()
    for rel in listing.files():
        fingerprint.add(rel, _read(listing.root, rel))
    return fingerprint.hexdigest()


# --------------------------------------------------------------------------- decoding


def _eight_bit(image: Image.Image) -> Image.Image:
    """Return an image PIL can convert to L or RGB: 16-bit scaled, transparency on black."""
    if image.mode == "F":
        raise ValueError("32-bit floating-point pixels are not supported; save with 8 or 16 bits")
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        # round(v * 255 / 65535) in integers: exact, and no ties occur.
        return Image.fromarray(((samples * 255 + 32767) // 65535).astype(np.uint8))
    if image.has_transparency_data:
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, image.convert("RGBA"))
    return image


def decode_image(content: bytes, rel: str, *, channels: int, image_size: int | None) -> np.ndarray:
    """Return one image file's pixels as ``[C, H, W]`` uint8, converted and resized."""
    with _open(rel, content) as image:
        try:
            image.load()
            converted = _eight_bit(image).convert("L" if channels == 1 else "RGB")
            if image_size is not None and converted.size != (image_size, image_size):
                converted = converted.resize((image_size, image_size), RESAMPLE)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataError(f"{rel}: refused as a possible decompression bomb ({e})") from e
        except _PIL_ERRORS as e:
            raise DataError(f"{rel}: cannot be decoded ({one_line(e)})") from e
    pixels = np.asarray(converted)  # [H, W] or [H, W, 3]
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _decode_split(scan: FolderScan, split: ScannedSplit) -> FolderSplit:
    """Decode one split's files into a preallocated tensor, checking each is as scanned."""
    images = torch.empty((len(split), *scan.shape), dtype=torch.uint8)
    out = images.numpy()  # shares memory: filled in place, one image at a time
    for index, (rel, sha256) in enumerate(zip(split.files, split.sha256, strict=True)):
        content = _read(scan.root, rel)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise DataError(f"{rel}: changed while the folder was being read; run again")
        pixels = decode_image(content, rel, channels=scan.shape[0], image_size=scan.image_size)
        if pixels.shape != scan.shape:
            raise DataError(
                f"{rel}: decodes to {pixels.shape[2]}×{pixels.shape[1]}, "
                f"its header says {scan.shape[2]}×{scan.shape[1]}"
            )
        out[index] = pixels
    labels = torch.tensor(split.labels, dtype=torch.int64)
    return FolderSplit(images, labels, split.files)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return per-channel mean and population std of uint8 ``[N, C, H, W]`` on the [0, 1] scale.

    Exact: the sums are integers (a histogram per channel), so the result
    does not depend on summation order or thread count.
    """
    values = np.arange(256, dtype=np.int64)
    means, stds = [], []
    for channel in range(images.shape[1]):
        histogram = np.zeros(256, dtype=np.int64)
        for start in range(0, images.shape[0], _STATS_CHUNK):
            chunk = images[start : start + _STATS_CHUNK, channel].numpy()
            histogram += np.bincount(chunk.ravel(), minlength=256)
        n = int(histogram.sum())
        total = int(histogram @ values)
        squares = int(histogram @ (values * values))
        means.append(total / (255 * n))
        stds.append(math.sqrt(n * squares - total * total) / (255 * n))
    return tuple(means), tuple(stds)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB ({size:,} bytes)"


def load_image_folder(
    path: Path,
    *,
    channels: int,
    image_size: int | None,
    budget_bytes: int,
    progress: Progress = silent,
) -> FolderData:
    """Decode an image folder once into uint8 tensors, with its statistics and fingerprint.

    Refuses, before decoding anything, a folder whose tensors would need more
    than ``budget_bytes``, or one with an image whose decoding (its full-size
    pixels, :func:`decode_cost`) would not fit in what the tensors leave.
    """
    scan = scan_image_folder(path, channels=channels, image_size=image_size)
    sizes = ", ".join(
        f"{count(len(split), name + ' image')}" for name, split in scan.splits().items()
    )
    found = f"{sizes} in {len(scan.classes)} classes, {_mib(scan.bytes_needed)}"
    progress(info("data", f"image folder: {found}"))
    if scan.bytes_needed > budget_bytes:
        c, h, w = scan.shape
        raise DataError(
            f"data.path {scan.root}: its images need {_mib(scan.bytes_needed)} as uint8 "
            f"{c}×{h}×{w} tensors, over the memory budget of {_mib(budget_bytes)} "
            "(data.memory_mb); set a smaller data.image_size, use fewer images, or raise "
            "data.memory_mb"
        )
    largest = scan.largest
    if scan.bytes_needed + largest.bytes > budget_bytes:
        raise DataError(
            f"{largest.file}: its header says {_dims(largest.size)} pixels ({largest.mode}), "
            f"which need {_mib(largest.bytes)} to decode besides the {_mib(scan.bytes_needed)} "
            f"of the tensors, over the memory budget of {_mib(budget_bytes)} (data.memory_mb); "
            "shrink the image or raise data.memory_mb"
        )
    decoded: dict[str, FolderSplit] = {}
    with _strict_pil():
        for name, split in scan.splits().items():
            progress(info("data", f"image folder: decoding {count(len(split), name + ' image')}"))
            decoded[name] = _decode_split(scan, split)
    mean, std = channel_stats(decoded["train"].images)
    return FolderData(
        classes=scan.classes,
        train=decoded["train"],
        test=decoded["test"],
        val=decoded.get("val"),
        mean=mean,
        std=std,
        fingerprint=scan.fingerprint,
    )
