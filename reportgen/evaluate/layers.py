"""What the weights and activations figures show of a network, and when they cannot apply.

The built-in MLP and CNN show their first hidden layer (before and after
ReLU) and its weights.  Any other network, or any network with
``report.layer`` set, is read through its modules: the first layer with
parameters, when its weights map onto the image, and the output of that
layer (or of ``report.layer``) for one test image.  What cannot be drawn
becomes one sentence in the report instead of a failed run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from reportgen.core.errors import ConfigError
from reportgen.train.networks import CNN, MLP


@dataclass(frozen=True)
class LayerViews:
    """The data of one model's weights and activations figures."""

    weights: np.ndarray | None  # first-layer weights, None when they do not map onto the image
    unit: str  # "Neuron" or "Kernel"
    activations: tuple[np.ndarray, ...] | None  # (pre, post), (maps,) or (output,)
    variant: dict[str, str]  # figure kind → network variant ("mlp", "cnn" or "python")
    layers: dict[str, str] = field(default_factory=dict)  # figure kind → module name
    notes: dict[str, str] = field(default_factory=dict)  # figure kind → sentence instead


def _first_layer(model: nn.Module) -> str:
    first = first_with_parameters(model)
    if first is None:
        return "none: the network has no parameters"
    name, module = first
    return f"{name or 'the model itself'} ({type(module).__name__})"


def layer_views(
    model: nn.Module,
    kind: str,
    x: torch.Tensor,
    *,
    image_shape: tuple[int, int, int],
    layer: str | None,
    name: str,
) -> LayerViews:
    """Return what ``model``'s weights and activations figures show for the input ``x``.

    ``kind`` is the model's ``kind``; ``x`` is one normalised test image as a
    batch of one, ``[1, C, H, W]``; ``name`` is the model's name, for the sentences.

    Raises
    ------
    ConfigError
        ``layer`` names no module of the network.
    """
    layers: dict[str, str] = {}
    notes: dict[str, str] = {}
    variant = {"weights": kind, "activations": kind}
    found = image_layer_weights(model, image_shape)
    weights, unit = (found[1], found[2]) if found else (None, "Neuron")
    if kind not in ("mlp", "cnn"):  # a built-in network's first layer needs no naming
        if found is not None:
            layers["weights"] = found[0]
        else:
            notes["weights"] = (
                f"The weights figure does not apply to the {name} model: its first layer with "
                f"parameters, {_first_layer(model)}, is neither a linear layer over the "
                "image's pixels nor a convolution over its channels."
            )
    activations: tuple[np.ndarray, ...] | None
    if kind in ("mlp", "cnn") and layer is None:
        pre, post = first_activations(model, x[0])
        activations = (post,) if kind == "cnn" else (pre, post)
    else:
        variant["activations"] = "python"
        output = layer_output(model, x, layer=layer)
        activations = None if output is None else (output[1],)
        if output is not None:
            layers["activations"] = output[0]
        else:
            which = f"module {layer!r}" if layer else "its first layer with parameters"
            notes["activations"] = (
                f"The activations figure does not apply to the {name} model: the output of "
                f"{which} is not one vector or one stack of maps per image."
            )
    return LayerViews(weights, unit, activations, variant, layers, notes)


def first_with_parameters(model: nn.Module) -> tuple[str, nn.Module] | None:
    """Return the first module, in ``named_modules()`` order, that holds parameters itself."""
    for name, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is not None:
            return name, module
    return None


def image_layer_weights(
    model: nn.Module, image_shape: tuple[int, int, int]
) -> tuple[str, np.ndarray, str] | None:
    """Return the first layer's name, weights and unit when they map onto the image, else None.

    The first layer is the first module with parameters, in ``named_modules()``
    order.  It maps onto a ``(C, H, W)`` image when it is an ``nn.Linear`` over
    the flattened image (``in_features == C*H*W``: one weight row per neuron,
    "Neuron") or an ``nn.Conv2d`` over its ``C`` channels without groups (one
    ``[C, k, k]`` kernel per output channel, "Kernel").  Any other first layer
    (an embedding, a normalisation, a linear layer on other features) gives
    None: the report then says the weights figure does not apply.
    """
    first = first_with_parameters(model)
    if first is None:
        return None
    name, module = first
    channels, height, width = image_shape
    if isinstance(module, nn.Linear) and module.in_features == channels * height * width:
        unit = "Neuron"
    elif isinstance(module, nn.Conv2d) and module.groups == 1 and module.in_channels == channels:
        unit = "Kernel"
    else:
        return None
    return name, module.weight.detach().float().cpu().numpy().copy(), unit


MAX_LAYER_NAMES = 5  # names an unknown report.layer's message suggests


@torch.inference_mode()
def layer_output(
    model: nn.Module, x: torch.Tensor, *, layer: str | None, key: str = "report.layer"
) -> tuple[str, np.ndarray] | None:
    """Return a module's name and its output ``[units]`` or ``[channels, h, w]`` for one input.

    ``x`` is a batch of one, shaped as the model takes it; the model runs in
    eval mode with a forward hook on the module named ``layer`` (a name from
    ``named_modules()``), or by default on the first module with parameters.
    The output loses its batch dimension.  None when there is no such module
    to default to, or the output is not one tensor of 1 or 3 dimensions per
    image (the caller says in a sentence that it cannot be drawn).

    Raises
    ------
    ConfigError
        ``layer`` names no module; the message lists the closest names.
    """
    if x.shape[0] != 1:
        raise ValueError(f"x must be a batch of one input; got shape {tuple(x.shape)}")
    modules = {name: module for name, module in model.named_modules() if name}
    if layer is None:
        first = first_with_parameters(model)
        if first is None:
            return None
        layer, module = first
    elif layer in modules:
        module = modules[layer]
    else:
        close = difflib.get_close_matches(layer, list(modules), n=MAX_LAYER_NAMES, cutoff=0.0)
        allowed = ", ".join(close) if close else "none (the model has no submodules)"
        raise ConfigError(f"{key}: the model has no module {layer!r}; modules: {allowed}")
    captured: list[object] = []

    def keep(_module: nn.Module, _args: object, output: object) -> None:
        if not captured:  # a module called twice: its first output is the one after the input
            # A copy: a later in-place op (ReLU(inplace=True)) would change the output itself.
            captured.append(output.clone() if isinstance(output, torch.Tensor) else output)

    model.eval()
    handle = module.register_forward_hook(keep)
    try:
        model(x)
    finally:
        handle.remove()
    output = captured[0] if captured else None
    if not isinstance(output, torch.Tensor) or output.ndim not in (2, 4) or output.shape[0] != 1:
        return None
    return layer, output[0].detach().float().cpu().numpy().copy()


@torch.inference_mode()
def first_activations(model: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Return the first hidden layer's values before and after ReLU for one image (eval mode).

    ``x`` is one normalized image ``[C, H, W]``; the result is ``[units]`` for
    an MLP and ``[channels, H, W]`` feature maps for a CNN.
    """
    if not isinstance(model, MLP | CNN):
        raise TypeError(
            f"expected an MLP or CNN of reportgen.train.networks; got {type(model).__name__}"
        )
    model.eval()
    pre, post = model.first_activations(x.unsqueeze(0))
    return pre[0].cpu().numpy().copy(), post[0].cpu().numpy().copy()
