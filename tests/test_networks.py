from __future__ import annotations

import pytest
import torch
from torch import nn

from reportgen.evaluate.layers import first_with_parameters, image_layer_weights
from reportgen.train.networks import CNN, MLP, build, parameter_count

MNIST = {"input_shape": (1, 28, 28), "num_classes": 10}


def test_baseline_shape_and_parameters() -> None:
    model = MLP([256, 128], **MNIST)
    # 784·256+256 + 256·128+128 + 128·10+10
    assert parameter_count(model) == 235_146
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert not any(isinstance(m, nn.Dropout | nn.BatchNorm1d) for m in model.modules())


def test_regularized_block_order() -> None:
    model = MLP([256, 128], dropout=0.3, batchnorm=True, **MNIST)
    block = [type(m) for m in model.hidden[0]]
    assert block == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout]
    assert model.hidden[1][3].p == 0.3


def test_first_activations_are_pre_and_post_relu() -> None:
    torch.manual_seed(0)
    model = MLP([16, 8], batchnorm=True, **MNIST).eval()
    pre, post = model.first_activations(torch.randn(2, 1, 28, 28))
    assert pre.shape == post.shape == (2, 16)
    assert torch.equal(post, pre.clamp(min=0))
    first = first_with_parameters(model)
    assert first is not None and first[0] == "hidden.0.0"
    assert first[1].weight.shape == (16, 784)


def test_cnn() -> None:
    model = CNN([32], dropout=0.2, batchnorm=True, **MNIST).eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    pre, _ = model.first_activations(torch.zeros(1, 1, 28, 28))
    assert pre.shape == (1, 16, 28, 28)
    first = first_with_parameters(model)
    assert first is not None and first[0] == "features.0.0"
    assert first[1].weight.shape == (16, 1, 3, 3)


def test_cnn_runs_channels_last_with_the_weights_and_outputs_of_the_standard_layout() -> None:
    torch.manual_seed(0)
    model = CNN([32], **MNIST).eval()
    torch.manual_seed(0)
    standard = CNN([32], **MNIST).to(memory_format=torch.contiguous_format).eval()
    conv = model.features[1][0].weight  # [32, 16, 3, 3]: the layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    # Initialised before the layout changes: the same values from the same seed.
    ours, theirs = model.state_dict(), standard.state_dict()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    images = torch.rand(64, 1, 28, 28)
    with torch.inference_mode():
        fast, slow = model(images), standard(images)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)  # other kernels, last bits only


def test_build_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'rnn'; allowed: mlp, cnn"):
        build("rnn", [8], dropout=0, batchnorm=False, **MNIST)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 20, 12), (3, 7, 9)])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_built_in_networks_take_their_shape_from_the_data(
    kind: str, shape: tuple[int, int, int]
) -> None:
    model = build(kind, [16], dropout=0, batchnorm=False, input_shape=shape, num_classes=23)
    assert model(torch.zeros(4, *shape)).shape == (4, 23)
    found = image_layer_weights(model, shape)
    assert found is not None
    name, weights, unit = found
    expected = ("hidden.0.0", "Neuron") if kind == "mlp" else ("features.0.0", "Kernel")
    assert (name, unit) == expected
    # An RGB 32×32 image gets a 3072-input MLP, or a CNN with 3 input channels.
    assert weights.shape[1] == (shape[0] * shape[1] * shape[2] if kind == "mlp" else shape[0])
