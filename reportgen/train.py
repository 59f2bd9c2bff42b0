"""The training loop: takes tensors and config, returns a history.

Batches are gathered from device-resident tensors by one indexing operation
per step, with a seeded ``torch.Generator`` for the shuffle, so the data
order is the same on every device and in every process.  Metrics are
accumulated on tensors; the host waits for the device once per epoch (and
every DIVERGENCE_CHECK_STEPS steps).  MLP gradients come from the
hand-written backward pass in :mod:`reportgen.backprop`, other networks'
from autograd, with the same bits; :class:`reportgen.optim.FusedStep`
applies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

from reportgen.backprop import MLPBackprop
from reportgen.config import ModelSection, TrainSection
from reportgen.data import Split
from reportgen.optim import FusedStep, make_optimizer, make_scheduler

# A NaN/inf loss is looked for every DIVERGENCE_CHECK_STEPS steps and at the end
# of each epoch: often enough to stop promptly, rarely enough not to stall the device.
DIVERGENCE_CHECK_STEPS = 50


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of one model: losses are mean cross-entropy, accuracies in [0, 1]."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float


@dataclass(frozen=True)
class Divergence:
    """Where a model's loss stopped being finite."""

    epoch: int
    step: int
    last_finite_loss: float | None


@dataclass
class TrainState:
    """Everything needed to continue training bit-for-bit after an interruption."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainResult:
    """A model's per-epoch history and, if it happened, its divergence."""

    history: list[EpochRecord]
    divergence: Divergence | None


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Return Σ|w| over the weights of every linear and conv layer (biases excluded)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return torch.stack([w.abs().sum() for w in weights]).sum()


GradientStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def gradient_step(model: nn.Module, *, l1: float) -> GradientStep:
    """Return a function (x, y) -> (loss, logits) that leaves the objective's gradient in ``.grad``.

    The objective is mean cross-entropy plus ``l1 · Σ|w|``.  MLPs get the
    hand-written backward pass of :mod:`reportgen.backprop` (the same bits,
    about twice as fast at batch 64); other networks go through autograd.
    """
    by_hand = MLPBackprop.build(model, l1=l1)
    if by_hand is not None:
        return by_hand

    def autograd_step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)  # [B, 10]
        loss = F.cross_entropy(logits, y)
        objective = loss + l1 * l1_penalty(model) if l1 > 0 else loss
        model.zero_grad(set_to_none=True)
        objective.backward()
        return loss.detach(), logits.detach()

    return autograd_step


