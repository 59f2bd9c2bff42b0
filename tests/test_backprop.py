from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reportgen.train
from reportgen.backprop import SLOT_ALIGN_BYTES, MLPBackprop
from reportgen.config import load_config
from reportgen.data import load_dataset
from reportgen.models import MLP, build
from reportgen.seeding import generator, seed_everything
from reportgen.train import l1_penalty, train_model


def _autograd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, l1: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    objective = loss + l1 * l1_penalty(model) if l1 > 0 else loss
    objective.backward()
    return loss.detach(), logits.detach()


@pytest.mark.parametrize(
    ("hidden", "dropout", "batchnorm", "l1"),
    [
        ([256, 128], 0.0, False, 0.0),
        ([256, 128], 0.3, True, 0.0),
        ([64], 0.5, False, 1e-4),
        ([32, 16, 8], 0.0, True, 1e-3),
        ([], 0.0, False, 0.0),
    ],
)
def test_gradients_are_autograds_to_the_bit(
    hidden: list[int], dropout: float, batchnorm: bool, l1: float
) -> None:
    torch.manual_seed(0)
    reference = build("mlp", hidden, dropout=dropout, batchnorm=batchnorm)
    by_hand = copy.deepcopy(reference)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    step = MLPBackprop.build(by_hand, l1=l1)
    assert step is not None
    for _ in range(2):  # the second call reuses the gradient buffers
        torch.manual_seed(1)
        expected_loss, expected_logits = _autograd(reference, x, y, l1)
        torch.manual_seed(1)
        loss, logits = step(x, y)
        assert torch.equal(loss, expected_loss) and torch.equal(logits, expected_logits)
        for (name, p), q in zip(reference.named_parameters(), by_hand.parameters(), strict=True):
            assert q.grad is not None and torch.equal(p.grad, q.grad), name  # type: ignore[arg-type]
        for (name, a), b in zip(reference.named_buffers(), by_hand.buffers(), strict=True):
            assert torch.equal(a, b), name  # BatchNorm running statistics
        reference.zero_grad(set_to_none=True)
    # Dropout drew its masks from the global RNG exactly as nn.Dropout does.
    assert dropout == 0 or not torch.equal(logits, reference.eval()(x))


def test_masks_come_from_the_global_rng() -> None:
    model = build("mlp", [32], dropout=0.5, batchnorm=False)
    step = MLPBackprop.build(model)
    assert step is not None
    x, y = torch.randn(8, 784), torch.randint(0, 10, (8,))
    torch.manual_seed(3)
    first, _ = step(x, y)
    torch.manual_seed(3)
    again, _ = step(x, y)
    second, _ = step(x, y)
    assert torch.equal(first, again) and not torch.equal(first, second)


class _Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def test_unknown_networks_are_left_to_autograd() -> None:
    assert MLPBackprop.build(build("cnn", [16], dropout=0, batchnorm=False)) is None
    mlp = MLP([16])
    mlp.hidden[0][1] = _Swish()  # type: ignore[index]
    assert MLPBackprop.build(mlp) is None
    no_bias = MLP([16])
    no_bias.head = nn.Linear(16, 10, bias=False)
    assert MLPBackprop.build(no_bias) is None


class _PlainStep:
    """The optimizer's own step(), for comparison with FusedStep."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def __call__(self) -> None:
        self.optimizer.step()


@pytest.mark.parametrize(
    "overrides",
    [
        ["models.regularized.l1=0.0001"],
        ["train.optimizer=sgd", "models.regularized.scheduler=onecycle"],
        ["train.optimizer=adamw", "models.regularized.scheduler=onecycle"],
    ],
)
def test_training_matches_the_autograd_path(
    fake_mnist: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str]
) -> None:
    config = load_config(None, ["train.epochs=2", "models.regularized.hidden=[32, 16]", *overrides])
    spec = config.models.regularized
    dataset = load_dataset(fake_mnist, seed=0, val_size=100)

    def train() -> tuple[dict[str, torch.Tensor], list[reportgen.train.EpochRecord]]:
        seed_everything(0, threads=1)
        model = build("mlp", spec.hidden, dropout=spec.dropout, batchnorm=spec.batchnorm)
        result = train_model(
            model, dataset.train, dataset.val,
            train_cfg=config.train, spec=spec, batch_size=32, shuffle=generator(0),
        )  # fmt: skip
        return model.state_dict(), result.history

    fast_state, fast_history = train()
    monkeypatch.setattr(MLPBackprop, "build", classmethod(lambda cls, model, l1=0.0: None))
    monkeypatch.setattr(reportgen.train, "FusedStep", _PlainStep)
    slow_state, slow_history = train()
    assert fast_history == slow_history
    for key in fast_state:
        assert torch.equal(fast_state[key], slow_state[key]), key


def test_parameters_move_into_one_storage_with_their_values() -> None:
    torch.manual_seed(0)
    model = build("mlp", [24, 16], dropout=0.0, batchnorm=True)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert MLPBackprop.build(model) is not None
    params = list(model.parameters())
    storage = params[0].untyped_storage()
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name
        assert p.untyped_storage().data_ptr() == storage.data_ptr()
        assert p.data_ptr() % SLOT_ALIGN_BYTES == 0  # as aligned as a tensor of its own
        assert p.grad is not None and p.grad.storage_offset() == p.storage_offset()
    # Sizes that fill whole slots come first, back to back: here W1, W2, b2, W3 and
    # the second batch norm's weight and bias; sizes 24 and 10 are ragged.
    by_offset = sorted(params, key=lambda p: p.storage_offset())
    whole = [p for p in by_offset if p.numel() % (SLOT_ALIGN_BYTES // 4) == 0]
    assert by_offset[: len(whole)] == whole
    assert [p.storage_offset() for p in whole] == [
        sum(q.numel() for q in whole[:i]) for i in range(len(whole))
    ]
    # The padding between slots is zero in values and gradients.
    values = torch.empty(0).set_(storage)
    grads = torch.empty(0).set_(params[0].grad.untyped_storage())  # type: ignore[union-attr]
    covered = torch.zeros(values.numel(), dtype=torch.bool)
    for p in params:
        covered[p.storage_offset() : p.storage_offset() + p.numel()] = True
    assert not covered.all() and len(grads) == len(values)
    assert torch.all(values[~covered] == 0) and torch.all(grads[~covered] == 0)
