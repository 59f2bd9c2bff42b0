"""A run as a pipeline: config → data → train → evaluate → figures → render → publish.

Each stage takes the previous stage's plain outputs and writes its artifacts
into the partial run directory; :func:`run` times the stages and publishes
the directory only when everything is in it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from reportgen import evaluate, rundir
from reportgen.config import Config, ModelSection, to_toml
from reportgen.data import DataFiles, Dataset, ensure_mnist, load_dataset
from reportgen.environment import describe
from reportgen.errors import ConfigError, RunDirError
from reportgen.models import build, parameter_count
from reportgen.seeding import derive_seed, generator, seed_everything
from reportgen.train import EpochRecord, TrainResult, TrainState, train_model

DATASET_NAME = "MNIST (torchvision.datasets.MNIST, official IDX files)"


# --------------------------------------------------------------------------- progress events


@dataclass(frozen=True)
class Event:
    """Something a progress display may show; the pipeline itself never prints."""

    kind: str  # "stage", "stage_done", "epoch", "step", "info"
    stage: str = ""
    model: str = ""
    message: str = ""
    done: int = 0
    total: int = 0
    seconds: float = 0.0


Progress = Callable[[Event], None]


def _silent(event: Event) -> None:
    """Default progress sink: ignore every event."""


# --------------------------------------------------------------------------- stage outputs


@dataclass(frozen=True)
class ModelOutcome:
    """What training and evaluation produced for one model."""

    name: str
    spec: ModelSection
    history: list[EpochRecord]
    divergence: dict[str, Any] | None
    parameters: int
    proba: np.ndarray  # [N_test, 10] float32
    train_accuracy: float
    state_dict: dict[str, torch.Tensor]
    model: torch.nn.Module

    @property
    def predictions(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


@dataclass
class Run:
    """A published run: where it is and what it measured."""

    path: Path
    metrics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def diverged(self) -> list[str]:
        """Return the names of the models whose training diverged."""
        return [n for n, m in self.metrics["models"].items() if m.get("divergence")]


# --------------------------------------------------------------------------- stages


def resolve_device(requested: str) -> torch.device:
    """Return the torch device for ``runtime.device``; "cuda" without a GPU is a config error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: 'cuda' requested but no CUDA device is available")
    return torch.device(requested)


def stage_data(config: Config, progress: Progress) -> tuple[DataFiles, Dataset]:
    """Obtain and verify MNIST, then decode and split it into tensors."""
    files = ensure_mnist(
        config.data.root,
        download=config.data.download,
        progress=lambda message: progress(Event("info", stage="data", message=message)),
    )
    dataset = load_dataset(
        config.data.root,
        seed=config.seed,
        val_size=config.data.val_size,
        limit_train=config.data.limit_train,
        limit_test=config.data.limit_test,
    )
    return files, dataset


def _to_device(dataset: Dataset, device: torch.device) -> Dataset:
    if device.type == "cpu":
        return dataset
    move = lambda s: type(s)(s.x.to(device), s.y.to(device), s.index)  # noqa: E731
    return Dataset(move(dataset.train), move(dataset.val), move(dataset.test), dataset.test_images)


def _save_state(path: Path, payload: Any) -> None:
    # torch.save writes the file name into the archive; saving through a buffer
    # keeps the bytes independent of the (temporary) name.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    rundir.write_atomic(path, buffer.getvalue())


def _load_checkpoint(path: Path) -> TrainState | None:
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
        return TrainState(**payload)
    except Exception as e:
        raise RunDirError(f"checkpoint {path} is unreadable or tampered with: {e}") from e


