"""Optimizers, learning-rate schedules, and a lean way to take an optimizer step.

``torch.optim`` re-gathers every parameter's state and re-checks every flag
on each ``step()``; at batch 64 on a CPU that Python bookkeeping costs more
than the fused update kernel itself.  :class:`FusedStep` gathers once and
then calls the same kernel with the same arguments, so the updates are
bit-for-bit those of ``optimizer.step()`` while the optimizer object keeps
owning the state (checkpoints and schedulers see no difference).

When the parameters share one storage (:func:`reportgen.backprop.share_one_storage`),
Adam's moments are laid out alike and most of the update is one pass over
one buffer.  Adam's moments are also kept out of the denormal range; see
:data:`DENORMAL_FLUSH_STEPS`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from reportgen.config import ModelSection, TrainSection

# Every this many Adam steps, moment entries below float32's smallest normal
# (1.2e-38) are set to zero.  A hidden unit that stays inactive gets zero
# gradients, so its first moment decays by beta1 each step down through the
# denormal range, where arithmetic is so slow that on MNIST it made the Adam
# kernel twice as slow as on random data.  The updates such entries would
# still make are below 1e-30: under the last bit of any weight larger than
# 1e-23, so the trained weights do not change (tested).
DENORMAL_FLUSH_STEPS = 50
SMALLEST_NORMAL = torch.finfo(torch.float32).tiny
# The fused kernels split their work into 64-byte units and vectorise whole units.
KERNEL_UNIT_BYTES = 64


def make_optimizer(
    params: Any, train: TrainSection, *, weight_decay: float, fused: bool = True
) -> Optimizer:
    """Return the configured optimizer (weight decay is L2 for SGD/Adam, decoupled for AdamW).

    The fused kernels (one deterministic elementwise pass over all parameters)
    cut the optimizer's per-step cost about in half on CPU.
    """
    foreach = None if fused else True
    fused_flag = True if fused else None
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=train.lr, momentum=train.momentum, weight_decay=weight_decay,
            foreach=foreach, fused=fused_flag,
        )  # fmt: skip
    if train.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=train.lr, weight_decay=weight_decay, foreach=foreach, fused=fused_flag
        )
    if train.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=train.lr, weight_decay=weight_decay, foreach=foreach, fused=fused_flag
        )
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


@dataclass
class _AdamLists:
    """The fused Adam kernel's tensor arguments: entry i of each list belongs together."""

    params: list[torch.Tensor]
    grads: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]


