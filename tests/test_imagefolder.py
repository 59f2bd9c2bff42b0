"""Image folders: order, conversion, statistics, fingerprint, one-line errors for bad folders."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from reportgen.core.errors import ConfigError, DataError
from reportgen.data import imagefolder
from reportgen.data.imagefolder import (
    IMAGE_EXTENSIONS,
    FolderData,
    decode_image,
    folder_fingerprint,
    load_image_folder,
    scan_image_folder,
)
from tests.conftest import NO_CHECKS
from tests.imagefolder_fixture import make_image_folder, shapes_for

CLASSES = ("circle", "cross", "square", "triangle")  # sorted
BUDGET = 2**30


def load(root: Path, *, channels: int = 3, image_size: int | None = 16) -> FolderData:
    return load_image_folder(root, channels=channels, image_size=image_size, budget_bytes=BUDGET)


def independent_fingerprint(root: Path) -> str:
    """The documented framing, computed here from the file tree without the module."""
    files = sorted(
        path.relative_to(root).as_posix()
        for split in ("train", "test", "val")
        for path in (root / split).rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    digest = hashlib.sha256()
    for rel in files:
        content = (root / rel).read_bytes()
        digest.update(rel.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four classes of shapes in three sizes, 6 train and 3 test images each; read-only."""
    return make_image_folder(tmp_path_factory.mktemp("shapes"), per_class_train=6, per_class_test=3)


