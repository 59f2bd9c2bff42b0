"""Shared fixtures: a small generated MNIST-format dataset, so tests never need the network."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from reportgen import data
from reportgen.data import FileSpec, write_idx

N_TRAIN, N_TEST = 600, 200


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` learnable 28×28 uint8 images: class k lights up a k-specific bar, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row = 2 + 2 * int(label)
        images[i, row : row + 3, 4:24] = 230
    return images, labels


def write_fake_mnist(
    root: Path, *, n_train: int = N_TRAIN, n_test: int = N_TEST
) -> dict[str, FileSpec]:
    """Write generated IDX files under ``root/MNIST/raw`` and return their specs."""
    raw = data.raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    train_x, train_y = make_digits(n_train, seed=1)
    test_x, test_y = make_digits(n_test, seed=2)
    arrays = {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }
    specs = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        write_idx(buffer, array)
        (raw / name).write_bytes(buffer.getvalue())
        specs[name] = FileSpec(
            len(buffer.getvalue()), hashlib.sha256(buffer.getvalue()).hexdigest()
        )
    return specs


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root holding generated MNIST files that the code accepts as verified."""
    root = tmp_path / "data"
    specs = write_fake_mnist(root)
    monkeypatch.setattr(data, "MNIST_FILES", specs)
    return root


def quick_overrides(root: Path) -> list[str]:
    """Return ``--set`` options for a fast run on the generated dataset."""
    return [
        f"data.root={json.dumps(str(root))}",
        "data.val_size=100",
        "data.download=false",
        "train.epochs=2",
        "data.batch_size=32",
        "train.eval_batch_size=256",
        "report.bootstrap_resamples=200",
    ]


def fake_cli_env(root: Path) -> dict[str, str]:
    """Environment for running ``tests/fake_cli.py`` in a subprocess against ``root``."""
    specs = {name: [spec.size, spec.sha256] for name, spec in write_fake_mnist(root).items()}
    return {**os.environ, "REPORTGEN_TEST_FILES": json.dumps(specs)}
