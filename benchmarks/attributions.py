"""What the attributions of one model cost at an image size, with and without the size's plan.

Run from the repository root::

    .venv/bin/python benchmarks/attributions.py [--size 128] [--channels 3] [--kind cnn]
        [--steps 50] [--threads 2] [--unplanned]

Builds the built-in network for ``channels × size × size`` images and 10 classes
with seeded random weights (the cost does not depend on the weights), draws as
many random images as a default report attributes (the misclassified grid's 10
and three confused pairs' 8, each cut to the plan's images per figure), and
times ``attribution.attribute`` as the pipeline's ``attributions`` stage calls
it: the steps and images of ``attribution.plan`` for that size, and with
``--unplanned`` also the configured steps and 12 images, as before the plan.
Prints one JSON object per setting: wall and CPU seconds, images, steps, and the
completeness gap (the largest |sum of a map − (logit at the image − logit at
black)|, relative to the largest |logit difference|).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from reportgen.evaluate import attribution
from reportgen.train.networks import build

GRID, PAIRS, PER_PAIR = 10, 3, 8  # report.n_misclassified, auto_pairs, n_pair_examples


def measure(network: torch.nn.Module, shape: tuple[int, int, int], *, steps: int,
            images: int) -> dict[str, object]:  # fmt: skip
    """Return the cost and completeness gap of one stage's attributions of ``network``."""
    count = min(GRID, images) + PAIRS * min(PER_PAIR, images)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(count, *shape, generator=generator)
    targets = np.arange(count, dtype=np.int64) % 10
    mean, std = [0.5] * shape[0], [0.25] * shape[0]
    wall, cpu = time.perf_counter(), time.process_time()
    maps = attribution.attribute(
        network, inputs, indices=np.arange(count), predicted=targets, true=(targets + 1) % 10,
        image_shape=shape, mean=mean, std=std, steps=steps, images=images,
    )  # fmt: skip
    seconds = {"wall_s": round(time.perf_counter() - wall, 2),
               "cpu_s": round(time.process_time() - cpu, 2)}  # fmt: skip
    with torch.no_grad():
        logits = network(inputs) - network(attribution.black_baseline(inputs, mean, std))
    expected = logits.gather(1, torch.as_tensor(targets).view(-1, 1)).squeeze(1).numpy()
    gap = np.abs(maps.toward_predicted.sum(axis=(1, 2)) - expected).max()
    relative = float(gap / max(np.abs(expected).max(), 1e-12))
    return {"images": count, "steps": steps, "per_figure": images, **seconds,
            "completeness_gap": round(relative, 4)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--kind", choices=("mlp", "cnn"), default="cnn")
    parser.add_argument("--steps", type=int, default=attribution.DEFAULT_STEPS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--unplanned", action="store_true", help="also time 12 images a figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (args.channels, args.size, args.size)
    network = build(args.kind, [256, 128], input_shape=shape, num_classes=10, dropout=0.0,
                    batchnorm=False)  # fmt: skip
    chosen = attribution.plan(args.steps, shape)
    settings = [("plan", chosen.steps, chosen.images)]
    if args.unplanned:
        settings.append(("unplanned", args.steps, attribution.MAX_IMAGES))
    for name, steps, images in settings:
        result = measure(network, shape, steps=steps, images=images)
        print(json.dumps({"setting": name, "size": args.size, "kind": args.kind, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
