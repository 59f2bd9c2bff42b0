"""Benchmark of the train–test duplicate search on MNIST: 60,000 training × 10,000 test images.

Run from the repository root::

    .venv/bin/python benchmarks/duplicates.py [--data-root DIR] [--threads N] [--repeat N]
                                              [--nearest]

Reads MNIST's official files (downloading them into ``--data-root`` if needed),
times :func:`reportgen.evaluate.duplicates.find_duplicates` (the features of
both sets, the exact and the near search) and prints one JSON object: the
wall-clock and CPU seconds of each repeat and their medians, the load average
of the machine while it ran (other work slows it), and the pairs found.
``--nearest`` also measures every test digit's distance to its nearest
training digit, by plain chunked products (slow): the margin between the
threshold and MNIST's merely similar digits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from reportgen.data.acquire import ensure_idx
from reportgen.data.idx import MNIST, raw_dir, read_idx_file
from reportgen.evaluate import duplicates


def nearest_distances(test: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    """Return each test image's distance to its nearest training image (1 − cos)."""
    test_vectors, train_vectors = duplicates.features(test), duplicates.features(train)
    best = torch.empty(len(test_vectors))
    for start in range(0, len(test_vectors), 256):
        block = test_vectors[start : start + 256] @ train_vectors.T
        best[start : start + 256] = block.max(dim=1).values
    return (1.0 - best.double()).clamp(0, 2).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(Path.home() / ".cache" / "reportgen"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nearest", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ensure_idx(args.data_root, dataset=MNIST)
    raw = raw_dir(args.data_root, MNIST)
    train = torch.from_numpy(read_idx_file(raw / "train-images-idx3-ubyte").copy())[:, None]
    test = torch.from_numpy(read_idx_file(raw / "t10k-images-idx3-ubyte").copy())[:, None]
    wall, cpu, load = [], [], []
    found = None
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        found = duplicates.find_duplicates(test, {"train": train})
        wall.append(round(time.perf_counter() - start, 3))
        cpu.append(round(time.process_time() - start_cpu, 3))
        load.append(os.getloadavg()[0])
    assert found is not None
    result = {
        "train_images": len(train), "test_images": len(test), "threads": args.threads,
        "cpus": os.cpu_count(), "wall_seconds": wall,
        "median_wall_seconds": statistics.median(wall), "cpu_seconds": cpu,
        "median_cpu_seconds": statistics.median(cpu),
        "load_average_1min": load, "threshold": duplicates.THRESHOLD,
        "exact": found.count("train", "exact"), "near": found.count("train", "near"),
        "pairs": [[m.test, m.match, m.kind, round(m.distance, 5)] for m in found.matches],
    }  # fmt: skip
    if args.nearest:
        nearest = nearest_distances(test, train)
        result["nearest"] = {
            "min": float(nearest.min()), "median": float(np.median(nearest)),
            "below_threshold": int((nearest <= duplicates.THRESHOLD).sum()),
            "below_2x_threshold": int((nearest <= 2 * duplicates.THRESHOLD).sum()),
            "quantiles": {q: float(np.quantile(nearest, q)) for q in (0.001, 0.01, 0.1)},
        }  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
