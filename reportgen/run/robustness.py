"""The robustness stage: every network on corrupted test images, then the section's numbers."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from reportgen.artifacts.robustness import Robustness
from reportgen.config.schema import Config
from reportgen.core.seeding import derive_seed
from reportgen.data.tensors import Dataset
from reportgen.evaluate import corrupted
from reportgen.evaluate.robustness import Measured, robustness


def no_network_sentence(name: str) -> str:
    """Return the sentence that says why a model is not measured under corruption."""
    return (
        f"The {name} model is given by its predictions only: it has no network to run on "
        "corrupted images, so it is not measured here."
    )


def stage_robustness(
    config: Config,
    networks: Mapping[str, nn.Module | None],
    dataset: Dataset,
    *,
    eval_batches: Mapping[str, int],
    device: torch.device,
) -> Robustness | None:
    """Return the accuracy of every network under each corruption, or None when it is off.

    ``networks`` maps each model, in training order, to its network (None
    for a model given by its predictions only, which is skipped with a
    sentence); each runs in its own evaluation batches (``eval_batches``).
    """
    settings = config.report.robustness
    if not settings.enabled:
        return None
    test = dataset.test
    height, width = dataset.info.image_shape[-2:]
    count = settings.image_count(int(height), int(width))
    positions = corrupted.subsample(len(test), count, seed=config.seed)
    index = torch.as_tensor(positions, dtype=torch.int64, device=test.x.device)
    images = test.x[index].cpu()
    conditions = corrupted.conditions(settings.corruptions, settings.severities)
    measured = {name: network for name, network in networks.items() if network is not None}
    skipped = {name: no_network_sentence(name) for name in networks if name not in measured}
    batch_sizes = {name: eval_batches.get(name, config.train.eval_batch_size) for name in measured}
    predictions = corrupted.corrupted_predictions(
        measured, images, positions, conditions=conditions, seed=config.seed,
        mean=dataset.info.mean, std=dataset.info.std, batch_sizes=batch_sizes, device=device,
    )  # fmt: skip
    labels = test.y[index].cpu().numpy()
    return robustness(
        Measured(positions, labels, predictions), settings=settings, test_images=len(test),
        example=example_index(config, len(test)), skipped=skipped,
        resamples=config.report.bootstrap_resamples, seed=derive_seed(config.seed, "bootstrap"),
    )  # fmt: skip


def example_index(config: Config, test_images: int) -> int:
    """Return the test image the corruptions figure shows: ``report.sample_index``'s."""
    return min(config.report.sample_index, test_images - 1)
