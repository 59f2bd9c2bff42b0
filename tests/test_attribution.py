"""Attributions: Integrated Gradients that are deterministic, complete, and work for any network."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
from torch import nn

from reportgen.artifacts.model_metrics import (
    EvidenceRegion,
)
from reportgen.config.loading import load_config
from reportgen.data.idx import MEAN, STD
from reportgen.data.tensors import normalize
from reportgen.evaluate import attribution
from reportgen.train.networks import CNN, MLP

from .conftest import make_digits


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    images, _ = make_digits(6, seed=11)
    # [6, 1, 28, 28], as models take them
    return normalize(torch.from_numpy(images).unsqueeze(1), [MEAN], [STD])


def networks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    user = nn.Sequential(nn.Conv2d(1, 4, 5), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * 24 * 24, 10))  # fmt: skip
    shape = {"input_shape": (1, 28, 28), "num_classes": 10}
    return {
        "mlp": MLP([32, 16], batchnorm=True, dropout=0.3, **shape),
        "cnn": CNN([16], batchnorm=True, **shape),
        "user": user,
    }


def test_the_baseline_is_the_black_image_as_the_model_sees_it(inputs: torch.Tensor) -> None:
    baseline = attribution.black_baseline(inputs, [MEAN], [STD])
    black = normalize(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), [MEAN], [STD])
    assert baseline.shape == (1, 1, 28, 28) and torch.equal(baseline, black)
    rgb = torch.zeros(2, 3, 4, 4)
    per_channel = attribution.black_baseline(rgb, [0.5, 0.25, 0.0], [0.5, 0.25, 1.0])
    assert per_channel.shape == (1, 3, 4, 4)
    assert per_channel[0, :, 0, 0].tolist() == [-1.0, -1.0, 0.0]
    flat = attribution.black_baseline(rgb.reshape(2, -1), [0.5, 0.25, 0.0], [0.5, 0.25, 1.0])
    assert torch.equal(flat, per_channel.reshape(1, -1))
    with pytest.raises(ValueError, match="with 3 channel"):
        attribution.black_baseline(torch.zeros(2, 10), [0.5, 0.25, 0.0], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("name", ["mlp", "cnn", "user"])
def test_attributions_are_deterministic_and_complete(inputs: torch.Tensor, name: str) -> None:
    model = networks()[name]
    targets = np.array([3, 1, 4, 1, 5, 9])
    baseline = attribution.black_baseline(inputs, [MEAN], [STD])
    first = attribution.integrated_gradients(
        model, inputs, targets, baseline=baseline, internal_batch_size=100
    )
    second = attribution.integrated_gradients(
        model, inputs, targets, baseline=baseline, internal_batch_size=100
    )
    assert first.dtype == np.float64 and first.shape == tuple(inputs.shape)
    assert np.array_equal(first, second)
    assert not model.training  # attributed in eval mode
    with torch.no_grad():
        rows = torch.arange(6)
        gain = model(inputs)[rows, targets] - model(baseline.expand_as(inputs))[rows, targets]
    # Completeness: each map adds up to the logit at the image minus at the baseline.
    assert first.sum(axis=(1, 2, 3)) == pytest.approx(gain.double().numpy(), abs=0.02, rel=0.02)
    black = (inputs == baseline).numpy()
    assert (first[black] == 0).all()  # a black pixel carries no attribution


def test_maps_are_summed_over_channels_and_kept_per_image(inputs: torch.Tensor) -> None:
    model = networks()["mlp"]
    maps = attribution.attribute(
        model, inputs, indices=np.array([10, 20, 30, 40, 50, 60]),
        predicted=np.array([1, 2, 3, 4, 5, 6]), true=np.array([0, 0, 0, 0, 0, 0]),
        image_shape=(1, 28, 28), mean=[MEAN], std=[STD], steps=16,
    )  # fmt: skip
    assert maps.toward_predicted.shape == maps.toward_true.shape == (6, 28, 28)
    toward_pred, toward_true = maps.select([40, 10])
    assert np.array_equal(toward_pred[1], maps.toward_predicted[0])
    assert np.array_equal(toward_true[0], maps.toward_true[3])
    with pytest.raises(KeyError, match="no attribution for test images"):
        maps.select([11])
    rgb = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 12)
    assert attribution.to_maps(rgb, (3, 2, 2))[0].tolist() == [[12, 15], [18, 21]]


def test_the_evidence_region_is_where_the_margin_is_positive() -> None:
    toward_pred = np.zeros((9, 9))
    toward_true = np.zeros((9, 9))
    toward_pred[0:3, 3:6] = 2.0  # top centre argues for the prediction
    toward_pred[6:9, 0:3] = 0.5  # so does the bottom left, half as much
    toward_true[0:3, 3:6] = 1.0  # the true class likes the top centre too, less
    toward_true[4, 4] = 5.0  # against the prediction: not evidence for it
    region, share = attribution.evidence_region(toward_pred, toward_true)
    assert (region, share) == ("top centre", pytest.approx(2 / 3))
    assert attribution.evidence_region(toward_true * 0, toward_true) == (None, 0.0)
    names = [attribution.region_name(r, c) for r in range(3) for c in range(3)]
    assert names == [
        "top left", "top centre", "top right", "middle left", "centre", "middle right",
        "bottom left", "bottom centre", "bottom right",
    ]  # fmt: skip
    assert names == list(get_args(EvidenceRegion))  # every name metrics.json may hold


def test_the_shown_images_are_the_grid_and_the_galleries_first_few() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 2_000)
    y_pred = np.where(rng.random(2_000) < 0.6, y_true, (y_true + 5) % 10)
    y_pred[(y_true == 4) & (rng.random(2_000) < 0.5)] = 9
    report = load_config(None, ["report.n_misclassified=5", "report.n_pair_examples=64"]).report
    shown = attribution.shown_indices(y_true, y_pred, report, num_classes=10, pairs=[(4, 9)])
    shown = set(shown.tolist())
    wrong = np.flatnonzero(y_true != y_pred)
    assert set(wrong[:5].tolist()) <= shown
    four_as_nine = np.flatnonzero((y_true == 4) & (y_pred == 9))
    assert set(four_as_nine[: attribution.MAX_IMAGES].tolist()) <= shown
    assert four_as_nine[attribution.MAX_IMAGES] not in shown  # a figure shows the first few
    assert all(y_true[i] != y_pred[i] for i in shown)
