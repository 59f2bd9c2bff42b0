"""The training loop: takes tensors and config, returns a history.

One loop trains every network: forward, ``loss.backward()``,
``optimizer.step()``, ``scheduler.step()``.  The data stay in one tensor on
the device; each step gathers its batch with one ``index_select`` into a
reused buffer, in an order drawn from a seeded ``torch.Generator``, so the
order is the same on every device and in every process.  Losses and logits
are kept as tensors, so the host waits for the device once per epoch (and
every DIVERGENCE_CHECK_STEPS steps), not once per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

from reportgen.config.schema import ModelSection, TrainSection
from reportgen.data.tensors import Split, normalize
from reportgen.train.optim import make_optimizer, make_scheduler

# A NaN/inf loss is looked for every DIVERGENCE_CHECK_STEPS steps and at the end
# of each epoch: often enough to stop promptly, rarely enough not to stall the device.
DIVERGENCE_CHECK_STEPS = 50
# Progress is reported at an epoch's start, after its first step, then at most this many
# seconds apart (and after its last step): a bar that moves at once and keeps moving,
# without a message per step of a fast network. Reading the clock changes no result.
STEP_REPORT_SECONDS = 0.5


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


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Return the sizes of one epoch's batches of ``n`` images: full batches, then the rest.

    A rest of one image joins the batch before it, which then holds
    ``batch_size + 1`` images: BatchNorm cannot train on a batch of one, and
    merging keeps the image rather than dropping it.  Every other ``n`` is
    cut exactly as before, so its runs keep their bytes.
    """
    sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    if len(sizes) > 1 and sizes[-1] == 1:
        sizes[-2:] = [sizes[-2] + 1]
    return sizes


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Return Σ|w| over the weights of every linear and conv layer (biases excluded)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return torch.stack([w.abs().sum() for w in weights]).sum()