class FusedStep:
    """Take ``optimizer``'s step by calling its fused kernel on lists gathered once.

    The first call is a plain ``optimizer.step()``, which creates (or, after
    ``load_state_dict``, adopts) the state exactly as torch does; later calls
    update the state in place (Adam's moments may first be copied into
    storages laid out like the parameters, and the state then holds views
    of those, with the same values).  Hyperparameters are read from
    the parameter group on every call, so schedulers that change the learning
    rate or Adam's betas take effect as usual.  Optimizers this does not know
    (several groups, AMSGrad, no fused kernel) always take ``optimizer.step()``.
    Load state into the optimizer before the first call, not after.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self._kernel: Callable[[dict[str, Any], list[torch.Tensor]], None] | None = None
        self._gathered = False
        self._params: list[torch.Tensor] = []
        self._buffers: list[list[torch.Tensor]] = []
        self._steps_taken = 0  # Adam's step count, as in its state
        # Adam's kernel arguments with the parameters that tile the start of
        # one storage merged into one tensor, and the gradients they assume.
        self._merged: _AdamLists | None = None
        self._merged_grads: list[torch.Tensor] = []
        self._moments: list[torch.Tensor] = []  # what the denormal flush scans

    @property
    def direct(self) -> bool:
        """Whether steps now call the fused kernel directly (False before the first)."""
        return self._kernel is not None

    @property
    def merged(self) -> bool:
        """Whether Adam updates the parameters that share one storage in one pass."""
        return self._merged is not None

    def __call__(self) -> None:
        if self._kernel is not None:
            grads = [p.grad for p in self._params]
            self._kernel(self.optimizer.param_groups[0], grads)  # type: ignore[arg-type]
            return
        self.optimizer.step()
        if not self._gathered:
            # Made outside inference mode, so they can be stepped outside it too.
            with torch.inference_mode(False):
                self._kernel, self._gathered = self._gather(), True

    def _gather(self) -> Callable[[dict[str, Any], list[torch.Tensor]], None] | None:
        groups = self.optimizer.param_groups
        if len(groups) != 1 or not groups[0].get("fused"):
            return None
        group, state = groups[0], self.optimizer.state
        self._params = [p for p in group["params"] if p.grad is not None]
        if len(self._params) != len(group["params"]):
            return None
        if isinstance(self.optimizer, torch.optim.Adam) and not group["amsgrad"]:
            steps = [state[p]["step"] for p in self._params]
            # From the state, not from 0: a resumed run flushes on the same steps.
            self._steps_taken = int(steps[0])
            self._merge_adam_state(steps)
            self._buffers = [
                [state[p]["exp_avg"] for p in self._params],
                [state[p]["exp_avg_sq"] for p in self._params],
                steps,
                # Adding a list of one-tensors skips the per-tensor scalar wrapping of add_(1).
                [torch.ones_like(step) for step in steps],
            ]
            if self._merged is None:
                self._moments = self._buffers[0] + self._buffers[1]
            return self._adam
        if isinstance(self.optimizer, torch.optim.SGD):
            buffers = [state[p].get("momentum_buffer") for p in self._params]
            self._buffers = [[b for b in buffers if b is not None]]
            return self._sgd
        return None

    def _merge_adam_state(self, steps: list[torch.Tensor]) -> None:
        """Prepare one kernel pass over the parameters that tile the start of one storage.

        Applies when the parameters and their gradients each live in one
        storage, laid out alike (:func:`reportgen.backprop.share_one_storage`):
        Adam's moments are then moved into two storages laid out the same way.
        The kernel runs its vectorised arithmetic on whole 64-byte units and its
        scalar arithmetic on a tensor's ragged end, which may round differently;
        so only tensors made of whole units are merged, and the rest keep their own
        entries, for every element to get the very arithmetic it gets per tensor.
        """
        params = self._params
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        flat_params, flat_grads = _one_storage(params), _one_storage(grads)
        if (
            flat_params is None
            or flat_grads is None
            or flat_params.shape != flat_grads.shape
            or [p.storage_offset() for p in params] != [g.storage_offset() for g in grads]
            or len({float(step) for step in steps}) != 1
        ):
            return
        unit = KERNEL_UNIT_BYTES // flat_params.element_size()
        end, whole = 0, []
        for i in sorted(range(len(params)), key=lambda i: params[i].storage_offset()):
            if params[i].storage_offset() != end or params[i].numel() % unit:
                break
            whole.append(i)
            end += params[i].numel()
        if len(whole) < 2:
            return
        state = self.optimizer.state
        flat_moments = []
        for key in ("exp_avg", "exp_avg_sq"):
            flat = torch.zeros_like(flat_params)
            for p in params:
                view = flat[p.storage_offset() : p.storage_offset() + p.numel()].view_as(p)
                state[p][key] = view.copy_(state[p][key])
            flat_moments.append(flat)
        rest = [i for i in range(len(params)) if i not in whole]

        def span_and_rest(flat: torch.Tensor, per_param: list[torch.Tensor]) -> list[torch.Tensor]:
            return [flat[:end], *(per_param[i] for i in rest)]

        self._merged = _AdamLists(
            params=span_and_rest(flat_params, params),
            grads=span_and_rest(flat_grads, grads),
            exp_avgs=span_and_rest(flat_moments[0], [state[p]["exp_avg"] for p in params]),
            exp_avg_sqs=span_and_rest(flat_moments[1], [state[p]["exp_avg_sq"] for p in params]),
            steps=[steps[whole[0]], *(steps[i] for i in rest)],
        )
        self._merged_grads = grads
        self._moments = flat_moments

    def _adam(self, group: dict[str, Any], grads: list[torch.Tensor]) -> None:
        exp_avgs, exp_avg_sqs, steps, ones = self._buffers
        torch._foreach_add_(steps, ones)
        kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
        beta1, beta2 = group["betas"]
        if self._merged is not None and all(map(operator.is_, grads, self._merged_grads)):
            lists = self._merged
        else:  # no shared storage, or gradients replaced since: tensor by tensor
            lists = _AdamLists(self._params, grads, exp_avgs, exp_avg_sqs, steps)
        kernel(
            lists.params, lists.grads, lists.exp_avgs, lists.exp_avg_sqs, [], lists.steps,
            amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            grad_scale=None, found_inf=None,
        )  # fmt: skip
        self._steps_taken += 1
        if self._steps_taken % DENORMAL_FLUSH_STEPS == 0:
            for moment in self._moments:
                moment.masked_fill_(moment.abs() < SMALLEST_NORMAL, 0.0)

    def _sgd(self, group: dict[str, Any], grads: list[torch.Tensor]) -> None:
        (momentum_buffers,) = self._buffers
        torch._fused_sgd_(
            self._params, grads, momentum_buffers, weight_decay=group["weight_decay"],
            momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
            nesterov=group["nesterov"], maximize=group["maximize"], is_first_step=False,
            grad_scale=None, found_inf=None,
        )  # fmt: skip


def _one_storage(tensors: list[torch.Tensor]) -> torch.Tensor | None:
    """Return the one storage all of ``tensors`` are contiguous views of, as a flat tensor."""
    storage = tensors[0].untyped_storage()
    first = tensors[0]
    for t in tensors:
        same = t.untyped_storage().data_ptr() == storage.data_ptr()
        if not same or not t.is_contiguous() or (t.dtype, t.device) != (first.dtype, first.device):
            return None
    size = storage.nbytes() // first.element_size()
    return torch.empty(0, dtype=first.dtype, device=first.device).set_(storage, 0, (size,), (1,))
