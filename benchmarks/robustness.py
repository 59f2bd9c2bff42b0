"""What the robustness section adds to a default MNIST run: its stage and its two figures.

Run from the repository root::

    .venv/bin/python benchmarks/robustness.py [--data-root DIR] [--images N] [--repeats 3]

The default config's two networks (untrained: the cost does not depend on the
weights) are run on MNIST's test images under every corruption and severity,
as the pipeline's ``robustness`` stage does, on ``runtime.threads`` threads;
then the section's two figures are drawn.  Also times the per-image random
draws alone.  Prints one JSON object: the median wall and CPU seconds of each part.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from reportgen.config.loading import load_config
from reportgen.core.events import silent
from reportgen.core.seeding import seed_everything
from reportgen.data import corruptions, sources
from reportgen.figures.pool import draw_png
from reportgen.figures.robustness_jobs import robustness_jobs
from reportgen.run.robustness import stage_robustness
from reportgen.train.factory import build_network


def timed(work: Callable[[], Any], repeats: int) -> tuple[Any, dict[str, float]]:
    """Return the last result of ``work`` and the median wall and CPU seconds of ``repeats``."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, {"wall_s": round(statistics.median(walls), 3),
                    "cpu_s": round(statistics.median(cpus), 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--images", type=int, default=None, help="report.robustness.images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="runtime.threads")
    args = parser.parse_args(argv)
    overrides = [] if args.images is None else [f"report.robustness.images={args.images}"]
    if args.threads is not None:
        overrides.append(f"runtime.threads={args.threads}")
    if args.data_root:
        overrides.append(f"data.root={json.dumps(args.data_root)}")
    config = load_config(None, overrides)
    seed_everything(config.seed, threads=config.runtime.threads)
    _, dataset = sources.load(config, progress=silent)
    info = dataset.info
    networks = {
        name: build_network(name, spec, input_shape=info.image_shape,
                            num_classes=info.num_classes, code_dir=None)
        for name, spec in config.model_items()
    }  # fmt: skip
    batches = {name: config.train.eval_batch_size for name in networks}
    device = torch.device("cpu")
    found, stage = timed(lambda: stage_robustness(config, networks, dataset,
                                                  eval_batches=batches, device=device),
                         args.repeats)  # fmt: skip
    jobs = robustness_jobs(found, dataset, seed=config.seed)
    _, figures = timed(lambda: [draw_png(job) for job in jobs], args.repeats)
    images = found.images if found is not None else 0
    indices = list(range(images))
    _, draws = timed(lambda: [corruptions.draws(config.seed, "gaussian_noise", s, indices,
                                                info.image_shape) for s in range(1, 6)],
                     args.repeats)  # fmt: skip
    result = {
        "threads": config.runtime.threads,
        "images": images,
        "conditions": 1
        + len(config.report.robustness.corruptions) * len(config.report.robustness.severities),
        "models": len(networks),
        "stage": stage,
        "figures (drawn one after the other)": figures,
        "noise draws of one corruption, 5 severities": draws,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
