from __future__ import annotations

import pytest
import torch
from torch import nn

from reportgen.config.schema import Config, ModelSection
from reportgen.train.optim import make_optimizer, make_scheduler


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("none", [0.1, 0.1, 0.1, 0.1]),
        ("step", [0.1, 0.1, 0.05, 0.05]),
        ("exponential", [0.1, 0.05, 0.025, 0.0125]),
        ("cosine", [0.1, 0.085355, 0.05, 0.014645]),
    ],
)
def test_epoch_schedulers(scheduler: str, expected: list[float]) -> None:
    train = Config().train.model_copy(update={"lr": 0.1})
    spec = ModelSection(scheduler=scheduler, step_size=2, gamma=0.5)
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(1))], train, weight_decay=0)
    sched = make_scheduler(optimizer, spec, epochs=4, steps_per_epoch=1)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if sched is not None:
            sched.step()
    assert rates == pytest.approx(expected, abs=1e-6)


def _steps(name: str, *, threads: int, steps: int = 20) -> list[torch.Tensor]:
    """Return parameters and optimizer state after ``steps`` updates from fixed gradients."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        # Large enough for the fused kernel to split its work across threads.
        params = [nn.Parameter(torch.randn(300, 400, generator=generator)),
                  nn.Parameter(torch.randn(7, generator=generator))]  # fmt: skip
        train = Config().train.model_copy(update={"optimizer": name})
        optimizer = make_optimizer(params, train, weight_decay=0.01)
        spec = ModelSection(scheduler="onecycle", max_lr=0.05)
        scheduler = make_scheduler(optimizer, spec, epochs=1, steps_per_epoch=steps)
        assert scheduler is not None
        for _ in range(steps):
            for p in params:
                # Small and large gradients alike, some in float32's denormal range.
                scale = torch.rand((), generator=generator) ** 40
                p.grad = torch.randn(p.shape, generator=generator) * scale
            optimizer.step()
            scheduler.step()
        state = [t for entry in optimizer.state.values() for t in entry.values()]
        return [p.detach().clone() for p in params] + [t.clone() for t in state]
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_every_optimizer_is_torchs_fused_one(name: str) -> None:
    train = Config().train.model_copy(update={"optimizer": name})
    optimizer = make_optimizer([nn.Parameter(torch.zeros(2))], train, weight_decay=0)
    assert type(optimizer).__name__.lower() == name
    assert optimizer.param_groups[0]["fused"] is True


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizer_steps_repeat_to_the_bit_on_any_thread_count(name: str) -> None:
    one_thread = _steps(name, threads=1)
    assert all(torch.equal(a, b) for a, b in zip(one_thread, _steps(name, threads=1), strict=True))
    two_threads = _steps(name, threads=2)
    assert all(torch.equal(a, b) for a, b in zip(one_thread, two_threads, strict=True))
