"""The networks, nothing else: no I/O, no config parsing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from reportgen.config import IMAGE_SIDE, INPUT_SIZE, NUM_CLASSES


class MLP(nn.Module):
    """784 → hidden… → 10; each hidden block is Linear [→ BatchNorm1d] → ReLU [→ Dropout]."""

    def __init__(
        self, hidden: Sequence[int], *, dropout: float = 0.0, batchnorm: bool = False
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = INPUT_SIZE
        for size in hidden:
            layers: list[nn.Module] = [nn.Linear(width, size)]
            if batchnorm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            width = size
        self.hidden = nn.ModuleList(blocks)
        self.head = nn.Linear(width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 784] -> logits [B, 10]
        for block in self.hidden:
            x = block(x)
        return self.head(x)

    def first_layer(self) -> nn.Linear:
        """Return the input layer, whose weight rows are 28×28 templates."""
        layer = cast(nn.Sequential, self.hidden[0])[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def first_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the first hidden layer's pre-activation and post-ReLU values for ``x``."""
        block = cast(nn.Sequential, self.hidden[0])
        pre = x
        for layer in block:
            if isinstance(layer, nn.ReLU):
                return pre, layer(pre)
            pre = layer(pre)
        raise RuntimeError("first hidden block has no ReLU")


class CNN(nn.Module):
    """A small convnet: two 3×3 conv blocks with max-pooling, then an MLP head."""

    def __init__(
        self, hidden: Sequence[int], *, dropout: float = 0.0, batchnorm: bool = False
    ) -> None:
        super().__init__()
        channels = 16, 32

        def block(cin: int, cout: int) -> nn.Sequential:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1)]
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            return nn.Sequential(*layers)

        self.features = nn.Sequential(block(1, channels[0]), block(channels[0], channels[1]))
        head: list[nn.Module] = [nn.Flatten()]
        width = channels[1] * 7 * 7
        for size in hidden:
            head += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            width = size
        head.append(nn.Linear(width, NUM_CLASSES))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 784] -> logits [B, 10]
        x = x.view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        return self.classifier(self.features(x))

    def first_layer(self) -> nn.Conv2d:
        """Return the first convolution, whose kernels are drawn as images."""
        layer = cast(nn.Sequential, self.features[0])[0]
        assert isinstance(layer, nn.Conv2d)
        return layer

    def first_activations(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the first conv layer's feature maps before and after ReLU."""
        block = cast(nn.Sequential, self.features[0])
        pre = x.view(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        for layer in block:
            if isinstance(layer, nn.ReLU):
                return pre, layer(pre)
            pre = layer(pre)
        raise RuntimeError("first conv block has no ReLU")


def build(kind: str, hidden: Sequence[int], *, dropout: float, batchnorm: bool) -> nn.Module:
    """Return a freshly initialised network of ``kind`` ("mlp" or "cnn")."""
    if kind == "mlp":
        return MLP(hidden, dropout=dropout, batchnorm=batchnorm)
    if kind == "cnn":
        return CNN(hidden, dropout=dropout, batchnorm=batchnorm)
    raise ValueError(f"unknown model kind {kind!r}; allowed: mlp, cnn")


def parameter_count(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
