"""Side-by-side training benchmark: the tutorial loop against reportgen's trainer.

Run from the repository root::

    .venv/bin/python benchmarks/bench.py [--data-root DIR] [--skip-run] [--out FILE]

Everything is measured in this one process, except the whole default run,
which is a child ``reportgen run`` so that its peak resident memory is its own.
The tutorial runs on all of the run's threads, as torch's default would; the
trainer on the threads a default run gives each model (one each of two, the
models training side by side), and on all of them.
Prints one JSON object (and writes it to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.artifacts.manifest import RunManifest, read_manifest
from reportgen.config.loading import load_config
from reportgen.core.seeding import generator, seed_everything
from reportgen.data.acquire import ensure_idx
from reportgen.data.idx import MNIST
from reportgen.data.tensors import Split
from reportgen.evaluate.predict import predict_proba
from reportgen.run.stages import model_threads, resolve_device
from reportgen.train.loop import EpochRecord, TrainState, train_model
from reportgen.train.networks import MLP

BATCH = 64
EPOCHS = 10  # one warm-up, then the median of nine: robust to a few seconds of a slow host
HIDDEN = (256, 128)
MNIST_SHAPE: dict[str, Any] = {"input_shape": (1, 28, 28), "num_classes": 10}
SCALING_SIZES = (7_500, 15_000, 30_000, 60_000)


def mnist_split(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> Split:
    """Return MNIST images as a split, normalised per batch with MNIST's statistics."""
    return Split(x, y, index, (MNIST.mean,), (MNIST.std,))


def mlp_epoch_flops(samples: int, widths: tuple[int, ...] = (784, *HIDDEN, 10)) -> float:
    """Return forward+backward FLOPs of one epoch: 2·MACs forward, twice that backward."""
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    return 3 * 2 * macs * samples


def sgemm_seconds(a: torch.Tensor, b: torch.Tensor, repeats: int) -> list[float]:
    """Return the wall time of each of ``repeats`` products ``a @ b``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return times


class Sgemm:
    """Single-precision matmul rate, sampled in bursts between the epochs it is compared with.

    This shared 2-core VM drifts by ±20 % over minutes; sampling the rate
    next to each timed epoch keeps the roofline ratio a ratio of like with like.
    """

    SIZE = 1024

    def __init__(self, threads: int) -> None:
        torch.set_num_threads(threads)
        self.a, self.b = torch.randn(self.SIZE, self.SIZE), torch.randn(self.SIZE, self.SIZE)
        self.samples: list[float] = []
        # A second of warm-up first: an idle core starts at a lower clock, which
        # would otherwise understate the machine's rate (and flatter the ratio).
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            self.a @ self.b

    def burst(self, repeats: int = 10) -> None:
        self.samples += sgemm_seconds(self.a, self.b, repeats)

    def gflops(self) -> float:
        """Return the median rate over every burst so far, in GFLOP/s."""
        return 2 * self.SIZE**3 / statistics.median(self.samples) / 1e9


def tutorial_epoch(root: str) -> float:
    """Time one epoch of the usual tutorial loop: transforms + DataLoader(shuffle=True)."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()  # the tutorial logs the loss every step
    return time.perf_counter() - start


def full_train_split(root: str, limit: int = 0) -> Split:
    """Return all 60,000 training images as one split (the tutorial trains on all of them)."""
    from torchvision.datasets import MNIST

    train = MNIST(root, train=True, download=False)
    index = torch.arange(limit or len(train.targets))
    images = train.data.unsqueeze(1)  # [N, 1, 28, 28] uint8, normalised per batch
    return mnist_split(images[index].contiguous(), train.targets[index].long(), index)


@dataclass
class EpochTimes:
    """Seconds per epoch: the training pass, and the end-of-epoch work after it."""

    train: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)


def reportgen_epochs(
    split: Split,
    val: Split,
    *,
    epochs: int,
    threads: int,
    between: Callable[[], None] | None = None,
) -> EpochTimes:
    """Train the baseline MLP with reportgen's trainer and time each epoch.

    ``train`` spans one pass over the training images, which is what the
    tutorial's epoch is; ``end`` spans what the trainer does after it (train
    metrics, the validation pass).  ``between`` runs after each epoch,
    outside both.
    """
    config = load_config(None, [f"train.epochs={epochs}", f"runtime.threads={threads}"])
    seed_everything(0, threads=threads)
    model = MLP(HIDDEN, **MNIST_SHAPE)
    times = EpochTimes()
    start = passed = time.perf_counter()

    def on_step(done: int, total: int) -> None:
        nonlocal passed
        if done == total:
            passed = time.perf_counter()
            times.train.append(passed - start)

    def on_epoch(record: EpochRecord, state: TrainState) -> None:
        nonlocal start
        times.end.append(time.perf_counter() - passed)
        if between is not None:
            between()
        start = time.perf_counter()

    train_model(
        model, split, val, train_cfg=config.train, spec=config.models["baseline"],
        batch_size=BATCH, shuffle=generator(0), on_epoch=on_epoch, on_step=on_step,
    )  # fmt: skip
    return times