@torch.inference_mode()
def evaluate_loss(model: nn.Module, split: Split, *, batch_size: int) -> tuple[float, float]:
    """Return mean cross-entropy and accuracy of ``model`` (in eval mode) on ``split``."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.x.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    for start in range(0, len(split), batch_size):
        rows = slice(start, start + batch_size)
        logits = model(split.inputs(rows))
        y = split.y[rows]
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(dim=1) == y).sum()
    model.train(was_training)
    n = len(split)
    return float(loss_sum) / n, int(correct) / n


EpochCallback = Callable[[EpochRecord, TrainState], None]
StepCallback = Callable[[int, int], None]


def train_model(
    model: nn.Module,
    train: Split,
    val: Split,
    *,
    train_cfg: TrainSection,
    spec: ModelSection,
    batch_size: int,
    shuffle: torch.Generator,
    eval_batch_size: int | None = None,
    resume: TrainState | None = None,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train ``model`` for ``train_cfg.epochs`` epochs and return its per-epoch history.

    The objective is mean cross-entropy, plus ``spec.l1 · Σ|w|`` when set.
    ``shuffle`` orders the batches; dropout draws from torch's global RNG,
    which the caller seeds.  ``on_epoch`` receives a :class:`TrainState` after
    every epoch so the caller can checkpoint; ``resume`` continues from one.
    ``on_step(done, total)`` reports progress at the start of each epoch
    (``done = 0``), after its first and last steps, and every
    STEP_REPORT_SECONDS in between.  A non-finite loss stops training and
    restores the weights of the last finite epoch, so the model can still be
    evaluated and reported.  The validation set goes through the network
    ``eval_batch_size`` images at a time (default ``train_cfg.eval_batch_size``).
    """
    n = len(train)
    # Each step's mean loss is weighted by its batch size (the last batch may be shorter).
    batches = batch_sizes(n, batch_size)
    steps_per_epoch = len(batches)
    val_batch = eval_batch_size or train_cfg.eval_batch_size
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

    sizes = torch.tensor(batches, dtype=torch.float64)  # [steps_per_epoch]
    for epoch in range(len(history) + 1, train_cfg.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        # Restored if this epoch diverges, so the model is reported as it last was finite.
        last_finite = {k: v.clone() for k, v in model.state_dict().items()}
        order = torch.randperm(n, generator=shuffle).to(train.x.device)  # [N]
        labels = train.y[order]  # [N]
        steps = _train_epoch(
            model, train, order, labels, optimizer=optimizer, batches=batches, l1=spec.l1,
            step_scheduler=scheduler if isinstance(scheduler, OneCycleLR) else None,
            on_step=on_step,
        )  # fmt: skip
        if steps.diverged_at is not None:
            model.load_state_dict(last_finite)
            return TrainResult(history, _divergence(epoch, steps.diverged_at, history))

        val_loss, val_accuracy = evaluate_loss(model, val, batch_size=val_batch)
        record = EpochRecord(
            epoch=epoch,
            train_loss=float((steps.losses.double().cpu() * sizes).sum()) / n,
            train_accuracy=int((steps.logits.argmax(dim=1) == labels).sum()) / n,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=float(lr),
        )
        history.append(record)
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None and not isinstance(scheduler, OneCycleLR):
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


@dataclass(frozen=True)
class _EpochSteps:
    """One pass of training steps: what each step computed, and where a loss was not finite."""

    losses: torch.Tensor  # [steps] mean cross-entropy of each step
    logits: torch.Tensor  # [N, classes] in the epoch's order
    diverged_at: int | None  # the step whose check found a NaN/inf loss


def _train_epoch(
    model: nn.Module,
    split: Split,
    order: torch.Tensor,
    labels: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    batches: list[int],
    l1: float,
    step_scheduler: OneCycleLR | None,
    on_step: StepCallback | None,
) -> _EpochSteps:
    """Take one training step per batch of ``split`` in ``order``; ``labels`` are in that order.

    ``batches`` holds the size of each batch (:func:`batch_sizes`).
    """
    model.train()
    steps = len(batches)
    images = split.x  # [N, C, H, W] uint8
    buffer = torch.empty(
        (max(batches), *images.shape[1:]), dtype=images.dtype, device=images.device
    )
    losses: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    pairs = zip(order.split(batches), labels.split(batches), strict=True)
    if on_step is not None:
        on_step(0, steps)
    reported = time.monotonic()
    for step, (index, y) in enumerate(pairs, start=1):  # [B], [B]
        # Gather the batch's bytes into the same buffer, then normalise them: the split
        # stays one byte per pixel.
        pixels = torch.index_select(images, 0, index, out=buffer[: len(index)])  # [B, C, H, W]
        x = normalize(pixels, split.mean, split.std)
        # Forward: logits, loss, and the objective the gradients are taken of.
        batch_logits = model(x)  # [B, classes]
        loss = F.cross_entropy(batch_logits, y)
        objective = loss + l1 * l1_penalty(model) if l1 > 0 else loss
        # Backward, then update the weights (and the rate, for a per-step schedule).
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        # Kept as tensors: reading a value here would wait for the device every step.
        losses.append(loss.detach())
        logits.append(batch_logits.detach())
        if on_step is not None and (
            step in (1, steps) or time.monotonic() - reported >= STEP_REPORT_SECONDS
        ):
            on_step(step, steps)
            reported = time.monotonic()
        checked = step % DIVERGENCE_CHECK_STEPS == 0 or step == steps
        if checked and not torch.isfinite(torch.stack(losses[-DIVERGENCE_CHECK_STEPS:])).all():
            return _EpochSteps(torch.stack(losses), torch.cat(logits), diverged_at=step)
    return _EpochSteps(torch.stack(losses), torch.cat(logits), diverged_at=None)


def _divergence(epoch: int, step: int, history: list[EpochRecord]) -> Divergence:
    last = history[-1].train_loss if history else None
    return Divergence(epoch=epoch, step=step, last_finite_loss=last)
