from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from reportgen.config.loading import load_config
from reportgen.config.schema import Config
from reportgen.core.seeding import derive_seed, generator, seed_everything
from reportgen.train.loop import batch_sizes, l1_penalty, train_model
from reportgen.train.networks import build

from .conftest import load_mnist

MNIST = {"input_shape": (1, 28, 28), "num_classes": 10}


def _train(root: Path, config: Config, name: str) -> tuple[dict[str, torch.Tensor], list]:
    dataset = load_mnist(root, seed=config.seed, val_size=100)
    spec = config.models[name]
    seed_everything(derive_seed(config.seed, "init"), threads=1)
    model = build(spec.kind, spec.hidden, dropout=spec.dropout, batchnorm=spec.batchnorm, **MNIST)
    shuffle = generator(derive_seed(config.seed, "shuffle"))
    result = train_model(
        model, dataset.train, dataset.val,
        train_cfg=config.train, spec=spec, batch_size=32, shuffle=shuffle,
    )  # fmt: skip
    return model.state_dict(), result.history


# The regularized model's settings, spelled out (with a faster step schedule).
REGULARIZED = ["models.regularized.dropout=0.3", "models.regularized.batchnorm=true",
               "models.regularized.weight_decay=0.0001", "models.regularized.scheduler=step",
               "models.regularized.step_size=1"]  # fmt: skip


@pytest.fixture
def small_config() -> Config:
    return load_config(None, ["train.epochs=3", "models.baseline.hidden=[32, 16]",
                              "models.regularized.hidden=[32, 16]", *REGULARIZED])  # fmt: skip


def test_training_learns_and_records_history(fake_mnist: Path, small_config: Config) -> None:
    _, history = _train(fake_mnist, small_config, "baseline")
    assert [r.epoch for r in history] == [1, 2, 3]
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_accuracy > 0.5  # 10 classes: chance is 0.1
    assert all(r.lr == 1e-3 for r in history)


@pytest.mark.parametrize(
    ("optimizer", "kind"), [("adam", "mlp"), ("sgd", "mlp"), ("adamw", "mlp"), ("adam", "cnn")]
)
def test_training_is_deterministic(fake_mnist: Path, optimizer: str, kind: str) -> None:
    config = load_config(None, ["train.epochs=2", f"train.optimizer={optimizer}",
                                f"models.regularized.kind={kind}",
                                "models.regularized.hidden=[32, 16]", *REGULARIZED])  # fmt: skip
    state_a, history_a = _train(fake_mnist, config, "regularized")
    state_b, history_b = _train(fake_mnist, config, "regularized")
    assert history_a == history_b
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_models_do_not_depend_on_training_order(fake_mnist: Path, small_config: Config) -> None:
    alone, _ = _train(fake_mnist, small_config, "baseline")
    _train(fake_mnist, small_config, "regularized")  # disturbs every global RNG
    after, _ = _train(fake_mnist, small_config, "baseline")
    assert all(torch.equal(alone[k], after[k]) for k in alone)


def test_different_seeds_differ(fake_mnist: Path, small_config: Config) -> None:
    a, _ = _train(fake_mnist, small_config, "baseline")
    b, _ = _train(fake_mnist, small_config.model_copy(update={"seed": 1}), "baseline")
    assert not torch.equal(a["head.weight"], b["head.weight"])


