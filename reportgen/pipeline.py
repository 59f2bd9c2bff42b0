"""A run as a pipeline: config → data → train → evaluate → figures → render → publish.

Each stage takes the previous stage's plain outputs and writes its artifacts
into the partial run directory; :func:`run` times the stages and publishes
the directory only when everything is in it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from reportgen import (
    attribution,
    curves,
    datasets,
    evaluate,
    figures,
    gate,
    measure,
    report,
    rundir,
)
from reportgen.attribution import AttributionMaps
from reportgen.calibration import Bins
from reportgen.config import Config, ModelSection, parse_toml, to_toml, with_date
from reportgen.data import Dataset, Split
from reportgen.environment import describe
from reportgen.errors import ConfigError, OutputError, ReportgenError, RunDirError
from reportgen.events import Event, Progress, RunLog, silent
from reportgen.factory import build_network, check_output
from reportgen.metrics import Metrics, ModelMetrics, ReliabilityBin
from reportgen.models import parameter_count
from reportgen.parallel import ModelJob, Trained, save_state, train_all
from reportgen.seeding import seed_everything
from reportgen.train import EpochRecord, TrainResult

# --------------------------------------------------------------------------- stage outputs


@dataclass(frozen=True)
class ModelOutcome:
    """What training and evaluation produced for one model."""

    name: str
    spec: ModelSection
    history: list[EpochRecord]
    divergence: dict[str, Any] | None
    parameters: int
    proba: np.ndarray  # [N_test, classes] float32
    train_accuracy: float
    state_dict: dict[str, torch.Tensor]
    model: torch.nn.Module
    test_logits: np.ndarray  # [N_test, classes] float64
    val_logits: np.ndarray  # [N_val, classes] float64: temperature scaling is fitted on them
    attributions: AttributionMaps | None = None  # the misclassified images shown, when on

    @property
    def predictions(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


@dataclass
class Run:
    """A published run: where it is and what it measured."""

    path: Path
    metrics: Metrics
    timings: dict[str, float] = field(default_factory=dict)
    thresholds: list[gate.Threshold] = field(default_factory=list)

    @property
    def failed_thresholds(self) -> list[gate.Threshold]:
        """Return the ``gate.fail_under`` thresholds this run missed."""
        return [t for t in self.thresholds if not t.passed]

    @property
    def diverged(self) -> list[str]:
        """Return the names of the models whose training diverged."""
        return [name for name, m in self.metrics.models.items() if m.divergence is not None]


# --------------------------------------------------------------------------- stages


def resolve_device(requested: str) -> torch.device:
    """Return the torch device for ``runtime.device``; "cuda" without a GPU is a config error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: 'cuda' requested but no CUDA device is available")
    return torch.device(requested)


def stage_data(
    config: Config, progress: Progress, *, root: str | None = None
) -> tuple[datasets.Acquired, Dataset]:
    """Obtain and verify the data (from ``root``, default ``data.root``), decode and split it."""
    acquired, dataset = datasets.load(
        config,
        root=root,
        progress=lambda message: progress(Event("info", stage="data", message=message)),
    )
    datasets.check_report(config, dataset)
    return acquired, dataset


def _to_device(dataset: Dataset, device: torch.device) -> Dataset:
    if device.type == "cpu":
        return dataset
    return dataclasses.replace(
        dataset,
        train=dataset.train.to(device),
        val=dataset.val.to(device),
        test=dataset.test.to(device),
    )


def stage_check_models(
    config: Config, dataset: Dataset, *, code_dir: Path | None, device: torch.device
) -> None:
    """Build each network once and run one batch through it before any training.

    A factory that cannot be imported, raises, returns no module or a network
    whose output is not ``[batch, classes]``, or a ``report.layer`` that
    names no module of it, stops the run here, with one line.  The networks
    built are thrown away and the global RNG is left as it was, so the
    training that follows is exactly what it would have been.
    """
    info = dataset.info
    batch = dataset.train.inputs(slice(0, min(config.data.batch_size, len(dataset.train))))
    for name, spec in config.model_items():
        with torch.random.fork_rng(devices=[]):
            network = build_network(name, spec, input_shape=info.image_shape,
                                    num_classes=info.num_classes, code_dir=code_dir)  # fmt: skip
            check_output(name, network.to(device), batch, info.num_classes)
            layer = config.layer(name)
            if layer is not None:  # a module the network does not have fails now, not later
                key = f"report.layer ({name})"
                evaluate.layer_output(network, batch[:1], layer=layer, key=key)