@torch.inference_mode()
def evaluate_loss(model: nn.Module, split: Split, *, batch_size: int) -> tuple[float, float]:
    """Return mean cross-entropy and accuracy of ``model`` (in eval mode) on ``split``."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    for start in range(0, len(split), batch_size):
        x, y = split.x[start : start + batch_size], split.y[start : start + batch_size]
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(dim=1) == y).sum()
    model.train(was_training)
    n = len(split)
    return float(loss_sum) / n, int(correct) / n


EpochCallback = Callable[[EpochRecord, TrainState], None]


def train_model(
    model: nn.Module,
    train: Split,
    val: Split,
    *,
    train_cfg: TrainSection,
    spec: ModelSection,
    batch_size: int,
    shuffle: torch.Generator,
    resume: TrainState | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``model`` for ``train_cfg.epochs`` epochs and return its per-epoch history.

    ``shuffle`` orders the batches; dropout draws from torch's global RNG,
    which the caller seeds.  ``on_epoch`` receives a :class:`TrainState` after
    every epoch so the caller can checkpoint; ``resume`` continues from one.
    A non-finite loss stops training and restores the weights of the last
    finite epoch, so the model can still be evaluated and reported.
    """
    n = len(train)
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = make_optimizer(model.parameters(), train_cfg, weight_decay=spec.weight_decay)
    scheduler = make_scheduler(
        optimizer, spec, epochs=train_cfg.epochs, steps_per_epoch=steps_per_epoch
    )
    history: list[EpochRecord] = []
    if resume is not None:
        model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        if scheduler is not None and resume.scheduler is not None:
            scheduler.load_state_dict(resume.scheduler)
        shuffle.set_state(resume.shuffle_rng)
        torch.set_rng_state(resume.torch_rng)
        history = [EpochRecord(**record) for record in resume.history]  # type: ignore[arg-type]
    compute_gradients = gradient_step(model, l1=spec.l1)
    no_autograd = isinstance(compute_gradients, MLPBackprop)
    optimizer_step = FusedStep(optimizer)

    device = train.x.device
    per_batch = isinstance(scheduler, OneCycleLR)
    batch_sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    sizes = torch.tensor(batch_sizes, dtype=torch.float64)  # [steps_per_epoch]
    # Every batch is gathered into a view of one buffer (the last batch may be shorter).
    buffer = torch.empty((batch_size, *train.x.shape[1:]), dtype=train.x.dtype, device=device)
    batch_buffers = {size: buffer[:size] for size in batch_sizes}
    for epoch in range(len(history) + 1, train_cfg.epochs + 1):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        # Restored if this epoch diverges, so the model is reported as it last was finite.
        last_finite = {k: v.clone() for k, v in model.state_dict().items()}
        order = torch.randperm(n, generator=shuffle).to(device)
        epoch_y = train.y[order]  # [N]
        # Per-step results are kept as tensors: no host synchronisation per step.
        step_losses: list[torch.Tensor] = []
        step_logits: list[torch.Tensor] = []
        batches = zip(order.split(batch_size), epoch_y.split(batch_size), strict=True)
        # The hand-written pass needs no autograd: every op skips its bookkeeping.
        with torch.inference_mode(no_autograd):
            for step, (index, y) in enumerate(batches):  # [B], [B]
                # One gather per step, into the same buffer: the batch is still in
                # cache when the first layer reads it, for forward and for backward.
                x = torch.index_select(train.x, 0, index, out=batch_buffers[len(index)])
                loss, logits = compute_gradients(x, y)  # [], [B, 10]
                optimizer_step()
                if per_batch:
                    scheduler.step()  # type: ignore[union-attr]
                step_losses.append(loss)
                step_logits.append(logits)
                if (step + 1) % DIVERGENCE_CHECK_STEPS == 0:
                    if on_step is not None:
                        on_step(step + 1, steps_per_epoch)
                    losses = torch.stack(step_losses[-DIVERGENCE_CHECK_STEPS:])
                    if not torch.isfinite(losses).all():
                        model.load_state_dict(last_finite)
                        return TrainResult(history, _divergence(epoch, step + 1, history))
        if on_step is not None:
            on_step(steps_per_epoch, steps_per_epoch)
        losses = torch.stack(step_losses)  # [steps]
        if not torch.isfinite(losses).all():
            model.load_state_dict(last_finite)
            return TrainResult(history, _divergence(epoch, steps_per_epoch, history))
        predictions = torch.cat(step_logits).argmax(dim=1)  # [N]

        val_loss, val_accuracy = evaluate_loss(model, val, batch_size=train_cfg.eval_batch_size)
        record = EpochRecord(
            epoch=epoch,
            train_loss=float((losses.double().cpu() * sizes).sum()) / n,
            train_accuracy=int((predictions == epoch_y).sum()) / n,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=float(lr),
        )
        history.append(record)
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None and not per_batch:
            scheduler.step()
        if on_epoch is not None:
            on_epoch(
                record,
                TrainState(
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict() if scheduler is not None else None,
                    shuffle_rng=shuffle.get_state(),
                    torch_rng=torch.get_rng_state(),
                    history=[asdict(r) for r in history],
                ),
            )
    return TrainResult(history, None)


def _divergence(epoch: int, step: int, history: list[EpochRecord]) -> Divergence:
    last = history[-1].train_loss if history else None
    return Divergence(epoch=epoch, step=step, last_finite_loss=last)
