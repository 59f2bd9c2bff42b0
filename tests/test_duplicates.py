"""Train–test duplicates: the distance and its threshold by hand, the search, a planted folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reportgen.artifacts.metrics import parse_metrics
from reportgen.data.imagefolder import load_image_folder
from reportgen.evaluate import duplicates
from reportgen.evaluate.data_checks import accuracy_without
from tests.imagefolder_fixture import make_image_folder


def _canvas(rows: slice, cols: slice, size: int = 16) -> torch.Tensor:
    """Return one ``uint8 [1, 1, size, size]`` image: 255 on ``rows × cols``, 0 elsewhere."""
    image = torch.zeros(1, 1, size, size, dtype=torch.uint8)
    image[0, 0, rows, cols] = 255
    return image


BLOCK = _canvas(slice(6, 10), slice(6, 10))  # 4 × 4, its centroid on the centre (7.5, 7.5)
BAR = _canvas(slice(7, 9), slice(4, 12))  # 2 × 8, centred too, overlapping BLOCK on 8 pixels


def test_features_of_a_centred_block_by_hand() -> None:
    # 16 × 16 is already the grid and the block is centred: only mean and norm change it.
    ink, blank = 255 - 16 * 255 / 256, -16 * 255 / 256
    norm = np.sqrt(16 * ink**2 + 240 * blank**2)
    vector = duplicates.features(BLOCK)[0].view(16, 16).numpy()
    assert vector[7, 7] == pytest.approx(ink / norm, rel=1e-5)
    assert vector[0, 0] == pytest.approx(blank / norm, rel=1e-5)


def test_distance_by_hand() -> None:
    # Two binary shapes of 16 pixels each in 256, overlapping on 8: zero-mean cosine
    # (8 − 16²/256) / (16 − 16²/256) = 7/15, so the distance is 8/15.
    block, bar = duplicates.features(BLOCK), duplicates.features(BAR)
    assert duplicates.distance(block.numpy(), bar.numpy())[0] == pytest.approx(8 / 15, abs=1e-5)
    assert duplicates.distance(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]]))[0] == 0.4


@pytest.mark.parametrize("dy, dx", [(1, 0), (0, -1), (-1, 1), (2, 3)])
def test_a_shifted_copy_aligns_onto_its_original(dy: int, dx: int) -> None:
    moved = _canvas(slice(6 + dy, 10 + dy), slice(6 + dx, 10 + dx))
    far = duplicates.distance(
        duplicates.features(BLOCK).numpy(), duplicates.features(moved).numpy()
    )
    assert far[0] < 1e-6


def _unit_pair(gap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return two unit vectors of GRID² values whose 1 − cos is ``gap``."""
    first = torch.zeros(1, duplicates.GRID**2)
    second = torch.zeros(1, duplicates.GRID**2)
    first[0, 0] = 1.0
    second[0, 0], second[0, 37] = 1 - gap, float(np.sqrt(1 - (1 - gap) ** 2))
    return first, second


def test_the_threshold_decides_and_ties_go_to_the_lowest_position() -> None:
    assert duplicates.THRESHOLD == 0.001
    test, near = _unit_pair(0.0009)
    _, far = _unit_pair(0.0011)
    best, gap = duplicates.near_matches(test, torch.cat([far, near, near]))
    assert best.tolist() == [1]  # the near one, the lower of two equal ones
    assert gap[0] == pytest.approx(0.0009, abs=1e-6)
    best, gap = duplicates.near_matches(test, far)
    assert best.tolist() == [-1] and np.isnan(gap[0])


def test_a_constant_image_is_only_ever_an_exact_duplicate() -> None:
    grey = torch.full((1, 1, 16, 16), 128, dtype=torch.uint8)
    found = duplicates.find_duplicates(
        torch.cat([grey, grey + 1]), {"train": torch.cat([BLOCK, grey]), "val": grey[:0]}
    )
    assert [(m.test, m.split, m.match, m.kind) for m in found.matches] == [(0, "train", 1, "exact")]


def _plant(root: Path) -> None:
    """Put into the test split an exact copy and a one-pixel-shifted copy of training images."""
    shutil.copy(root / "train" / "circle" / "003.png", root / "test" / "circle" / "900.png")
    pixels = np.asarray(Image.open(root / "train" / "diamond" / "005.png").convert("RGB"))
    shifted = pixels.copy()
    shifted[:, 1:] = pixels[:, :-1]  # one pixel to the right; the left column stays background
    Image.fromarray(shifted).save(root / "test" / "diamond" / "901.png")


# The generated shapes often repeat one another up to position and colour, which the search
# reports as near duplicates (it compares grey, centred, contrast-normalised images); with
# these classes and this seed no test image repeats a training one.
FOLDER = {"classes": ("circle", "diamond", "ring", "cross"), "per_class_train": 8,
          "per_class_test": 4, "sizes": (20, 24, 28), "seed": 2}  # fmt: skip


@pytest.mark.parametrize("planted", [True, False])
def test_planted_duplicates_in_an_image_folder_are_found(tmp_path: Path, planted: bool) -> None:
    root = make_image_folder(tmp_path, **FOLDER)  # type: ignore[arg-type]
    if planted:
        _plant(root)
    data = load_image_folder(root, channels=3, image_size=28, budget_bytes=2**26)
    found = duplicates.find_duplicates(data.test.images, {"train": data.train.images})
    if not planted:
        assert found.matches == ()
        return
    test_files, train_files = list(data.test.files), list(data.train.files)
    seen = {(test_files[m.test], train_files[m.match], m.kind) for m in found.matches}
    assert seen == {
        ("test/circle/900.png", "train/circle/003.png", "exact"),
        ("test/diamond/901.png", "train/diamond/005.png", "near"),
    }
    assert found.in_training().sum() == 2


def test_accuracy_without_the_duplicates() -> None:
    correct = np.array([True, True, False, True])
    kept = accuracy_without(correct, np.array([False, True, True, True]), resamples=200, seed=1)
    assert (kept.images, kept.accuracy) == (3, pytest.approx(2 / 3))
    assert kept.low is not None and kept.high is not None and kept.low <= 2 / 3 <= kept.high
    none = accuracy_without(correct, np.zeros(4, dtype=bool), resamples=200, seed=1)
    assert (none.images, none.accuracy, none.low) == (0, None, None)


def test_a_run_reports_its_duplicates_and_class_balance(quick_run: Path) -> None:
    metrics = parse_metrics((quick_run / "metrics.json").read_bytes())
    found, balance = metrics.duplicates, metrics.class_balance
    assert found is not None and balance is not None
    data = metrics.dataset
    sizes = [sum(balance.train), sum(balance.val), sum(balance.test)]
    assert sizes == [data.train_size, data.val_size, data.test_size]
    assert balance.test == data.test_support
    assert set(found.accuracy_without) == set(metrics.models)
    in_training = found.train.exact + found.train.near
    for name, model in metrics.models.items():
        without = found.accuracy_without[name]
        assert without.images == data.test_size - in_training
        if in_training == 0:  # the test accuracy and its interval, not drawn again
            interval = model.accuracy_ci
            assert (without.accuracy, without.low, without.high) == (
                model.test_accuracy,
                interval.low,
                interval.high,
            )
    html = (quick_run / "report.html").read_text()
    assert 'id="class_balance"' in html and 'id="duplicates"' in html
    if found.pairs_total == 0:
        assert "No test image has an exact or near duplicate" in html
    else:
        assert 'id="fig-duplicates"' in html
