"""The benchmark's arithmetic and timing helpers (its figures are printed, not tested)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from reportgen.data import Split

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


def test_epoch_flops_are_the_issues_figure(bench: ModuleType) -> None:
    # 784·256 + 256·128 + 128·10 MACs per image, ×2 FLOP, ×3 for forward and backward.
    assert bench.mlp_epoch_flops(60_000) == 6 * (784 * 256 + 256 * 128 + 128 * 10) * 60_000
    assert round(bench.mlp_epoch_flops(60_000) / 1e9, 2) == 84.51


def test_epochs_are_timed_apart_from_what_runs_between_them(bench: ModuleType) -> None:
    torch.manual_seed(0)
    split = Split(pixels(256), torch.randint(0, 10, (256,)), torch.arange(256))
    calls: list[int] = []

    def between() -> None:
        calls.append(len(calls))
        time.sleep(0.2)

    times = bench.reportgen_epochs(split, split, epochs=3, threads=1, between=between)
    assert calls == [0, 1, 2]
    assert len(times.train) == len(times.end) == 3
    assert all(span > 0 for span in times.train + times.end)
    # The pause between epochs is in neither span.
    assert all(span < 0.2 for span in times.train + times.end)


def test_the_training_pass_is_timed_apart_from_the_validation_pass(bench: ModuleType) -> None:
    torch.manual_seed(0)
    small = Split(pixels(64), torch.randint(0, 10, (64,)), torch.arange(64))
    # A validation set 300 times the training set: its pass dominates each epoch's end.
    large = Split(pixels(19_200), torch.randint(0, 10, (19_200,)), torch.arange(19_200))
    times = bench.reportgen_epochs(small, large, epochs=2, threads=1)
    assert all(end > 5 * train for train, end in zip(times.train, times.end, strict=True))


def test_sgemm_rate_is_the_median_of_every_burst(bench: ModuleType) -> None:
    sgemm = bench.Sgemm(threads=1)
    sgemm.burst(3)
    sgemm.burst(4)
    assert len(sgemm.samples) == 7
    expected = 2 * 1024**3 / sorted(sgemm.samples)[3] / 1e9
    assert sgemm.gflops() == pytest.approx(expected)
