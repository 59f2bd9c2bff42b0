from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reportgen.backprop import share_one_storage
from reportgen.config import Config, ModelSection
from reportgen.optim import (
    DENORMAL_FLUSH_STEPS,
    SMALLEST_NORMAL,
    FusedStep,
    make_optimizer,
    make_scheduler,
)


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


def _twin_runs(
    make: type[torch.optim.Optimizer], steps: int = 6, **options: object
) -> tuple[list[nn.Parameter], list[nn.Parameter], FusedStep, torch.optim.Optimizer]:
    """Run ``steps`` updates with FusedStep and with optimizer.step() on equal parameters."""
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(3)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(steps)]
    fused_params = [nn.Parameter(p.clone()) for p in start]
    plain_params = [nn.Parameter(p.clone()) for p in start]
    fused_opt, plain_opt = make(fused_params, **options), make(plain_params, **options)
    fused_step = FusedStep(fused_opt)
    sched = torch.optim.lr_scheduler.OneCycleLR(fused_opt, max_lr=0.05, total_steps=steps)
    plain_sched = torch.optim.lr_scheduler.OneCycleLR(plain_opt, max_lr=0.05, total_steps=steps)
    for step_grads in grads:
        for p, q, g in zip(fused_params, plain_params, step_grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        fused_step()
        plain_opt.step()
        sched.step()
        plain_sched.step()
    return fused_params, plain_params, fused_step, plain_opt


@pytest.mark.parametrize(
    ("make", "options", "direct"),
    [
        (torch.optim.Adam, {"fused": True}, True),
        (torch.optim.Adam, {"fused": True, "weight_decay": 0.01}, True),
        (torch.optim.AdamW, {"fused": True, "weight_decay": 0.01}, True),
        (torch.optim.SGD, {"fused": True, "lr": 0.1, "momentum": 0.9}, True),
        (torch.optim.SGD, {"fused": True, "lr": 0.1, "momentum": 0.9, "nesterov": True}, True),
        (torch.optim.SGD, {"fused": True, "lr": 0.1, "weight_decay": 0.01}, True),
        (torch.optim.Adam, {"fused": True, "amsgrad": True}, False),
        (torch.optim.Adam, {"foreach": True}, False),  # no fused kernel
    ],
)
def test_fused_step_is_the_optimizers_step_to_the_bit(
    make: type[torch.optim.Optimizer], options: dict[str, object], direct: bool
) -> None:
    fused, plain, fused_step, plain_opt = _twin_runs(make, **options)
    assert fused_step.direct is direct
    fused_opt = fused_step.optimizer
    for p, q in zip(fused, plain, strict=True):
        assert torch.equal(p, q)
    # The optimizer still owns the state, so checkpoints see every step.
    fused_state, plain_state = fused_opt.state_dict()["state"], plain_opt.state_dict()["state"]
    assert fused_state.keys() == plain_state.keys()
    for index, entry in plain_state.items():
        for key, value in entry.items():
            assert torch.equal(fused_state[index][key], value), key


def test_fused_step_continues_from_state_loaded_before_its_first_step() -> None:
    donor_param = nn.Parameter(torch.ones(4))
    donor = torch.optim.Adam([donor_param], fused=True)
    for _ in range(3):
        donor_param.grad = torch.linspace(-1, 1, 4)
        donor.step()
    param = nn.Parameter(donor_param.detach().clone())
    optimizer = torch.optim.Adam([param], fused=True)
    optimizer.load_state_dict(copy.deepcopy(donor.state_dict()))  # as if from a checkpoint
    step = FusedStep(optimizer)
    for _ in range(2):
        param.grad = donor_param.grad = torch.linspace(-1, 1, 4)
        step()
        donor.step()
    assert step.direct
    assert float(optimizer.state[param]["step"]) == 5
    assert torch.equal(param, donor_param)


def test_fused_step_flushes_denormal_moments_without_changing_the_weights() -> None:
    # One entry gets a gradient once, then none: its first moment decays by
    # beta1 per step and, under optimizer.step(), ends up denormal.
    start = torch.linspace(-1, 1, 4)
    fused_param, plain_param = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    fused_opt = torch.optim.Adam([fused_param], fused=True)
    plain_opt = torch.optim.Adam([plain_param], fused=True)
    step = FusedStep(fused_opt)
    for t in range(16 * DENORMAL_FLUSH_STEPS):
        grad = torch.tensor([1e-3, -1e-3, 2e-3, 1e-3 if t == 0 else 0.0])
        fused_param.grad, plain_param.grad = grad.clone(), grad.clone()
        step()
        plain_opt.step()
    plain_moment = plain_opt.state[plain_param]["exp_avg"]
    fused_moment = fused_opt.state[fused_param]["exp_avg"]
    assert 0 < abs(float(plain_moment[3])) < SMALLEST_NORMAL  # what the flush prevents
    assert float(fused_moment[3]) == 0.0
    assert torch.equal(fused_moment[:3], plain_moment[:3])
    assert torch.equal(fused_param, plain_param)


def _shared_params(shapes: list[tuple[int, ...]]) -> list[nn.Parameter]:
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(shape)) for shape in shapes]
    share_one_storage(params)
    return params


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (torch.optim.Adam, {}),
        (torch.optim.Adam, {"weight_decay": 0.01, "maximize": True}),
        (torch.optim.AdamW, {"weight_decay": 0.01}),
    ],
)
def test_merged_adam_is_the_optimizers_step_to_the_bit(
    make: type[torch.optim.Optimizer], options: dict[str, object]
) -> None:
    # Two tensors of whole 64-byte units, and two ragged ones (the kernel's scalar path).
    shapes = [(40, 16), (16,), (10, 40), (10,), (7,)]
    merged_params, plain_params = _shared_params(shapes), _shared_params(shapes)
    merged_opt = make(merged_params, fused=True, **options)
    plain_opt = make(plain_params, fused=True, **options)
    merged_step = FusedStep(merged_opt)
    sched = torch.optim.lr_scheduler.OneCycleLR(merged_opt, max_lr=0.05, total_steps=20)
    plain_sched = torch.optim.lr_scheduler.OneCycleLR(plain_opt, max_lr=0.05, total_steps=20)
    for _ in range(20):
        for p, q in zip(merged_params, plain_params, strict=True):
            grad = torch.randn(p.shape) * torch.rand(()) ** 8  # small and large alike
            p.grad.copy_(grad)  # type: ignore[union-attr]  # in place: the merged layout stays
            q.grad.copy_(grad)  # type: ignore[union-attr]
        merged_step()
        plain_opt.step()
        sched.step()
        plain_sched.step()
    assert merged_step.merged
    for p, q in zip(merged_params, plain_params, strict=True):
        assert torch.equal(p, q)
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(merged_opt.state[p][key], plain_opt.state[q][key]), key
    # Fresh gradient tensors are not in the merged layout: steps go tensor by tensor.
    for p, q in zip(merged_params, plain_params, strict=True):
        p.grad, q.grad = torch.ones(p.shape), torch.ones(q.shape)
    merged_step()
    plain_opt.step()
    for p, q in zip(merged_params, plain_params, strict=True):
        assert torch.equal(p, q)


def test_adam_is_not_merged_without_a_shared_storage() -> None:
    params = [nn.Parameter(torch.randn(32, 16)), nn.Parameter(torch.randn(32))]
    for p in params:
        p.grad = torch.ones_like(p)
    step = FusedStep(torch.optim.Adam(params, fused=True))
    step()
    step()
    assert step.direct and not step.merged
