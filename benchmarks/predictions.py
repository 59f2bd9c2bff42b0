"""Predictions files: the memory of reading a large one, and the time of a predictions-only report.

Run from the repository root::

    .venv/bin/python benchmarks/predictions.py [--rows 1000000] [--data-root DIR] [--skip-run]

1. Writes a CSV and an ``.npz`` of ``--rows`` rows × 10 classes of float32
   probabilities, reads each with :func:`reportgen.data.predictions.read_predictions`
   in a child process, and prints the child's peak of traced allocations
   (NumPy and pandas buffers) next to the size of one float32 copy.
2. Unless ``--skip-run``: writes a predictions file for both models over
   MNIST's 10,000 test images (from ``--data-root``, default the cache),
   runs ``reportgen run`` with ``models.*.predictions`` and ``report.pdf``
   on, and prints its wall time and the stage times of its manifest.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 10

_READ = """
import sys, time, tracemalloc
import numpy as np
from pathlib import Path
from reportgen.data.predictions import read_predictions
labels = np.load(sys.argv[2])
tracemalloc.start()
start = time.perf_counter()
read = read_predictions(Path(sys.argv[1]), key="bench", labels=labels, num_classes=10)
seconds = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
print(peak, seconds, read.scores.nbytes)
"""


def synthetic(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return float32 probabilities ``[rows, 10]`` and labels, made in blocks."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, rows)
    proba = np.empty((rows, CLASSES), dtype=np.float32)
    for start in range(0, rows, 100_000):
        z = rng.normal(size=(min(100_000, rows - start), CLASSES))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        proba[start : start + len(z)] = e / e.sum(axis=1, keepdims=True)
    return proba, labels


def write_csv(path: Path, proba: np.ndarray, labels: np.ndarray) -> None:
    """Write ``index,label,p0…p9`` in blocks, nine significant digits (as a run writes them)."""
    with path.open("w") as f:
        f.write("index,label," + ",".join(f"p{k}" for k in range(CLASSES)) + "\n")
        for start in range(0, len(labels), 100_000):
            block = proba[start : start + 100_000]
            index = np.arange(start, start + len(block))
            table = np.column_stack([index, labels[start : start + len(block)], block])
            fmt = ["%d", "%d"] + ["%.9g"] * CLASSES
            np.savetxt(f, table, fmt=fmt, delimiter=",")


def measure_reading(rows: int, folder: Path) -> dict[str, object]:
    """Return the peak traced memory and seconds of reading a CSV and an .npz of ``rows`` rows."""
    proba, labels = synthetic(rows)
    np.save(folder / "labels.npy", labels)
    write_csv(folder / "big.csv", proba, labels)
    np.savez(folder / "big.npz", probabilities=proba, labels=labels)
    del proba
    result: dict[str, object] = {"rows": rows, "classes": CLASSES}
    for name in ("big.csv", "big.npz"):
        out = subprocess.run(
            [sys.executable, "-c", _READ, str(folder / name), str(folder / "labels.npy")],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        peak, seconds, one_copy = int(out[0]), float(out[1]), int(out[2])
        result[name] = {
            "peak_traced_mib": round(peak / 2**20, 1),
            "one_float32_copy_mib": round(one_copy / 2**20, 1),
            "seconds": round(seconds, 2),
        }
    return result


def measure_report(data_root: str | None, folder: Path) -> dict[str, object]:
    """Return the wall time and stage times of a predictions-only MNIST report."""
    from reportgen.config.loading import validate
    from reportgen.data.sources import load

    sets = [] if data_root is None else ["--set", f"data.root={json.dumps(data_root)}"]
    config = validate({} if data_root is None else {"data": {"root": data_root}})
    _, dataset = load(config)
    labels = dataset.test.y.numpy()
    for seed, name in enumerate(("baseline", "regularized")):
        rng = np.random.default_rng(seed)
        proba, _ = synthetic(len(labels), seed)
        right = rng.random(len(labels)) < 0.97  # a 97%-accurate model: its label is most probable
        proba[right, labels[right]] += 2.0
        proba /= proba.sum(axis=1, keepdims=True)
        write_csv(folder / f"{name}.csv", proba.astype(np.float32), labels)
        sets += ["--set", f"models.{name}.predictions={folder / f'{name}.csv'}"]
    out = folder / "run"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reportgen", "--quiet", "run", "--out", str(out), *sets],
                   check=True)  # fmt: skip
    wall = time.perf_counter() - start
    timings = json.loads((out / "manifest.json").read_text())["timings_s"]
    return {"wall_s": round(wall, 2), "stages_s": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reportgen-bench-") as tmp:
        result: dict[str, object] = {"reading": measure_reading(args.rows, Path(tmp))}
        if not args.skip_run:
            result["predictions_only_report"] = measure_report(args.data_root, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
