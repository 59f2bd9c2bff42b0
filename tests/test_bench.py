"""The benchmark's arithmetic and timing helpers (its figures are printed, not tested).

The timing helpers are tested on a clock of their own, never the wall clock
of a shared machine: it moves by one per image through the model, and by
what a test adds, so each span says exactly which work it covers.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch

from reportgen.data import idx
from reportgen.data.tensors import Split

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered while in use: dataclasses look their module up in sys.modules.
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "bench", module)
        spec.loader.exec_module(module)
        yield module


def pixels(n: int) -> torch.Tensor:
    """Return ``n`` random 28×28 grey images as the splits hold them (uint8)."""
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)


def split(n: int) -> Split:
    """Return a split of ``n`` random images and labels, normalised as MNIST is."""
    return Split(pixels(n), torch.randint(0, 10, (n,)), torch.arange(n), (idx.MEAN,), (idx.STD,))


class ImageClock:
    """A ``perf_counter`` that moves by one per image the model sees, and by what is added."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, by: float) -> None:
        self.now += by


@pytest.fixture
def clock(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ImageClock:
    """Time the benchmark's trainer on an :class:`ImageClock` instead of the wall clock."""
    clock = ImageClock()

    class CountingMLP(bench.MLP):  # type: ignore[name-defined]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            clock.advance(len(x))
            return super().forward(x)

    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(bench, "MLP", CountingMLP)
    return clock


def test_epoch_flops_are_the_issues_figure(bench: ModuleType) -> None:
    # 784·256 + 256·128 + 128·10 MACs per image, ×2 FLOP, ×3 for forward and backward.
    assert bench.mlp_epoch_flops(60_000) == 6 * (784 * 256 + 256 * 128 + 128 * 10) * 60_000
    assert round(bench.mlp_epoch_flops(60_000) / 1e9, 2) == 84.51


def test_epochs_are_timed_apart_from_what_runs_between_them(
    bench: ModuleType, clock: ImageClock
) -> None:
    torch.manual_seed(0)
    data = split(256)
    calls: list[int] = []

    def between() -> None:
        calls.append(len(calls))
        clock.advance(1_000_000)  # a long pause after each epoch

    times = bench.reportgen_epochs(data, data, epochs=3, threads=1, between=between)
    assert calls == [0, 1, 2]
    # Each epoch's training pass sees the 256 images once, and so does its validation
    # pass; the pause between epochs is in neither span.
    assert times.train == [256, 256, 256]
    assert times.end == [256, 256, 256]
    assert clock.now == 3 * (256 + 256 + 1_000_000)


def test_the_training_pass_is_timed_apart_from_the_validation_pass(
    bench: ModuleType, clock: ImageClock
) -> None:
    torch.manual_seed(0)
    # A validation set 300 times the training set: each pass in its own span.
    small, large = split(64), split(19_200)
    times = bench.reportgen_epochs(small, large, epochs=2, threads=1)
    assert times.train == [64, 64]
    assert times.end == [19_200, 19_200]


def test_sgemm_rate_is_the_median_of_every_burst(bench: ModuleType) -> None:
    sgemm = bench.Sgemm(threads=1)
    sgemm.burst(3)
    sgemm.burst(4)
    assert len(sgemm.samples) == 7
    expected = 2 * 1024**3 / sorted(sgemm.samples)[3] / 1e9
    assert sgemm.gflops() == pytest.approx(expected)