@pytest.fixture(scope="session")
def uniform_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shapes all 20×20, with a val/ split; read-only."""
    root = tmp_path_factory.mktemp("uniform")
    return make_image_folder(root, per_class_train=5, per_class_test=2, sizes=(20,), val=True)


@pytest.fixture(scope="session")
def shapes_data(shapes_root: Path) -> FolderData:
    return load(shapes_root)


@pytest.fixture
def folder(shapes_root: Path, tmp_path: Path) -> Path:
    """A copy of ``shapes_root`` that a test may change."""
    return Path(shutil.copytree(shapes_root, tmp_path / "data"))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- tensors


def test_splits_have_uint8_images_int64_labels_and_sorted_files(shapes_data: FolderData) -> None:
    data = shapes_data
    assert data.classes == CLASSES
    assert data.val is None
    for split, per_class in ((data.train, 6), (data.test, 3)):
        assert split.images.shape == (4 * per_class, 3, 16, 16)
        assert split.images.dtype == torch.uint8
        assert split.labels.dtype == torch.int64
        assert split.labels.tolist() == [k for k in range(4) for _ in range(per_class)]
        assert [f.split("/")[1] for f in split.files] == [CLASSES[k] for k in split.labels]
    assert data.train.files[:2] == ("train/circle/000.png", "train/circle/001.png")
    assert data.test.files[-1] == "test/triangle/002.png"


def test_resized_pixels_are_pil_bilinear(shapes_root: Path, shapes_data: FolderData) -> None:
    for index in (0, 7, 23):
        with Image.open(shapes_root / shapes_data.train.files[index]) as image:
            expected = np.asarray(image.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR))
        assert np.array_equal(shapes_data.train.images[index].numpy(), expected.transpose(2, 0, 1))


def test_without_image_size_pixels_are_the_files_own(uniform_root: Path) -> None:
    data = load(uniform_root, image_size=None)
    assert data.train.images.shape == (20, 3, 20, 20)
    with Image.open(uniform_root / data.test.files[3]) as image:
        expected = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(data.test.images[3].numpy(), expected)
    # resizing to the size images already have changes nothing
    assert torch.equal(load(uniform_root, image_size=20).train.images, data.train.images)


def test_one_channel_is_pil_luma_of_the_same_file(uniform_root: Path) -> None:
    grey = load(uniform_root, channels=1, image_size=None)
    assert grey.train.images.shape == (20, 1, 20, 20)
    assert len(grey.mean) == len(grey.std) == 1
    with Image.open(uniform_root / grey.train.files[5]) as image:
        expected = np.asarray(image.convert("L"))
    assert np.array_equal(grey.train.images[5, 0].numpy(), expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_mean_and_std_match_numpy_on_the_training_split(uniform_root: Path, channels: int) -> None:
    data = load(uniform_root, channels=channels, image_size=None)
    pixels = data.train.images.numpy().astype(np.float64) / 255
    assert np.allclose(data.mean, pixels.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert np.allclose(data.std, pixels.std(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert all(isinstance(value, float) for value in (*data.mean, *data.std))
    everything = np.concatenate([data.train.images.numpy(), data.test.images.numpy()])
    assert data.mean != tuple((everything.astype(np.float64) / 255).mean(axis=(0, 2, 3)))


def test_val_folder_is_the_validation_split(uniform_root: Path) -> None:
    data = load(uniform_root)
    assert data.val is not None
    assert len(data.val) == 4 * 2
    assert all(f.startswith("val/") for f in data.val.files)
    assert all(f.startswith("test/") for f in data.test.files)
    assert [f.split("/")[1] for f in data.val.files] == [CLASSES[k] for k in data.val.labels]


def test_order_is_by_class_name_then_path_and_skips_what_is_not_an_image(
    shapes_root: Path, tmp_path: Path
) -> None:
    png = (shapes_root / "train/circle/000.png").read_bytes()
    root = tmp_path / "data"
    layout = {
        "train/a b/x.png": png,
        "train/a/z.png": png,
        "train/a/sub/y.png": png,
        "train/a/B.PNG": png,  # the extension's case does not matter
        "train/Z/x.png": png,
        "train/B/x.png": png,
        "test/a/x.png": png,
        "train/a/notes.txt": b"not an image",
        "train/a/odd\tname.txt": b"skipped, so its name does not matter",
        "train/a/.hidden.png": b"not an image either",
        "train/a/.ipynb_checkpoints/c.png": b"nor this",
        "train/.cache/x.png": b"nor this",
        "train/README.md": b"# my data",
        "extra/x.png": png,
    }
    for rel, content in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    data = load(root)
    assert data.classes == ("B", "Z", "a", "a b")  # code point order
    assert data.train.files == (
        "train/B/x.png",
        "train/Z/x.png",
        "train/a/B.PNG",
        "train/a/sub/y.png",
        "train/a/z.png",
        "train/a b/x.png",
    )
    assert data.train.labels.tolist() == [0, 1, 2, 2, 2, 3]
    assert data.test.labels.tolist() == [2]  # classes B, Z and "a b" have no test images
    assert data.fingerprint == independent_fingerprint(root)


# --------------------------------------------------------------------------- conversion


def decode_one(image: Image.Image, *, channels: int = 3) -> np.ndarray:
    return decode_image(png_bytes(image), "x.png", channels=channels, image_size=None)


def test_transparency_is_composited_onto_black() -> None:
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, :3] = (200, 100, 50)
    rgba[0, :, 3] = (0, 255, 128)
    pixels = decode_one(Image.fromarray(rgba, mode="RGBA"))
    assert pixels[:, 0, 0].tolist() == [0, 0, 0]
    assert pixels[:, 0, 1].tolist() == [200, 100, 50]
    assert np.abs(pixels[:, 0, 2].astype(int) - np.array([100, 50, 25])).max() <= 1
    grey_alpha = Image.fromarray(np.array([[[90, 0], [90, 255]]], dtype=np.uint8), mode="LA")
    assert decode_one(grey_alpha, channels=1).tolist() == [[[0, 90]]]


def test_palette_transparency_and_bilevel() -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([10, 20, 30, 200, 150, 100])
    palette.putdata([0, 1])
    palette.info["transparency"] = 0
    assert decode_one(palette).tolist() == [[[0, 200]], [[0, 150]], [[0, 100]]]
    bilevel = Image.fromarray(np.array([[False, True]]))
    assert bilevel.mode == "1"
    assert decode_one(bilevel, channels=1).tolist() == [[[0, 255]]]


def test_sixteen_bit_samples_are_scaled_not_clipped() -> None:
    samples = np.array([[0, 257, 128 * 257, 65535, 200]], dtype=np.uint16)
    image = Image.fromarray(samples)
    assert image.mode == "I;16"
    assert decode_one(image, channels=1).tolist() == [[[0, 1, 128, 255, 1]]]
    assert decode_one(image, channels=3)[:, 0, 3].tolist() == [255, 255, 255]


def test_grey_to_three_channels_repeats_the_grey() -> None:
    grey = Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8))
    assert decode_one(grey).tolist() == [[[0, 77, 255]]] * 3


def test_floating_point_tiff_is_refused() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.ones((2, 2), dtype=np.float32)).save(buffer, format="TIFF")
    with pytest.raises(DataError, match=r"^train/a/f\.tif: cannot be decoded \(32-bit float"):
        decode_image(buffer.getvalue(), "train/a/f.tif", channels=1, image_size=None)


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_follows_the_documented_framing(shapes_root: Path) -> None:
    first = scan_image_folder(shapes_root, channels=3, image_size=16)
    second = scan_image_folder(shapes_root, channels=1, image_size=8)
    assert first.fingerprint == second.fingerprint == folder_fingerprint(shapes_root)
    # A SHA-256 as 64 lowercase hex digits, of the files' content (not of nothing).
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint), first.fingerprint
    assert first.fingerprint != hashlib.sha256().hexdigest()
    assert first.fingerprint == independent_fingerprint(shapes_root)


def test_fingerprint_changes_on_rename_and_on_one_byte(folder: Path) -> None:
    before = folder_fingerprint(folder)
    (folder / "train/circle/000.png").rename(folder / "train/circle/000a.png")
    renamed = folder_fingerprint(folder)
    assert renamed != before
    path = folder / "test/cross/001.png"
    content = bytearray(path.read_bytes())
    content[-1] ^= 1
    path.write_bytes(bytes(content))
    assert folder_fingerprint(folder) not in (before, renamed)


def test_fingerprint_ignores_skipped_files(folder: Path) -> None:
    before = folder_fingerprint(folder)
    (folder / "train/circle/notes.txt").write_text("taken on a sunny day")
    (folder / "train/circle/.DS_Store").write_bytes(b"\0\1")
    (folder / "README.md").write_text("my shapes")
    assert folder_fingerprint(folder) == before


# --------------------------------------------------------------------------- errors


def truncate(root: Path) -> None:
    path = root / "train/circle/001.png"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) * 2 // 3])


def text_named_png(root: Path) -> None:
    (root / "train/square/notes.png").write_text("not an image\n")


def empty_class(root: Path) -> None:
    (root / "train/hexagon").mkdir()
    (root / "train/hexagon/readme.txt").write_text("to do")


def class_only_in_test(root: Path) -> None:
    (root / "test/hexagon").mkdir()
    shutil.copy(root / "test/circle/000.png", root / "test/hexagon/000.png")


def val_only_class(root: Path) -> None:
    shutil.copytree(root / "test", root / "val")
    (root / "val/circle").rename(root / "val/oval")


def one_class(root: Path) -> None:
    for name in ("cross", "square", "triangle"):
        shutil.rmtree(root / "train" / name)


def linked_file(root: Path) -> None:
    os.symlink(root / "train/circle/000.png", root / "train/circle/link.png")


def linked_text_file(root: Path) -> None:
    (root / "notes.txt").write_text("outside the splits")
    os.symlink(root / "notes.txt", root / "train/circle/notes.txt")


def linked_subfolder(root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    shutil.copy(root / "train/circle/000.png", outside / "x.png")
    os.symlink(outside, root / "train/circle/more")


def linked_class(root: Path) -> None:
    os.symlink(root / "train/circle", root / "train/oval")


def linked_split(root: Path) -> None:
    (root / "test").rename(root.parent / "test-elsewhere")
    os.symlink(root.parent / "test-elsewhere", root / "test")


def image_outside_class(root: Path) -> None:
    shutil.copy(root / "train/circle/000.png", root / "train/stray.png")


def control_character(root: Path) -> None:
    shutil.copy(root / "train/circle/000.png", root / "train/circle/a\nb.png")


def bidi_class(root: Path) -> None:
    (root / "train/circle").rename(root / "train/circ\u202eelc")


def bidi_file(root: Path) -> None:
    shutil.copy(root / "train/circle/000.png", root / "train/circle/a\u2066b.png")


def c1_control_class(root: Path) -> None:
    (root / "train/square").rename(root / "train/squ\x9bare")


def invalid_utf8(root: Path) -> None:
    with open(os.fsencode(root / "train/circle") + b"/\xff.png", "wb") as f:
        f.write((root / "train/circle/000.png").read_bytes())


def fifo(root: Path) -> None:
    os.mkfifo(root / "train/circle/pipe.png")


ERRORS: list[tuple[Callable[[Path], object], str]] = [
    (truncate, r"^train/circle/001\.png: cannot be decoded \(image file is truncated"),
    (text_named_png, r"^train/square/notes\.png: not a readable image"),
    (empty_class, r"^train/hexagon/: no images \(1 other file skipped\); images end in \.jpg"),
    (class_only_in_test, r"^test/hexagon/: class 'hexagon' is not a folder in train/"),
    (val_only_class, r"^val/oval/: class 'oval' is not a folder in train/"),
    (one_class, r"^train/: one class folder \(circle\); a classifier needs at least two"),
    (lambda root: shutil.rmtree(root / "train"), r"^train/: missing in data\.path "),
    (lambda root: shutil.rmtree(root / "test"), r"^test/: missing in data\.path "),
    (lambda root: (root / "test").rename(root / "tests"), r"^test/: missing"),
    (linked_file, r"^train/circle/link\.png: a symbolic link"),
    (linked_text_file, r"^train/circle/notes\.txt: a symbolic link"),
    (linked_subfolder, r"^train/circle/more: a symbolic link"),
    (linked_class, r"^train/oval: a symbolic link"),
    (linked_split, r"^test/: a symbolic link"),
    (image_outside_class, r"^train/stray\.png: an image outside a class folder"),
    (
        control_character,
        r"^'train/circle/a\\nb\.png': the name holds the control character U\+000A;",
    ),
    (
        bidi_class,
        r"^'train/circ\\u202eelc': the name holds the bidirectional formatting "
        r"character U\+202E \(right-to-left override\); rename it$",
    ),
    (bidi_file, r"^'train/circle/a\\u2066b\.png': the name holds the bidirectional .* U\+2066 "),
    (c1_control_class, r"^'train/squ\\x9bare': the name holds the control character U\+009B;"),
    (invalid_utf8, r"^'train/circle/\\udcff\.png': the name is not valid UTF-8"),
    (fifo, r"^train/circle/pipe\.png: not a regular file"),
]


@pytest.mark.parametrize(
    ("damage", "message"), ERRORS, ids=[damage.__name__ for damage, _ in ERRORS]
)
def test_a_bad_folder_is_one_line_naming_the_file(
    folder: Path, damage: Callable[[Path], object], message: str
) -> None:
    damage(folder)
    with pytest.raises(DataError, match=message) as error:
        load(folder)
    assert "\n" not in str(error.value)


def test_mixed_sizes_need_image_size_and_the_error_names_two_files(shapes_root: Path) -> None:
    files = sorted(
        p.relative_to(shapes_root).as_posix() for p in shapes_root.rglob("*.png") if p.is_file()
    )
    sizes = {rel: Image.open(shapes_root / rel).size for rel in files}
    different = next(rel for rel in files if sizes[rel] != sizes[files[0]])
    (w0, h0), (w1, h1) = sizes[files[0]], sizes[different]
    expected = (
        f"^{files[0]} is {w0}×{h0} but {different} is {w1}×{h1}: images differ in size; "
        "set data.image_size to resize them all$"
    )
    with pytest.raises(DataError, match=expected):
        load(shapes_root, image_size=None)


def test_truncated_image_is_refused_even_if_pil_was_told_to_load_truncated_images(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    truncate(folder)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError, match=r"^train/circle/001\.png: cannot be decoded"):
        load(folder)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the process's setting is restored


@pytest.mark.parametrize("limit", [300, 100])  # 400 pixels: PIL's warning, then its error
def test_decompression_bomb_is_a_data_error_not_a_warning(
    uniform_root: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=r"^test/circle/000\.png: refused as a possible decom"):
            load(uniform_root)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_memory_budget_is_checked_before_decoding(
    shapes_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = (24 + 12) * (3 * 16 * 16 + 8)  # uint8 pixels and an int64 label per image
    assert scan_image_folder(shapes_root, channels=3, image_size=16).bytes_needed == needed

    def no_decoding(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded before the budget was checked")

    with monkeypatch.context() as patch:
        patch.setattr(imagefolder, "decode_image", no_decoding)
        with pytest.raises(DataError, match=rf"need .* \({needed:,} bytes\).* budget of"):
            load_image_folder(shapes_root, channels=3, image_size=16, budget_bytes=needed - 1)
        # Decoding the largest image (28×28 RGB: 4 bytes a pixel as PIL holds it, 4 converted)
        # must fit in what the tensors leave.
        decoding = 28 * 28 * (4 + 4)
        scan = scan_image_folder(shapes_root, channels=3, image_size=16)
        assert scan.largest.bytes == decoding and scan.largest.size == (28, 28)
        with pytest.raises(DataError, match=rf"^{scan.largest.file}: its header says 28×28"):
            load_image_folder(
                shapes_root, channels=3, image_size=16, budget_bytes=needed + decoding - 1
            )
    data = load_image_folder(shapes_root, channels=3, image_size=16, budget_bytes=needed + decoding)
    assert len(data.train) == 24


def test_a_file_changed_after_the_scan_is_refused(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = imagefolder.scan_image_folder

    def scan_then_change(*args: object, **kwargs: object) -> imagefolder.FolderScan:
        result = scan(*args, **kwargs)  # type: ignore[arg-type]
        with open(folder / "train/square/002.png", "ab") as f:
            f.write(b"\0")
        return result

    monkeypatch.setattr(imagefolder, "scan_image_folder", scan_then_change)
    with pytest.raises(DataError, match=r"^train/square/002\.png: changed while"):
        load(folder)


def test_missing_path_is_a_config_error_naming_data_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.path .*nowhere does not exist"):
        load(tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^data\.path .*file is not a folder"):
        folder_fingerprint(tmp_path / "file")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"channels": 2}, r"data\.channels must be 1 or 3"), ({"image_size": 0}, r"data\.image_size")],
)
def test_bad_options_are_config_errors(
    shapes_root: Path, options: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(shapes_root, **options)


# --------------------------------------------------------------------------- the fixture


def test_fixture_is_byte_deterministic_per_seed(tmp_path: Path) -> None:
    def small(root: Path, seed: int = 0, val: bool = False) -> Path:
        return make_image_folder(root, per_class_train=3, per_class_test=2, seed=seed, val=val)

    first = small(tmp_path / "a")
    again = small(tmp_path / "b")
    other = small(tmp_path / "c", seed=1)
    with_val = small(tmp_path / "d", val=True)
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*.png"))
    assert len(names) == 4 * 5
    assert all((first / n).read_bytes() == (again / n).read_bytes() for n in names)
    assert all((first / n).read_bytes() == (with_val / n).read_bytes() for n in names)
    assert folder_fingerprint(other) != folder_fingerprint(first)
    assert len(list((with_val / "val").rglob("*.png"))) == 4 * 2


def test_fixture_draws_rgb_pngs_in_every_listed_size(shapes_root: Path) -> None:
    sizes = set()
    for path in shapes_root.rglob("*.png"):
        with Image.open(path) as image:
            assert (image.format, image.mode) == ("PNG", "RGB")
            sizes.add(image.size)
    assert sizes == {(20, 20), (24, 24), (28, 28)}


def test_fixture_shapes_follow_class_names() -> None:
    assert shapes_for(["square", "circle"]) == ["square", "circle"]
    assert shapes_for(["b", "triangle"]) == ["circle", "triangle"]
    with pytest.raises(ValueError, match="one shape twice"):
        shapes_for(["b", "circle"])
    with pytest.raises(ValueError, match="at most 8 classes"):
        shapes_for([str(k) for k in range(9)])


def test_fixture_is_learnable_by_a_small_mlp(tmp_path: Path) -> None:
    data = load(make_image_folder(tmp_path / "shapes"), image_size=16)
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    train_x = ((data.train.images / 255 - mean) / std).flatten(1)
    test_x = ((data.test.images / 255 - mean) / std).flatten(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3 * 16 * 16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(5):
        for batch in torch.randperm(len(train_x)).split(16):
            loss = torch.nn.functional.cross_entropy(
                model(train_x[batch]), data.train.labels[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == data.test.labels).float().mean().item()
    assert accuracy >= 0.6  # chance is 0.25; about 0.9 is typical


@pytest.mark.parametrize(
    ("extension", "lossless"),
    [
        (".png", True),
        (".bmp", True),
        (".ppm", True),
        (".tiff", True),
        (".webp", False),
        (".jpg", False),
    ],
)
def test_every_listed_format_decodes(extension: str, lossless: bool) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=Image.registered_extensions()[extension])
    decoded = decode_image(buffer.getvalue(), f"a{extension}", channels=3, image_size=None)
    assert decoded.shape == (3, 6, 5)
    assert np.array_equal(decoded, pixels.transpose(2, 0, 1)) == lossless


def test_a_bidi_class_name_stops_the_command_with_one_line(folder: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    bidi_class(folder)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", "--out", str(out),
         "--set", "data.dataset=imagefolder", "--set", f"data.path={json.dumps(str(folder))}",
         "--set", "data.image_size=16", "--set", "train.epochs=1", "--set", "report.pdf=false"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "reportgen: error: 'train/circ\\u202eelc': the name holds the bidirectional formatting "
        "character U+202E (right-to-left override); rename it\n"
    )
    assert "\u202e" not in done.stderr and not out.exists()


def test_class_names_the_fonts_lack_get_one_warning_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    long_name, cjk = "L" * 250, "猫の画像"
    root = make_image_folder(
        tmp_path / "imgs", classes=("circle", long_name, cjk, "cross"),
        per_class_train=6, per_class_test=3,
    )  # fmt: skip
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", "--out", str(out),
         "--set", "data.dataset=imagefolder", "--set", f"data.path={json.dumps(str(root))}",
         "--set", "data.image_size=16", "--set", "train.epochs=1", "--set", "report.pdf=false",
         "--set", "report.attributions=false",
         *[arg for item in NO_CHECKS for arg in ("--set", item)]],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Glyph" not in done.stderr and "Warning" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: the packaged DejaVu fonts have no glyph for characters in 1 class name, "
        f"drawn as boxes in the figures and the PDF: '{cjk}' ({cjk}); report.font can name "
        "a font that has them"
    ]
    assert "[data] " + warnings[0] in (out / "run.log").read_text(encoding="utf-8")
    assert long_name in (out / "report.html").read_text(encoding="utf-8")
