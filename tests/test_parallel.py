from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from reportgen.config.loading import load_config
from reportgen.config.schema import Config
from reportgen.train.loop import EpochRecord
from reportgen.train.parallel import ModelJob, Trained, train_all, train_one

from .conftest import QuickMnist, load_mnist, make_quick_run


def _jobs(root: Path, work: Path, config: Config) -> list[ModelJob]:
    dataset = load_mnist(root, seed=config.seed, val_size=100)
    return [
        ModelJob(
            name,
            spec,
            config.seed,
            config.train,
            batch_size=32,
            train=dataset.train,
            val=dataset.val,
            checkpoint=work / f"{name}.ckpt",
            threads=1,
            input_shape=(1, 28, 28),
            num_classes=10,
        )
        for name, spec in config.model_items()
    ]


@pytest.fixture
def config() -> Config:
    # The regularized model's dropout draws from torch's global RNG: spelled out here.
    return load_config(None, ["train.epochs=2", "models.baseline.hidden=[32]",
                              "models.regularized.hidden=[32, 16]",
                              "models.regularized.dropout=0.3",
                              "models.regularized.batchnorm=true"])  # fmt: skip


def _train(jobs: list[ModelJob], *, side_by_side: bool) -> tuple[list[Trained], list[str]]:
    seen: list[str] = []

    def on_epoch(name: str, record: EpochRecord) -> None:
        seen.append(f"{name} {record.epoch}")

    trained = train_all(jobs, side_by_side=side_by_side, on_epoch=on_epoch,
                        on_step=lambda name, done, total: None)  # fmt: skip
    return trained, seen


def test_side_by_side_gives_the_models_of_one_after_another(
    fake_mnist: Path, tmp_path: Path, config: Config
) -> None:
    apart, seen_apart = _train(_jobs(fake_mnist, tmp_path / "a", config), side_by_side=True)
    along, seen_along = _train(_jobs(fake_mnist, tmp_path / "b", config), side_by_side=False)
    assert [t.name for t in apart] == [t.name for t in along] == ["baseline", "regularized"]
    assert (
        sorted(seen_apart)
        == seen_along
        == ["baseline 1", "baseline 2", "regularized 1", "regularized 2"]
    )
    for a, b in zip(apart, along, strict=True):
        assert a.result == b.result
        state_a, state_b = a.model.state_dict(), b.model.state_dict()
        assert state_a.keys() == state_b.keys()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), a.name
        assert (tmp_path / "a" / f"{a.name}.ckpt").read_bytes() == (
            tmp_path / "b" / f"{a.name}.ckpt"
        ).read_bytes()


def test_a_workers_error_is_raised_in_the_run(
    fake_mnist: Path, tmp_path: Path, config: Config
) -> None:
    jobs = _jobs(fake_mnist, tmp_path, config)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = ModelJob(**{**vars(jobs[0]), "checkpoint": blocker / "baseline.ckpt"})
    with pytest.raises(OSError, match="not-a-directory"):
        _train([broken, jobs[1]], side_by_side=True)


def test_a_resumed_job_continues_to_the_same_model(
    fake_mnist: Path, tmp_path: Path, config: Config
) -> None:
    whole = train_one(_jobs(fake_mnist, tmp_path / "whole", config)[0],
                      on_epoch=lambda *_: None, on_step=lambda *_: None)  # fmt: skip
    short = load_config(None, ["train.epochs=1", "models.baseline.hidden=[32]"])
    first = _jobs(fake_mnist, tmp_path / "resumed", short)[0]
    train_one(first, on_epoch=lambda *_: None, on_step=lambda *_: None)
    # The rest of the epochs, in a worker, from the one-epoch checkpoint.
    rest = ModelJob(**{**vars(first), "train_cfg": config.train})
    resumed, _ = _train([rest, _jobs(fake_mnist, tmp_path / "other", config)[1]],
                        side_by_side=True)  # fmt: skip
    assert resumed[0].result.history == whole.result.history
    state = whole.model.state_dict()
    assert all(torch.equal(resumed[0].model.state_dict()[k], state[k]) for k in state)


def test_runs_with_one_and_two_threads_train_the_same_models(
    quick_mnist: QuickMnist, quick_run: Path, tmp_path: Path
) -> None:
    # Two threads: the models train side by side, one thread each; one: one after another.
    one = make_quick_run(quick_mnist, tmp_path / "one", "runtime.threads=1")
    for name in ("models/baseline.pt", "models/regularized.pt", "history.csv"):
        assert (one / name).read_bytes() == (quick_run / name).read_bytes(), name


def test_a_result_arriving_mid_training_leaves_the_models_alone(
    fake_mnist: Path, tmp_path: Path, config: Config
) -> None:
    # The worker's result is taken in while this process is still training: the
    # regularized model's dropout must draw the very masks it draws when trained alone.
    jobs = _jobs(fake_mnist, tmp_path / "apart", config)
    last_checkpoint = jobs[0].checkpoint
    waited: list[bool] = []

    def on_step(name: str, done: int, total: int) -> None:
        if name == "regularized" and done > 0 and not waited:
            deadline = time.monotonic() + 120
            while not last_checkpoint.is_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2)  # the result follows the last checkpoint
            waited.append(True)

    apart = train_all(jobs, side_by_side=True, on_epoch=lambda *_: None, on_step=on_step)
    along, _ = _train(_jobs(fake_mnist, tmp_path / "along", config), side_by_side=False)
    assert waited
    for a, b in zip(apart, along, strict=True):
        assert a.result == b.result, a.name
        state = b.model.state_dict()
        assert all(torch.equal(a.model.state_dict()[k], state[k]) for k in state), a.name
