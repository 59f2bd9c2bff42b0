"""The MLP's forward and backward pass written out by hand, without autograd.

At batch 64 on a CPU, autograd's per-operation bookkeeping (recording the
graph, then walking it back) costs about as much as the MLP's arithmetic.
The backward passes below call the very kernels autograd would call, with
the same operand order (``grad.t() @ x`` for a weight, ``threshold_backward``
for ReLU, ``native_batch_norm_backward``, ``_log_softmax_backward_data``),
so the gradients, and therefore the trained weights, are bit-for-bit
autograd's.  Networks with any other layer (the CNN) keep using autograd.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from reportgen.models import MLP

aten = torch.ops.aten

# nll_loss's reduction codes, as in torch.nn._reduction.
MEAN_REDUCTION = 1
IGNORE_INDEX = -100


class _Layer(Protocol):
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def backward(self, grad: torch.Tensor) -> torch.Tensor | None:
        """Write parameter gradients into their ``.grad``; return the input's gradient."""


# Each parameter's slot in the shared storage starts on a cache line, as a
# tensor of its own would, so the matrix kernels see the same alignment.
SLOT_ALIGN_BYTES = 64


def share_one_storage(params: list[nn.Parameter]) -> None:
    """Move ``params`` into one flat storage, and their gradients into another laid out alike.

    The optimizer can then update many parameters in one pass over one
    buffer (see :class:`reportgen.optim.FusedStep`) instead of one pass per
    tensor.  Parameters whose size is a whole number of slots come first,
    back to back, so they form one gap-free span.  Values are copied exactly;
    the padding after the others stays zero.
    """
    if not params or len({(p.dtype, p.device) for p in params}) != 1:
        return
    align = SLOT_ALIGN_BYTES // params[0].element_size()
    ordered = sorted(params, key=lambda p: p.numel() % align != 0)  # stable: whole slots first
    offsets, total = [], 0
    for p in ordered:
        offsets.append(total)
        total += -(-p.numel() // align) * align
    values = torch.zeros(total, dtype=params[0].dtype, device=params[0].device)
    grads = torch.zeros_like(values)
    for p, offset in zip(ordered, offsets, strict=True):
        p.data = values[offset : offset + p.numel()].view_as(p).copy_(p.detach())
        p.grad = grads[offset : offset + p.numel()].view_as(p)


def _grad_buffer(param: torch.Tensor) -> torch.Tensor:
    """Return ``param.grad``, created once (if not shared) so backward passes can write into it."""
    if param.grad is None or param.grad.shape != param.shape or not param.grad.is_contiguous():
        param.grad = torch.zeros_like(param, memory_format=torch.contiguous_format)
    return param.grad


def _supported(module: nn.Module) -> bool:
    """Whether this module writes out ``module``'s backward pass (exact types: no subclasses)."""
    kind = type(module)
    if kind is nn.Linear:
        return module.bias is not None
    if kind is nn.BatchNorm1d:
        return bool(module.affine and module.track_running_stats and module.momentum is not None)
    return kind in (nn.ReLU, nn.Dropout)


class _Linear:
    """y = x Wᵀ + b, with an optional L1 penalty λ·Σ|W| added to W's gradient."""

    def __init__(self, layer: nn.Linear, *, input_grad: bool, l1: float) -> None:
        assert layer.bias is not None
        self.weight, self.bias = layer.weight.detach(), layer.bias.detach()
        self.weight_t = self.weight.t()  # a view: follows the optimizer's in-place updates
        self.weight_grad, self.bias_grad = _grad_buffer(layer.weight), _grad_buffer(layer.bias)
        self.input_grad, self.l1 = input_grad, l1
        self.x = torch.empty(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.x = x
        return torch.addmm(self.bias, x, self.weight_t)

    def backward(self, grad: torch.Tensor) -> torch.Tensor | None:
        torch.mm(grad.t(), self.x, out=self.weight_grad)
        torch.sum(grad, 0, out=self.bias_grad)
        if self.l1 > 0:
            # d(λ|w|)/dw = λ·sgn(w), added to the loss's gradient as autograd adds them.
            self.weight_grad.add_(torch.sgn(self.weight), alpha=self.l1)
        return grad.mm(self.weight) if self.input_grad else None


class _ReLU:
    """ReLU in place: no layer here needs its own output for its backward pass."""

    def __init__(self) -> None:
        self.y = torch.empty(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.y = torch.relu_(x)
        return self.y

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return aten.threshold_backward(grad, self.y, 0)


class _Dropout:
    """Inverted dropout drawing its mask from torch's global RNG, as ``F.dropout`` does on CPU."""

    def __init__(self, p: float) -> None:
        self.keep = 1 - p
        self.scaled_mask = torch.empty(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scaled_mask = torch.empty_like(x).bernoulli_(self.keep).div_(self.keep)
        return x * self.scaled_mask

    def backward(self, grad: torch.Tensor) -> torch.Tensor:
        return grad * self.scaled_mask


class _BatchNorm:
    """Training-mode batch normalisation, updating the running statistics as the module does."""

    def __init__(self, layer: nn.BatchNorm1d, *, input_grad: bool) -> None:
        assert layer.weight is not None and layer.bias is not None
        assert layer.momentum is not None and layer.num_batches_tracked is not None
        self.layer = layer
        self.weight, self.bias = layer.weight.detach(), layer.bias.detach()
        self.weight_grad, self.bias_grad = _grad_buffer(layer.weight), _grad_buffer(layer.bias)
        self.input_grad = input_grad
        self.saved: tuple[torch.Tensor, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        y, mean, invstd = aten.native_batch_norm(
            x, self.weight, self.bias, layer.running_mean, layer.running_var, True,
            layer.momentum, layer.eps,
        )  # fmt: skip
        layer.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        self.saved = x, mean, invstd
        return y

    def backward(self, grad: torch.Tensor) -> torch.Tensor | None:
        x, mean, invstd = self.saved
        layer = self.layer
        grad_x, grad_weight, grad_bias = aten.native_batch_norm_backward(
            grad, x, self.weight, layer.running_mean, layer.running_var, mean, invstd, True,
            layer.eps, [self.input_grad, True, True],
        )  # fmt: skip
        self.weight_grad.copy_(grad_weight)
        self.bias_grad.copy_(grad_bias)
        return grad_x if self.input_grad else None


class MLPBackprop:
    """One training step of an :class:`~reportgen.models.MLP`: loss, logits, gradients.

    Build it with :meth:`build`, which returns None for networks it cannot
    differentiate; then each call leaves the gradient of
    ``cross_entropy + l1 · Σ|W|`` in every parameter's ``.grad``.
    """

    def __init__(self, layers: list[_Layer], *, device: torch.device) -> None:
        self.layers = layers
        self.one = torch.ones((), device=device)  # d loss / d loss

    @classmethod
    def build(cls, model: nn.Module, *, l1: float = 0.0) -> MLPBackprop | None:
        """Return a step for ``model``, or None if it holds a layer this module does not know.

        The model's parameters are moved into one storage (:func:`share_one_storage`)
        before the step takes views of them; their values do not change.
        """
        if type(model) is not MLP:
            return None
        modules = [m for block in model.hidden for m in block.children()] + [model.head]
        if not all(_supported(module) for module in modules):
            return None
        share_one_storage(list(model.parameters()))
        layers: list[_Layer] = []
        for index, module in enumerate(modules):
            input_grad = index > 0  # the images need no gradient
            if isinstance(module, nn.Linear):
                layers.append(_Linear(module, input_grad=input_grad, l1=l1))
            elif isinstance(module, nn.ReLU):
                layers.append(_ReLU())
            elif isinstance(module, nn.Dropout):
                layers.append(_Dropout(module.p))
            else:
                assert isinstance(module, nn.BatchNorm1d)
                layers.append(_BatchNorm(module, input_grad=input_grad))
        return cls(layers, device=model.head.weight.device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return mean cross-entropy of ``x`` [B, 784] against ``y`` [B], and logits [B, 10]."""
        h = x
        for layer in self.layers:
            h = layer.forward(h)
        logits = h
        log_probs = torch.log_softmax(logits, 1)
        loss, total_weight = aten.nll_loss_forward(log_probs, y, None, MEAN_REDUCTION, IGNORE_INDEX)
        grad = aten.nll_loss_backward(
            self.one, log_probs, y, None, MEAN_REDUCTION, IGNORE_INDEX, total_weight
        )
        grad = aten._log_softmax_backward_data(grad, log_probs, 1, logits.dtype)
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return loss, logits