def stage_train(
    config: Config,
    name: str,
    spec: ModelSection,
    dataset: Dataset,
    *,
    device: torch.device,
    work: Path,
    progress: Progress,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train one model from a fresh seed state, checkpointing after every epoch."""
    seed_everything(derive_seed(config.seed, "init"), threads=config.runtime.threads)
    model = build(spec.kind, spec.hidden, dropout=spec.dropout, batchnorm=spec.batchnorm)
    model.to(device)
    checkpoint = work / f"{name}.ckpt"
    resume = _load_checkpoint(checkpoint)

    def on_epoch(record: EpochRecord, state: TrainState) -> None:
        _save_state(checkpoint, vars(state))
        progress(Event("epoch", stage="train", model=name, done=record.epoch,
                       total=config.train.epochs, message=_epoch_line(record)))  # fmt: skip

    def on_step(done: int, total: int) -> None:
        progress(Event("step", stage="train", model=name, done=done, total=total))

    result = train_model(
        model,
        dataset.train,
        dataset.val,
        train_cfg=config.train,
        spec=spec,
        batch_size=config.data.batch_size,
        shuffle=generator(derive_seed(config.seed, "shuffle")),
        resume=resume,
        on_epoch=on_epoch,
        on_step=on_step,
    )
    return model, result


def _epoch_line(record: EpochRecord) -> str:
    return (
        f"epoch {record.epoch}: train loss {record.train_loss:.4f} acc {record.train_accuracy:.4f}"
        f" · val loss {record.val_loss:.4f} acc {record.val_accuracy:.4f} · lr {record.lr:.2e}"
    )


def stage_evaluate(
    config: Config,
    name: str,
    spec: ModelSection,
    model: torch.nn.Module,
    result: TrainResult,
    dataset: Dataset,
) -> ModelOutcome:
    """Predict the whole test set and measure the final train accuracy (eval mode)."""
    batch = config.train.eval_batch_size
    proba = evaluate.predict_proba(model, dataset.test.x, batch_size=batch)
    train_pred = evaluate.predict_proba(model, dataset.train.x, batch_size=batch).argmax(axis=1)
    train_accuracy = evaluate.accuracy(dataset.train.y.cpu().numpy(), train_pred)
    divergence = vars(result.divergence) if result.divergence else None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return ModelOutcome(
        name, spec, result.history, divergence, parameter_count(model), proba, train_accuracy,
        state, model,
    )  # fmt: skip


def model_metrics(outcome: ModelOutcome, y_test: np.ndarray, *, auto_pairs: int) -> dict[str, Any]:
    """Return every per-model number the report shows, under stable keys."""
    y_pred = outcome.predictions
    matrix = evaluate.confusion(y_test, y_pred)
    errors = evaluate.class_errors(matrix)
    final = outcome.history[-1] if outcome.history else None
    test_accuracy = evaluate.accuracy(y_test, y_pred)
    return {
        "parameters": outcome.parameters,
        "epochs": len(outcome.history),
        "train_accuracy": outcome.train_accuracy,
        "val_accuracy": final.val_accuracy if final else None,
        "test_accuracy": test_accuracy,
        "train_test_gap": outcome.train_accuracy - test_accuracy,
        "test_loss": evaluate.mean_log_loss(y_test, outcome.proba),
        "classification_report": evaluate.classification_report(y_test, y_pred),
        "confusion_matrix": matrix.tolist(),
        "class_errors": errors,
        "worst_classes": evaluate.worst_classes(errors),
        "confused_pairs": evaluate.most_confused_pairs(matrix, count=auto_pairs),
        "divergence": outcome.divergence,
    }


def comparison_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one comparison-table row per model (no wall-clock times: they break byte identity)."""
    keys = ("train_accuracy", "val_accuracy", "test_accuracy", "train_test_gap", "parameters",
            "epochs")  # fmt: skip
    return [{"model": name, **{k: m[k] for k in keys}} for name, m in metrics["models"].items()]


def history_frame(outcomes: list[ModelOutcome]) -> pd.DataFrame:
    """Return the per-epoch history of every model as one long table."""
    rows = [{"model": o.name, **vars(r)} for o in outcomes for r in o.history]
    columns = ["model", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"]
    return pd.DataFrame(rows, columns=columns)


def predictions_frame(outcomes: list[ModelOutcome], dataset: Dataset) -> pd.DataFrame:
    """Return one row per model and test image: label, prediction and class probabilities."""
    frames = []
    index = dataset.test.index.numpy()
    labels = dataset.test.y.cpu().numpy()
    for o in outcomes:
        frame = pd.DataFrame(
            {"model": o.name, "index": index, "label": labels, "prediction": o.predictions}
        )
        probs = pd.DataFrame(o.proba, columns=[f"p{k}" for k in range(o.proba.shape[1])])
        frames.append(pd.concat([frame, probs], axis=1))
    return pd.concat(frames, ignore_index=True)


def csv_text(frame: pd.DataFrame, *, float_format: str | None = None) -> str:
    """Return a DataFrame as CSV with ``\\n`` line endings and no index."""
    return frame.to_csv(index=False, float_format=float_format, lineterminator="\n")


# --------------------------------------------------------------------------- the run


@contextmanager
def _timed(timings: dict[str, float], stage: str, progress: Progress) -> Iterator[None]:
    progress(Event("stage", stage=stage))
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 3)
    progress(Event("stage_done", stage=stage, seconds=timings[stage]))


def run(
    config: Config,
    *,
    out: Path | None = None,
    resume: bool = False,
    argv: list[str] | None = None,
    templates: Path | None = None,
    progress: Progress = _silent,
) -> Run:
    """Train, evaluate and report on both models; return the published run."""
    final = Path(out) if out is not None else Path("reports") / config.run.name
    device = resolve_device(config.runtime.device)
    seed_everything(config.seed, threads=config.runtime.threads)
    staging = rundir.open_staging(final, resume=resume)
    paths = rundir.RunPaths(staging)
    resolved = to_toml(config)
    if resume and paths.config.is_file() and paths.config.read_text() != resolved:
        raise RunDirError(
            f"cannot resume {final}: its config differs from this one "
            "(resume with the same --config and --set options)"
        )
    rundir.write_atomic(paths.config, resolved)
    paths.work.mkdir(exist_ok=True)
    timings: dict[str, float] = {}

    with _timed(timings, "data", progress):
        files, dataset = stage_data(config, progress)
        dataset = _to_device(dataset, device)

    outcomes = []
    for name, spec in config.model_items():
        with _timed(timings, f"train:{name}", progress):
            trained = stage_train(
                config, name, spec, dataset, device=device, work=paths.work, progress=progress
            )
        with _timed(timings, f"evaluate:{name}", progress):
            outcome = stage_evaluate(config, name, spec, *trained, dataset)
            _save_state(paths.weights(name), outcome.state_dict)
        outcomes.append(outcome)

    with _timed(timings, "metrics", progress):
        y_test = dataset.test.y.cpu().numpy()
        metrics = build_metrics(config, outcomes, dataset, y_test)
        rundir.write_json(paths.metrics, metrics)
        rundir.write_atomic(paths.history, csv_text(history_frame(outcomes)))
        rundir.write_atomic(
            paths.predictions, csv_text(predictions_frame(outcomes, dataset), float_format="%.6f")
        )
        rundir.write_atomic(paths.comparison, csv_text(pd.DataFrame(comparison_rows(metrics))))

    manifest = {
        "schema": 1,
        "run_name": config.run.name,
        "seed": config.seed,
        "command": argv or [],
        "data_files": files.sha256,
        "data_source": files.source,
        "environment": describe(str(device), config.runtime.threads),
        "timings_s": timings,
    }
    rundir.write_json(paths.manifest, {**manifest, "artifacts": rundir.artifact_hashes(staging)})
    rundir.publish(staging, final)
    return Run(final, metrics, timings)


def build_metrics(
    config: Config, outcomes: list[ModelOutcome], dataset: Dataset, y_test: np.ndarray
) -> dict[str, Any]:
    """Return the whole ``metrics.json`` document."""
    models = {
        o.name: model_metrics(o, y_test, auto_pairs=config.report.auto_pairs) for o in outcomes
    }
    metrics: dict[str, Any] = {
        "schema": 1,
        "run": {"name": config.run.name, "seed": config.seed},
        "dataset": {
            "name": DATASET_NAME,
            "train_size": len(dataset.train),
            "val_size": len(dataset.val),
            "test_size": len(dataset.test),
            "test_support": np.bincount(y_test, minlength=10).tolist(),
        },
        "models": models,
    }
    metrics["comparison"] = comparison_rows(metrics)
    return metrics