def stage_train(
    config: Config,
    dataset: Dataset,
    *,
    device: torch.device,
    work: Path,
    progress: Progress,
    code_dir: Path | None = None,
) -> list[Trained]:
    """Train every model from a fresh seed state, checkpointing each after every epoch.

    On the CPU, with at least as many ``runtime.threads`` as models, the
    models train side by side, each in a process of its own with
    ``threads // models`` threads; otherwise one after another, here, with
    all of them.  A model's bits depend only on its own thread count.
    """
    jobs = [
        ModelJob(
            name,
            spec,
            seed=config.seed,
            train_cfg=config.train,
            batch_size=config.data.batch_size,
            train=dataset.train,
            val=dataset.val,
            checkpoint=work / f"{name}.ckpt",
            threads=model_threads(config, device),
            input_shape=dataset.info.image_shape,
            num_classes=dataset.info.num_classes,
            code_dir=code_dir,
        )
        for name, spec in config.model_items()
    ]

    def on_epoch(name: str, record: EpochRecord) -> None:
        progress(Event("epoch", stage="train", model=name, done=record.epoch,
                       total=config.train.epochs, message=_epoch_line(record)))  # fmt: skip

    def on_step(name: str, done: int, total: int) -> None:
        progress(Event("step", stage="train", model=name, done=done, total=total))

    side_by_side = _side_by_side(config, device)
    return train_all(jobs, side_by_side=side_by_side, on_epoch=on_epoch, on_step=on_step)


def _side_by_side(config: Config, device: torch.device) -> bool:
    models = len(config.model_items())
    return device.type == "cpu" and models > 1 and config.runtime.threads >= models


def model_threads(config: Config, device: torch.device) -> int:
    """Return the threads each model trains with: its share of ``runtime.threads``."""
    threads = config.runtime.threads
    return threads // len(config.model_items()) if _side_by_side(config, device) else threads


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
    test_logits = evaluate.predict_logits(model, dataset.test, batch_size=batch)
    val_logits = evaluate.predict_logits(model, dataset.val, batch_size=batch)
    proba = evaluate.proba_from_logits(test_logits)  # one pass over the test set, not two
    train_pred = evaluate.predict_proba(model, dataset.train, batch_size=batch).argmax(axis=1)
    train_accuracy = evaluate.accuracy(dataset.train.y.cpu().numpy(), train_pred)
    divergence = vars(result.divergence) if result.divergence else None
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return ModelOutcome(
        name, spec, result.history, divergence, parameter_count(model), proba, train_accuracy,
        state, model, test_logits, val_logits,
    )  # fmt: skip


def model_inputs(split: Split, indices: np.ndarray) -> torch.Tensor:
    """Return the normalised model inputs of ``split``'s images at ``indices``."""
    return split.inputs(torch.as_tensor(indices, dtype=torch.int64, device=split.x.device))


def stage_attributions(config: Config, outcome: ModelOutcome, dataset: Dataset) -> ModelOutcome:
    """Return ``outcome`` with Integrated Gradients maps of every misclassified image shown."""
    y_test = dataset.test.y.cpu().numpy()
    info = dataset.info
    shown = attribution.shown_indices(
        y_test, outcome.predictions, config.report, num_classes=info.num_classes,
        pairs=datasets.confused_pairs(config, info),
    )  # fmt: skip
    maps = attribution.attribute(
        outcome.model, model_inputs(dataset.test, shown), indices=shown,
        predicted=outcome.predictions[shown], true=y_test[shown], image_shape=info.image_shape,
        mean=info.mean, std=info.std, steps=config.report.attribution_steps,
    )  # fmt: skip
    return dataclasses.replace(outcome, attributions=maps)


