"""How many images one evaluation batch may hold: a network's activations per image and a budget.

Evaluation pushes a split through a network in batches; a batch's memory is
its images' activations, which grow with the image (a CNN's feature maps at
128 px are about 20 times those at 28 px).  So the batch is sized from the
memory budget and what one image costs, measured once on the network itself,
not from the split.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def activation_bytes_per_image(model: nn.Module, batch: torch.Tensor) -> int:
    """Return the bytes of the activations one image produces in ``model``, in eval mode.

    Runs ``batch`` (``[B, C, H, W]`` inputs) through the network once and
    adds up the input and the output tensors of every module without
    children (the layers), divided by ``B`` and rounded up: every
    intermediate that could be alive at once, so an upper bound on what a
    feed-forward network holds during inference.  A network whose layers
    return no tensors (one whose forward is plain functions) counts its
    own output.  The network's mode is restored; its weights and buffers are
    not changed (eval mode updates no BatchNorm statistics).
    """
    sizes: list[int] = []

    def record(_module: nn.Module, _inputs: object, output: object) -> None:
        sizes.append(_tensor_bytes(output))

    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    handles = [leaf.register_forward_hook(record) for leaf in leaves]
    was_training = model.training
    try:
        model.eval()
        output = model(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    layers = sum(sizes) or _tensor_bytes(output)
    return math.ceil((_tensor_bytes(batch) + layers) / max(1, batch.shape[0]))


def _tensor_bytes(value: object) -> int:
    """Return the bytes of the tensors in ``value`` (a tensor, or a tuple, list or dict of them)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(_tensor_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    return 0


def eval_batch_size(*, configured: int, per_image_bytes: int, budget_bytes: int) -> int:
    """Return the images one evaluation batch holds: ``configured``, or fewer to fit the budget.

    ``min(configured, budget_bytes // per_image_bytes)``, at least 1 (the
    caller refuses a budget that cannot hold one image).
    """
    if per_image_bytes <= 0:
        return configured
    return max(1, min(configured, budget_bytes // per_image_bytes))
