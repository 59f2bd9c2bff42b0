"""What the weights and activations figures show of a network, and when they cannot apply.

The built-in MLP and CNN show their first hidden layer (before and after
ReLU) and its weights.  Any other network, or any network with
``report.layer`` set, is read through its modules: the first layer with
parameters, when its weights map onto the image, and the output of that
layer (or of ``report.layer``) for one test image.  What cannot be drawn
becomes one sentence in the report instead of a failed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from reportgen import evaluate


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
    first = evaluate.first_with_parameters(model)
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
    if kind in ("mlp", "cnn"):
        weights: np.ndarray | None = evaluate.first_layer_weights(model)
        unit = "Kernel" if kind == "cnn" else "Neuron"
    else:
        found = evaluate.image_layer_weights(model, image_shape)
        weights, unit = (found[1], found[2]) if found else (None, "Neuron")
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
        pre, post = evaluate.first_activations(model, x[0])
        activations = (post,) if kind == "cnn" else (pre, post)
    else:
        variant["activations"] = "python"
        output = evaluate.layer_output(model, x, layer=layer)
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