def history_frame(outcomes: list[ModelOutcome]) -> pd.DataFrame:
    """Return the per-epoch history of every model as one long table."""
    rows = [{"model": o.name, **vars(r)} for o in outcomes for r in o.history]
    columns = ["model", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"]
    return pd.DataFrame(rows, columns=columns)


def predictions_frame(outcomes: list[ModelOutcome], dataset: Dataset) -> pd.DataFrame:
    """Return one row per model and test image: label, prediction and class probabilities.

    Classes appear by index and by name; an image folder's rows name the test file.
    """
    frames = []
    index = dataset.test.index.numpy()
    labels = dataset.test.y.cpu().numpy()
    names = np.asarray(dataset.info.classes, dtype=object)
    files = {"file": list(dataset.info.test_files)} if dataset.info.test_files else {}
    for o in outcomes:
        frame = pd.DataFrame(
            {"model": o.name, "index": index, **files, "label": labels,
             "label_name": names[labels], "prediction": o.predictions,
             "prediction_name": names[o.predictions]}
        )  # fmt: skip
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
    progress: Progress = silent,
    data_root: str | None = None,
    config_templates: bool = True,
    fill_date: bool = True,
    code_dir: Path | None = None,
) -> Run:
    """Train, evaluate and report on both models; return the published run.

    ``progress`` receives every :class:`Event`; they are also written to the
    run's ``run.log``.  ``data_root`` reads the data from there instead of
    ``data.root``, and ``config_templates=False`` renders with the packaged
    templates only, ignoring ``report.templates``; neither changes the
    configuration written into the run (``verify`` uses both, so that a
    downloaded run's paths are never used).  ``code_dir`` is where a
    ``kind = "python"`` model's factory module may be imported from besides
    the installed packages: the directory of the config file.

    The output path is checked before any work (:func:`rundir.check_target`):
    only a new path, an empty directory or a previous run is replaced.

    A config without ``run.date`` gets the day of the run (UTC; the day of
    ``SOURCE_DATE_EPOCH`` when set; a resumed run keeps the day it started),
    and the run's resolved ``config.toml`` records it, so that re-rendering
    and verifying give the same bytes on another day.  ``fill_date=False``
    leaves an undated config undated (``verify`` of a run made without one).

    With ``runtime.threads`` of 2 or more, one model trains in a spawned
    worker process, which imports the calling script's main module again: as
    :mod:`multiprocessing` requires, a script calls ``run`` under
    ``if __name__ == "__main__":``.
    """
    final = Path(out) if out is not None else Path("reports") / config.run.name
    rundir.check_target(final, kind=rundir.RUN_KIND)
    device = resolve_device(config.runtime.device)
    seed_everything(config.seed, threads=config.runtime.threads)
    staging = rundir.open_staging(final, resume=resume)
    if fill_date:
        config = with_date(config, _started_on(staging) if resume else None)
    try:
        return _run_in(
            config, final, staging, resume=resume, argv=argv, log=RunLog(progress), device=device,
            data_root=config.data.root if data_root is None else data_root,
            templates=config.report.templates if config_templates else None, code_dir=code_dir,
        )  # fmt: skip
    except OSError as e:
        # A full disk or a vanished directory: say where, and that the work is kept.
        where = e.filename or final
        raise OutputError(
            f"cannot write {where}: {e.strerror or e}; the unfinished run is kept in {staging} "
            "(free space and rerun with --resume to continue from its last epoch, or delete it)"
        ) from e


def _started_on(staging: Path) -> str | None:
    """Return the ``run.date`` an interrupted run was started with, if it recorded one."""
    try:
        previous = parse_toml(rundir.RunPaths(staging).config.read_text(), source="config.toml")
    except (OSError, ReportgenError):
        return None
    day = previous.get("run", {}).get("date")
    return day if isinstance(day, str) else None


