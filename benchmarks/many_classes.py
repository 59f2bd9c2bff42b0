"""Benchmark of the stages after training on an image folder of many classes.

Run from the repository root::

    .venv/bin/python benchmarks/many_classes.py [--root DIR] [--classes 300] [--per-class 20]
                                                [--size 32] [--epochs 1] [--out FILE]

Writes a generated image folder of ``--classes`` classes (``--per-class``
training and as many test images each, ``--size`` pixels square, grey) into
``--root`` (a temporary directory unless given), runs ``reportgen run`` on it
once in a child process (the built-in CNN for both models, ``--epochs``
epochs: training is not what is measured) and prints one JSON object: the
time of every stage the run recorded in its ``manifest.json``, the sum of the
stages after training (evaluate, attributions, duplicates, label issues,
robustness, metrics, figures, render) and of the four the report's speed is
judged by (evaluate, metrics, figures, render), the run's peak resident
memory (its largest process), the PDF's pages and the HTML's size, the wall
time of a second ``reportgen render`` of the finished run, and the load
average of the machine (other work slows every figure).

The four cases of ``docs/speed.md`` (10, 100 and 300 classes at 32 px, 10
at 128 px; the CNN, three epochs)::

    --classes 10 --per-class 250 --epochs 3
    --classes 100 --per-class 20 --epochs 3
    --classes 300 --per-class 20 --epochs 3
    --classes 10 --per-class 250 --size 128 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from imagefolder_fixture import make_many_class_folder
from output import emit
from pypdf import PdfReader

from reportgen.artifacts.manifest import read_manifest

BEFORE_TRAINING = ("data", "train")
JUDGED = ("evaluate", "metrics", "figures", "render")


def after_training(timings: dict[str, float]) -> float:
    """Return the seconds of the stages after training: every stage but data and training."""
    return round(sum(s for k, s in timings.items() if k.split(":")[0] not in BEFORE_TRAINING), 3)


def judged(timings: dict[str, float]) -> float:
    """Return the seconds of evaluate, metrics, figures and render together."""
    return round(sum(s for k, s in timings.items() if k.split(":")[0] in JUDGED), 3)


def run_once(root: Path, *, size: int, epochs: int) -> tuple[Path, float]:
    """Run ``reportgen run`` on ``root``'s images; return the run directory and its wall time."""
    out = root / "run"
    settings = {
        "data.dataset": '"imagefolder"',
        "data.path": json.dumps(str(root / "images")),
        "data.image_size": str(size),
        "data.channels": "1",
        "train.epochs": str(epochs),
        "models.baseline.kind": '"cnn"',
        "models.regularized.kind": '"cnn"',
        "run.date": '"2026-01-01"',
    }
    command = [sys.executable, "-m", "reportgen", "run", "--quiet", "--out", str(out)]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return out, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--classes", type=int, default=300)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch)
        images = root / "images"
        if not images.exists():
            make_many_class_folder(images, classes=args.classes, per_class_train=args.per_class,
                                   per_class_test=args.per_class, size=args.size)  # fmt: skip
        load_start = os.getloadavg()[0]
        run_dir, wall = run_once(root, size=args.size, epochs=args.epochs)
        # The largest child so far: the run (the render below is smaller, and after it).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "reportgen", "render", "--quiet", str(run_dir)],
                       check=True)  # fmt: skip
        rerender = round(time.perf_counter() - start, 3)
        timings = read_manifest(run_dir).timings_s
        result = {
            "classes": args.classes,
            "test_images": args.classes * args.per_class,
            "image_size": args.size,
            "epochs": args.epochs,
            "run_wall_s": wall,
            "peak_rss_gib": round(peak / 2**30, 2),
            "pdf_pages": len(PdfReader(run_dir / "report.pdf").pages),
            "html_mb": round((run_dir / "report.html").stat().st_size / 1e6, 2),
            "stages_s": timings,
            "after_training_s": after_training(timings),
            "evaluate_metrics_figures_render_s": judged(timings),
            "render_again_s": rerender,
            "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        }
    emit(result, args.out)


if __name__ == "__main__":
    main()
