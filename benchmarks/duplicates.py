"""Benchmark of the train–test duplicate search on MNIST: 60,000 training × 10,000 test images.

Run from the repository root::

    .venv/bin/python benchmarks/duplicates.py [--data-root DIR] [--threads N] [--repeat N]

Reads MNIST's official files (downloading them into ``--data-root`` if needed),
times :func:`reportgen.evaluate.duplicates.find_duplicates` (the features of
both sets, the exact and the near search) and prints one JSON object: the
seconds of each repeat, their median, what was found, and the nearest
training image of every test image's distance quantiles (the threshold's
margin on this data).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from reportgen.data.acquire import ensure_idx
from reportgen.data.idx import MNIST, raw_dir, read_idx_file
from reportgen.evaluate import duplicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=str(Path.home() / ".cache" / "reportgen"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ensure_idx(args.data_root, dataset=MNIST)
    raw = raw_dir(args.data_root, MNIST)
    train = torch.from_numpy(read_idx_file(raw / "train-images-idx3-ubyte").copy())[:, None]
    test = torch.from_numpy(read_idx_file(raw / "t10k-images-idx3-ubyte").copy())[:, None]
    seconds = []
    found = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        found = duplicates.find_duplicates(test, {"train": train})
        seconds.append(round(time.perf_counter() - start, 3))
    assert found is not None
    print(json.dumps({
        "train_images": len(train), "test_images": len(test), "threads": args.threads,
        "seconds": seconds, "median_seconds": statistics.median(seconds),
        "exact": found.count("train", "exact"), "near": found.count("train", "near"),
        "threshold": duplicates.THRESHOLD,
        "pairs": [[m.test, m.match, m.kind, round(m.distance, 5)] for m in found.matches],
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