def _run_in(
    config: Config,
    final: Path,
    staging: Path,
    *,
    resume: bool,
    argv: list[str] | None,
    log: RunLog,
    device: torch.device,
    data_root: str,
    templates: str | None,
    code_dir: Path | None,
) -> Run:
    """Build the run in ``staging``, then publish it at ``final``."""
    progress = log.event
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
        acquired, dataset = stage_data(config, progress, root=data_root)
        dataset = _to_device(dataset, device)
        stage_check_models(config, dataset, code_dir=code_dir, device=device)

    with _timed(timings, "train", progress):
        models = stage_train(config, dataset, device=device, work=paths.work, progress=progress,
                             code_dir=code_dir)  # fmt: skip
    outcomes = []
    for (name, spec), trained in zip(config.model_items(), models, strict=True):
        timings[f"train:{name}"] = round(trained.seconds, 3)
        with _timed(timings, f"evaluate:{name}", progress):
            outcome = stage_evaluate(config, name, spec, trained.model, trained.result, dataset)
            save_state(paths.weights(name), outcome.state_dict)
        if config.report.attributions:
            with _timed(timings, f"attributions:{name}", progress):
                outcome = stage_attributions(config, outcome, dataset)
        outcomes.append(outcome)

    with _timed(timings, "metrics", progress):
        y_test = dataset.test.y.cpu().numpy()
        metrics = measure.build_metrics(config, outcomes, dataset, y_test)
        rundir.write_json(paths.metrics, metrics.dump())
        rundir.write_atomic(paths.history, csv_text(history_frame(outcomes)))
        rundir.write_atomic(
            paths.predictions, csv_text(predictions_frame(outcomes, dataset), float_format="%.6f")
        )
        comparison = pd.DataFrame([row.model_dump() for row in metrics.comparison])
        rundir.write_atomic(paths.comparison, csv_text(comparison))

    with _timed(timings, "figures", progress):
        stage_figures(config, outcomes, dataset, metrics, paths)

    thresholds = gate.check_thresholds(metrics, config.gate.fail_under)
    rundir.write_json(paths.summary_json, gate.summary_json(metrics, thresholds))
    rundir.write_atomic(paths.summary_md, gate.summary_markdown(metrics, thresholds))

    manifest = {
        "schema": 1,
        "kind": rundir.RUN_KIND,
        "run_name": config.run.name,
        "seed": config.seed,
        "command": argv or [],
        "data_files": acquired.fingerprint,
        "data_source": acquired.source,
        "environment": describe(str(device), config.runtime.threads),
    }
    with _timed(timings, "render", progress):
        report.render_run(
            staging,
            templates_dir=templates,
            pdf=config.report.pdf,
            manifest={**manifest, "artifacts": rundir.artifact_hashes(staging)},
        )
    rundir.write_atomic(paths.log, log.text())
    manifest["timings_s"] = timings
    rundir.write_json(paths.manifest, {**manifest, "artifacts": rundir.artifact_hashes(staging)})
    kept = rundir.publish(staging, final)
    if kept is not None:
        message = f"the previous run held files reportgen did not write; it was kept at {kept}"
        progress(Event("info", stage="publish", message=message))
    return Run(final, metrics, timings, thresholds)


# --------------------------------------------------------------------------- figures


def model_figures(
    config: Config, position: int, outcome: ModelOutcome, model: ModelMetrics, dataset: Dataset
) -> Iterator[figures.FigureJob]:
    """Yield the figures of one model, as jobs on plain data (torch stays in this process)."""
    name = outcome.name
    images = dataset.test_images  # [N, H, W] or [N, H, W, 3] uint8
    y_test = dataset.test.y.cpu().numpy()
    y_pred = outcome.predictions
    sample = model.sample_index
    seen = measure.views(config, outcome, dataset)
    wrong = np.asarray(model.misclassified, dtype=np.int64)
    classes = list(dataset.info.classes)
    # What each kind of figure of figures.FIGURES is drawn from: (args, keyword args).
    inputs: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "weights": (
            (seen.weights,),
            {"model": name, "count": config.report.n_weights, "unit": seen.unit,
             "image_shape": dataset.info.image_shape},
        ),
        "activations": (
            (images[sample], *(seen.activations or ())),
            {"model": name, "index": sample, "label": int(y_test[sample]),
             "prediction": int(y_pred[sample]), "classes": classes,
             **({"layer": model.figure_layers["activations"]}
                if "activations" in model.figure_layers else {})},
        ),
        "misclassified": (
            (images[wrong], y_test[wrong], y_pred[wrong], outcome.proba[wrong, y_pred[wrong]]),
            {"model": name, "total": int(np.count_nonzero(y_pred != y_test)),
             "classes": classes},
        ),
        "curves": (
            (history_frame([outcome]),), {"model": name, "color": figures.model_color(position)}
        ),
        "confusion": ((model.confusion_matrix,), {"model": name, "classes": classes}),
        "class_errors": (
            ([row.error_rate for row in model.class_errors],),
            {"model": name, "worst": model.worst_classes, "classes": classes},
        ),
    }  # fmt: skip
    inputs.update(evaluation_inputs(outcome, model, y_test, dataset.info.classes))
    for kind in figures.kinds("model"):
        if kind.kind in model.figure_notes:  # the figure cannot apply: its sentence instead
            title = f"{name}: {kind.kind} figure not drawn"
            yield figures.FigureJob(model.figures[kind.kind], figures.notice_figure,
                                    (model.figure_notes[kind.kind],), {"title": title})  # fmt: skip
            continue
        args, kwargs = inputs[kind.kind]
        build = kind.for_network(seen.variant.get(kind.kind, outcome.spec.kind)).build
        yield figures.FigureJob(model.figures[kind.kind], build, args, kwargs)
    pair = figures.FIGURES["pair"]
    for gallery in model.pair_galleries:
        shown = np.asarray(gallery.indices, dtype=np.int64)
        yield figures.FigureJob(gallery.figure, pair.build,
                                (images[shown], shown, outcome.proba[shown, gallery.pred]),
                                {"model": name, "true": gallery.true, "pred": gallery.pred,
                                 "total": gallery.count, "classes": classes})  # fmt: skip
    yield from attribution_jobs(outcome, model, dataset)