@pytest.mark.parametrize("scheduler", ["plateau", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_and_scheduler_trains(
    fake_mnist: Path, optimizer: str, scheduler: str
) -> None:
    overrides = [
        "train.epochs=2",
        f"train.optimizer={optimizer}",
        "models.baseline.hidden=[16]",
        f"models.baseline.scheduler={scheduler}",
        "models.baseline.l1=0.0001",
    ]
    config = load_config(None, overrides)
    _, history = _train(fake_mnist, config, "baseline")
    assert len(history) == 2 and all(r.train_loss == r.train_loss for r in history)


def test_l1_penalty_sums_weights_not_biases() -> None:
    model = build("mlp", [2], dropout=0, batchnorm=False, **MNIST)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(-0.5)
    expected = 0.5 * (784 * 2 + 2 * 10)
    assert float(l1_penalty(model).detach()) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(65, [32, 33]), (64, [32, 32]), (66, [32, 32, 2]), (33, [33]), (1, [1]), (5, [5]),
     (3009, [64] * 46 + [65])],
)  # fmt: skip
def test_a_last_batch_of_one_joins_the_batch_before_it(n: int, expected: list[int]) -> None:
    batch = 64 if n == 3009 else 32
    assert batch_sizes(n, batch) == expected
    assert sum(expected) == n


def test_batchnorm_trains_when_the_last_batch_would_hold_one_image(fake_mnist: Path) -> None:
    config = load_config(None, ["train.epochs=1", *REGULARIZED,
                                "models.regularized.hidden=[16]",
                                "models.regularized.scheduler=onecycle"])  # fmt: skip
    dataset = load_mnist(fake_mnist, seed=0, val_size=100, limit_train=65)
    seed_everything(0, threads=1)
    model = build("mlp", [16], dropout=0.3, batchnorm=True, **MNIST)
    steps: list[tuple[int, int]] = []
    result = train_model(
        model, dataset.train, dataset.val, train_cfg=config.train,
        spec=config.models["regularized"], batch_size=32, shuffle=generator(0),
        on_step=lambda done, total: steps.append((done, total)),
    )  # fmt: skip
    assert result.divergence is None and len(result.history) == 1
    # 65 images: batches of 32 and 33, and one-cycle's steps agree
    assert steps == [(0, 2), (1, 2), (2, 2)]


@pytest.mark.parametrize(
    ("tick", "expected"), [(0.0, [0, 1, 12]), (0.3, [0, 1, 3, 5, 7, 9, 11, 12])]
)
def test_progress_comes_from_the_first_step_then_every_half_second(
    fake_mnist: Path, monkeypatch: pytest.MonkeyPatch, tick: float, expected: list[int]
) -> None:
    from reportgen.train import loop

    clock = iter(range(10_000))  # each reading of the clock is ``tick`` seconds after the last
    monkeypatch.setattr(loop, "time", SimpleNamespace(monotonic=lambda: next(clock) * tick))
    config = load_config(None, ["train.epochs=1", "models.baseline.hidden=[8]"])
    dataset = load_mnist(fake_mnist, seed=0, val_size=100, limit_train=96)
    model = build("mlp", [8], dropout=0, batchnorm=False, **MNIST)
    steps: list[tuple[int, int]] = []
    train_model(
        model, dataset.train, dataset.val, train_cfg=config.train, spec=config.models["baseline"],
        batch_size=8, shuffle=generator(0), on_step=lambda done, total: steps.append((done, total)),
    )  # fmt: skip
    assert steps == [(done, 12) for done in expected]


def test_divergence_stops_training(fake_mnist: Path) -> None:
    config = load_config(None, ["train.epochs=3", "train.optimizer=sgd", "train.lr=10",
                                "train.momentum=0.99", "models.baseline.hidden=[64]"])  # fmt: skip
    dataset = load_mnist(fake_mnist, seed=0, val_size=100)
    seed_everything(0, threads=1)
    model = build("mlp", [64], dropout=0, batchnorm=False, **MNIST)
    with torch.no_grad():
        model.head.weight.mul_(1e4)
    result = train_model(
        model, dataset.train, dataset.val,
        train_cfg=config.train, spec=config.models["baseline"], batch_size=8, shuffle=generator(0),
    )  # fmt: skip
    assert result.divergence is not None
    assert result.divergence.epoch == len(result.history) + 1
    # The model is left as it was at the end of its last finite epoch.
    assert all(torch.isfinite(p).all() for p in model.parameters())
