"""The robustness section's figures as jobs: the curves from ``metrics.json``, the example image
corrupted here (torch stays in this process; the drawing pool gets plain arrays)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reportgen.artifacts import catalogue
from reportgen.artifacts.robustness import Robustness
from reportgen.config.robustness import CorruptionName, middle_severity
from reportgen.data.corruptions import CORRUPTIONS, corrupt
from reportgen.data.tensors import Dataset, display_images
from reportgen.figures.pool import FigureJob


def example_images(
    dataset: Dataset,
    *,
    index: int,
    severity: int,
    corruptions: Sequence[CorruptionName],
    seed: int,
) -> torch.Tensor:
    """Return test image ``index`` clean, then under each corruption: uint8 ``[1 + k, C, H, W]``.

    Each is corrupted as in the measurement (the same seed, the image's own index).
    """
    clean = dataset.test.x[index : index + 1].cpu().float() / 255.0
    shown = [clean] + [
        corrupt(clean, name, severity, seed=seed, indices=[index]) for name in corruptions
    ]
    return torch.round(torch.cat(shown) * 255.0).to(torch.uint8)


def robustness_jobs(
    robustness: Robustness | None, dataset: Dataset, *, seed: int
) -> list[FigureJob]:
    """Return the jobs of the section's figures (none when nothing was measured)."""
    if robustness is None or not robustness.figures:
        return []
    curves = {
        model: {
            row.corruption: [(found.clean_accuracy, found.clean_accuracy, found.clean_accuracy)]
            + [(s.accuracy, s.low, s.high) for s in row.severities]
            for row in found.corruptions
        }
        for model, found in robustness.models.items()
    }
    titles = {name: CORRUPTIONS[name].title for name in robustness.corruptions}
    severity = middle_severity(robustness.severities)
    images = example_images(dataset, index=robustness.example, severity=severity,
                            corruptions=robustness.corruptions, seed=seed)  # fmt: skip
    labels = ["clean", *(_two_lines(titles[name]) for name in robustness.corruptions)]
    return [
        FigureJob("robustness", catalogue.FIGURES["robustness"].builder, (curves,),
                  {"severities": [0, *robustness.severities], "titles": titles,
                   "images": robustness.images}),
        FigureJob("corruptions", catalogue.FIGURES["corruptions"].builder,
                  (display_images(images), labels),
                  {"index": robustness.example, "severity": severity}),
    ]  # fmt: skip


def _two_lines(title: str) -> str:
    """Return a title of two words on two lines, so that it fits over a small image."""
    first, _, rest = title.partition(" ")
    return f"{first}\n{rest}" if rest else first