def default_run(config_path: Path, overrides: list[str]) -> dict[str, Any]:
    """Run ``reportgen run`` on the default config in a child; return its timings and peak RSS.

    The peak is the largest of the child's processes (the run's, or its training worker's).
    """
    with tempfile.TemporaryDirectory(prefix="reportgen-bench-") as tmp:
        out = Path(tmp) / "run"
        sets = [arg for item in overrides for arg in ("--set", item)]
        command = [sys.executable, "-m", "reportgen", "--quiet", "run",
                   "--config", str(config_path), "--out", str(out), *sets]  # fmt: skip
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"default run failed with status {status}")
        manifest = read_manifest(out, RunManifest)
    return {
        "default_run_wall_s": round(wall, 2),
        "default_run_stage_s": manifest.timings_s,
        "default_run_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="MNIST cache (default: the config's data.root)")
    parser.add_argument("--config", type=Path, default=Path("config.toml"))
    parser.add_argument("--threads", type=int, default=None, help="default: runtime.threads")
    parser.add_argument("--skip-run", action="store_true", help="skip the whole default run")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the data-size sweep")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    overrides = [f"runtime.threads={args.threads}"] if args.threads else []
    config = load_config(args.config if args.config.is_file() else None, overrides)
    root = os.path.expanduser(args.data_root or config.data.root)
    threads = config.runtime.threads
    per_model = model_threads(config, resolve_device(config.runtime.device))
    ensure_idx(root)
    seed_everything(0, threads=threads)

    tutorial_s = tutorial_epoch(root)
    split = full_train_split(root)
    val = mnist_split(split.x[:5_000], split.y[:5_000], split.index[:5_000])
    # The roofline is the SGEMM rate on as many threads as the trainer uses.
    sgemm = Sgemm(per_model)
    sgemm.burst()
    epochs = reportgen_epochs(split, val, epochs=EPOCHS, threads=per_model, between=sgemm.burst)
    reportgen_s = statistics.median(epochs.train[1:])  # the first epoch is the warm-up
    gflops = sgemm.gflops()
    roofline_s = mlp_epoch_flops(len(split)) / (gflops * 1e9)
    all_threads = reportgen_epochs(split, val, epochs=EPOCHS, threads=threads).train
    torch.set_num_threads(threads)

    from torchvision.datasets import MNIST

    test = MNIST(root, train=False, download=False)
    test_split = mnist_split(
        test.data.unsqueeze(1), test.targets.long(), torch.arange(len(test.data))
    )
    model = MLP(HIDDEN, **MNIST_SHAPE).eval()
    predict_proba(model, test_split, batch_size=config.train.eval_batch_size)  # warm-up
    start = time.perf_counter()
    predict_proba(model, test_split, batch_size=config.train.eval_batch_size)
    eval_s = time.perf_counter() - start

    torch_version = metadata.version("torch")
    result: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "threads": threads, "torch": torch_version},
        "batch_size": BATCH,
        "train_images": len(split),
        "tutorial_epoch_s": round(tutorial_s, 3),
        "reportgen_threads": per_model,
        "reportgen_epoch_s": round(reportgen_s, 3),
        "reportgen_epochs_s": [round(e, 3) for e in epochs.train],
        "reportgen_epoch_end_s": round(statistics.median(epochs.end[1:]), 3),
        "speedup": round(tutorial_s / reportgen_s, 2),
        "reportgen_epoch_all_threads_s": round(statistics.median(all_threads[1:]), 3),
        "speedup_all_threads": round(tutorial_s / statistics.median(all_threads[1:]), 2),
        "reportgen_epochs_all_threads_s": [round(e, 3) for e in all_threads],
        "sgemm_gflops": round(gflops, 1),
        "sgemm_samples": len(sgemm.samples),
        "epoch_gflop": round(mlp_epoch_flops(len(split)) / 1e9, 2),
        "roofline_epoch_s": round(roofline_s, 3),
        "roofline_ratio": round(reportgen_s / roofline_s, 2),
        "eval_s": round(eval_s, 4),
    }
    if not args.skip_scaling:
        scaling = {}
        for size in SCALING_SIZES:
            part = mnist_split(split.x[:size], split.y[:size], split.index[:size])
            spans = reportgen_epochs(part, val, epochs=3, threads=per_model).train
            seconds = statistics.median(spans[1:])
            scaling[str(size)] = {"epoch_s": round(seconds, 3),
                                  "us_per_image": round(seconds / size * 1e6, 2)}  # fmt: skip
        result["scaling"] = scaling
    if not args.skip_run:
        result.update(default_run(args.config, overrides))
    result["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