def _bins(rows: list[ReliabilityBin]) -> Bins:
    """Return ``metrics.json``'s bins as arrays to draw (an empty bin's values as NaN)."""
    value = lambda v: np.nan if v is None else v  # noqa: E731
    return Bins(
        low=np.array([value(b.low) for b in rows], dtype=np.float64),
        high=np.array([value(b.high) for b in rows], dtype=np.float64),
        count=np.array([b.count for b in rows], dtype=np.int64),
        confidence=np.array([value(b.confidence) for b in rows], dtype=np.float64),
        accuracy=np.array([value(b.accuracy) for b in rows], dtype=np.float64),
    )


def evaluation_inputs(
    outcome: ModelOutcome, model: ModelMetrics, y_test: np.ndarray, classes: Sequence[str]
) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """Return what the calibration, ROC and precision–recall figures are drawn from."""
    name, calibrated, ranked = outcome.name, model.calibration, model.one_vs_rest.classes
    roc, roc_micro = curves.roc_curves(outcome.proba, y_test)
    pr, pr_micro = curves.pr_curves(outcome.proba, y_test)
    bins = (_bins(calibrated.reliability), _bins(calibrated.equal_mass),
            _bins(calibrated.equal_mass_scaled))  # fmt: skip
    return {
        "reliability": (bins, {"model": name, "temperature": calibrated.temperature}),
        "roc": ((roc, roc_micro, [row.auc for row in ranked]),
                {"model": name, "classes": list(classes)}),
        "pr": ((pr, pr_micro, [row.average_precision for row in ranked]),
               {"model": name, "classes": list(classes)}),
    }  # fmt: skip


def attribution_jobs(
    outcome: ModelOutcome, model: ModelMetrics, dataset: Dataset
) -> Iterator[figures.FigureJob]:
    """Yield the attribution figures: the misclassified grid's, then each confused pair's."""
    if model.attributions is None or outcome.attributions is None:
        return
    classes = dataset.info.classes
    totals = [len(model.misclassified)] + [g.count for g in model.pair_galleries]
    for shown, total in zip(model.attributions.galleries, totals, strict=True):
        indices = np.asarray([image.index for image in shown.images], dtype=np.int64)
        toward_pred, toward_true = outcome.attributions.select(indices)
        if shown.source == "misclassified":
            kind, title = "misclassified_attributions", "misclassified test images"
        else:
            assert shown.true is not None and shown.pred is not None
            kind = "pair_attributions"
            title = f"true {classes[shown.true]} predicted as {classes[shown.pred]}"
        yield figures.FigureJob(
            shown.figure, figures.FIGURES[kind].build,
            (dataset.test_images[indices], toward_pred, toward_true, indices,
             [classes[image.true] for image in shown.images],
             [classes[image.pred] for image in shown.images]),
            {"model": outcome.name, "title": title, "total": total},
        )  # fmt: skip


def stage_figures(
    config: Config,
    outcomes: list[ModelOutcome],
    dataset: Dataset,
    metrics: Metrics,
    paths: rundir.RunPaths,
) -> None:
    """Draw every figure that ``metrics.figures`` lists and save it under ``figures/``.

    Figures are drawn in up to ``runtime.threads`` processes; each PNG's bytes
    do not depend on which process drew it.
    """
    history = history_frame(outcomes)
    jobs = [figures.FigureJob(kind.kind, kind.build, (history,)) for kind in figures.kinds("run")]
    for position, outcome in enumerate(outcomes):
        jobs += model_figures(config, position, outcome, metrics.models[outcome.name], dataset)
    drawn = sorted(job.name for job in jobs)
    if drawn != sorted(metrics.figures):  # a bug, not a user error
        raise RuntimeError(f"figures drawn {drawn} differ from metrics.json's list")
    for job, png in zip(jobs, figures.draw_all(jobs, workers=config.runtime.threads), strict=True):
        rundir.write_atomic(paths.figure(job.name), png)
