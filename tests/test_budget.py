"""The evaluation batch: one image's activation bytes, and the images a memory budget holds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reportgen.evaluate.budget import activation_bytes_per_image, eval_batch_size
from reportgen.train.networks import build


@pytest.mark.parametrize(
    ("configured", "per_image", "budget", "expected"),
    [
        (10_000, 6_248, 2_048 * 2**20, 10_000),  # the default MLP on MNIST: the budget is ample
        (10_000, 181_864, 2_048 * 2**20, 10_000),  # the default CNN on MNIST
        (10_000, 3_869_736, 2_048 * 2**20, 554),  # the CNN at 128 px RGB
        (256, 1_000, 1_000_000, 256),  # the configured size when it fits
        (256, 1_000, 100_500, 100),  # rounded down
        (256, 1_000, 1_000, 1),
        (256, 1_000, 999, 1),  # never below one image (the caller refuses such a budget)
        (256, 0, 0, 256),  # a network that measured nothing keeps the configured size
    ],
)
def test_the_batch_is_the_configured_size_or_what_the_budget_holds(
    configured: int, per_image: int, budget: int, expected: int
) -> None:
    assert eval_batch_size(
        configured=configured, per_image_bytes=per_image, budget_bytes=budget
    ) == expected  # fmt: skip


def test_activation_bytes_add_the_input_and_every_layer_output_per_image() -> None:
    network = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2)))
    # float32: input 4, Linear 3, ReLU 3, inner Linear 2 (its Sequential is not counted again).
    assert activation_bytes_per_image(network, torch.zeros(5, 4)) == (4 + 3 + 3 + 2) * 4


def test_activations_grow_with_the_image_and_leave_the_network_as_it_was() -> None:
    torch.manual_seed(0)
    small = build("cnn", (32,), input_shape=(3, 32, 32), num_classes=10, dropout=0.5,
                  batchnorm=True)  # fmt: skip
    large = build("cnn", (32,), input_shape=(3, 128, 128), num_classes=10, dropout=0.5,
                  batchnorm=True)  # fmt: skip
    large_batch, small_batch = torch.randn(3, 3, 128, 128), torch.randn(3, 3, 32, 32)
    before = {k: v.clone() for k, v in large.state_dict().items()}
    rng_before = torch.get_rng_state()
    large_bytes = activation_bytes_per_image(large, large_batch)
    small_bytes = activation_bytes_per_image(small, small_batch)
    assert large.training  # the mode is restored
    assert all(torch.equal(before[k], v) for k, v in large.state_dict().items())
    assert torch.equal(rng_before, torch.get_rng_state())  # eval mode: dropout draws nothing
    # Feature maps are 16 times larger; the head's few activations scale less.
    assert 15 * small_bytes < large_bytes < 16 * small_bytes


class _Functional(nn.Module):
    """A network without layers: its forward is plain functions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).flatten(1)[:, :3]


def test_a_network_without_layers_counts_its_output() -> None:
    assert activation_bytes_per_image(_Functional(), torch.zeros(2, 1, 2, 2)) == (4 + 3) * 4
