"""Benchmark of drawing a run's figures: CPU seconds per figure, one after another.

Run from the repository root::

    .venv/bin/python benchmarks/figures.py [--classes 0] [--repeat 2] [--out FILE]

With ``--classes 0`` (the default) it makes the test suite's quick run: the
generated MNIST of ``tests/conftest.py`` (600 training images, 10 classes),
two epochs, every check on; with ``--classes N`` a generated image folder of
N classes (20 training and 20 test images a class, 32 px grey; the MLP
beside the CNN, one epoch, no robustness stage).  The run is made in this
process and its figure jobs are kept as the pipeline hands them to the
drawing pool; each job is then drawn here ``--repeat`` times, and the least
CPU time of each is printed (as JSON: per figure, per builder and in all),
so that other work on the machine inflates the figures as little as it can.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import EVERY_CHECK, quick_overrides, specs_of, write_fake_mnist
from imagefolder_fixture import make_many_class_folder
from output import emit

import reportgen.run.pipeline as pipeline
from reportgen.cli.main import main as cli_main
from reportgen.data import idx
from reportgen.figures.pool import FigureJob, draw_png


def run_settings(root: Path, classes: int) -> list[str]:
    """Write the run's data under ``root``; return its ``--set`` options."""
    if classes == 0:
        write_fake_mnist(root)
        idx.MNIST_FILES = specs_of(root)  # the generated files stand in for MNIST's
        return [*quick_overrides(root), *EVERY_CHECK]
    images = root / "images"
    make_many_class_folder(images, classes=classes, per_class_train=20, per_class_test=20,
                           size=32)  # fmt: skip
    return [
        'data.dataset="imagefolder"', f"data.path={json.dumps(str(images))}",
        "data.image_size=32", "data.channels=1", "train.epochs=1", "runtime.threads=1",
        'models.baseline.kind="mlp"', 'models.regularized.kind="cnn"', "report.pdf=false",
        "report.robustness.enabled=false",
    ]  # fmt: skip


def figure_jobs(root: Path, settings: Sequence[str]) -> list[FigureJob]:
    """Make one run with ``settings``; return the figure jobs its pipeline drew."""
    kept: list[FigureJob] = []
    draw_all = pipeline.draw_all

    def keep(jobs: Sequence[FigureJob], *, workers: int) -> list[bytes]:
        kept.extend(jobs)
        return draw_all(jobs, workers=workers)

    pipeline.draw_all = keep
    try:
        sets = [arg for item in settings for arg in ("--set", item)]
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the JSON alone
            status = cli_main(["--quiet", "run", "--out", str(root / "run"), *sets])
        if status != 0:
            raise SystemExit("the run failed")
    finally:
        pipeline.draw_all = draw_all
    return kept


def cpu_seconds(job: FigureJob, repeat: int) -> tuple[float, int]:
    """Return the least CPU time of ``repeat`` draws of ``job``, and its PNG's size."""
    best, size = float("inf"), 0
    for _ in range(repeat):
        start = time.process_time()
        size = len(draw_png(job))
        best = min(best, time.process_time() - start)
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        jobs = figure_jobs(root, run_settings(root, args.classes))
    draw_png(jobs[0])  # fonts and caches loaded before anything is timed
    load_start = os.getloadavg()[0]
    figures: dict[str, Any] = {}
    builders: dict[str, float] = defaultdict(float)
    for job in jobs:
        seconds, size = cpu_seconds(job, args.repeat)
        figures[job.name] = {
            "builder": job.builder,
            "cpu_s": round(seconds, 3),
            "png_kb": size // 1024,
        }
        builders[job.builder] += seconds
    result = {
        "classes": args.classes or 10,
        "figures": len(jobs),
        "cpu_s": round(sum(f["cpu_s"] for f in figures.values()), 2),
        "png_kb": sum(f["png_kb"] for f in figures.values()),
        "per_builder_s": {k: round(v, 2) for k, v in sorted(builders.items(), key=lambda x: -x[1])},
        "per_figure": figures,
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
