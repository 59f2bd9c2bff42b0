"""Optimizers and learning-rate schedules, built from the configuration."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from reportgen.config.schema import ModelSection, TrainSection


def make_optimizer(
    params: Iterable[nn.Parameter], train: TrainSection, *, weight_decay: float
) -> Optimizer:
    """Return the configured optimizer (weight decay is L2 for SGD/Adam, decoupled for AdamW).

    Every optimizer uses torch's fused implementation (``fused=True``): one
    elementwise kernel updates all parameters, on the CPU as on CUDA, instead
    of a Python loop over tensors or one ``foreach`` kernel per arithmetic
    step.  Each element's update depends on that element alone, so the
    result does not depend on how the work is split across threads.
    """
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=train.lr, momentum=train.momentum, weight_decay=weight_decay, fused=True
        )
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=train.lr, weight_decay=weight_decay, fused=True)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=train.lr, weight_decay=weight_decay, fused=True)
    raise ValueError(f"unknown optimizer {train.optimizer!r}")


def make_scheduler(
    optimizer: Optimizer, spec: ModelSection, *, epochs: int, steps_per_epoch: int
) -> LRScheduler | ReduceLROnPlateau | None:
    """Return the configured learning-rate scheduler, or None for a constant rate."""
    sched = torch.optim.lr_scheduler
    if spec.scheduler == "none":
        return None
    if spec.scheduler == "step":
        return sched.StepLR(optimizer, step_size=spec.step_size, gamma=spec.gamma)
    if spec.scheduler == "exponential":
        return sched.ExponentialLR(optimizer, gamma=spec.gamma)
    if spec.scheduler == "plateau":
        return sched.ReduceLROnPlateau(
            optimizer, factor=spec.plateau_factor, patience=spec.plateau_patience,
            min_lr=spec.min_lr,
        )  # fmt: skip
    if spec.scheduler == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=spec.min_lr)
    if spec.scheduler == "onecycle":
        return sched.OneCycleLR(
            optimizer, max_lr=spec.max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch
        )
    raise ValueError(f"unknown scheduler {spec.scheduler!r}")
