"""A run as a pipeline: config → data → train → evaluate → figures → render → publish.

Each stage takes the previous stage's plain outputs (:mod:`reportgen.run.stages`),
and this module writes what they produce into the partial run directory,
times them, and publishes the directory only when everything is in it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reportgen.artifacts import layout, publish
from reportgen.artifacts.label_table import LabelIssueRow, label_issues_frame
from reportgen.artifacts.manifest import EnvironmentFacts, InputFile, RunManifest, artifact_hashes
from reportgen.artifacts.metrics import Metrics
from reportgen.artifacts.summary import ThresholdResult
from reportgen.artifacts.tables import (
    PROBABILITY_FORMAT,
    comparison_frame,
    csv_bytes,
    per_class_frame,
    predictions_frame,
)
from reportgen.config.dates import with_date
from reportgen.config.loading import parse_toml
from reportgen.config.schema import Config
from reportgen.config.toml import to_toml
from reportgen.core import fileio
from reportgen.core.environment import describe
from reportgen.core.errors import (
    ConfigError,
    OutputError,
    ReportgenError,
    RunDirError,
    exit_call,
)
from reportgen.core.events import Event, Progress, RunLog, info, silent
from reportgen.core.fontfile import FontFile, read_font
from reportgen.core.seeding import seed_everything
from reportgen.data.sources import check_config
from reportgen.data.tensors import Dataset
from reportgen.evaluate import assemble, data_checks, gate
from reportgen.evaluate.label_summary import LabelFindings
from reportgen.evaluate.outcome import ModelOutcome, history_table
from reportgen.export.dvc import write_dvc_files
from reportgen.export.model_card import model_card
from reportgen.figures.jobs import run_figure_jobs
from reportgen.figures.pool import draw_all
from reportgen.figures.style import fallback_font
from reportgen.run import render
from reportgen.run.font import font_input
from reportgen.run.robustness import stage_robustness
from reportgen.run.stages import (
    eval_batch_lines,
    resolve_device,
    stage_attributions,
    stage_check_models,
    stage_data,
    stage_evaluate,
    stage_label_issues,
    stage_load,
    stage_predictions,
    stage_rank,
    stage_train,
    to_device,
)
from reportgen.train.checkpoint import save_state
from reportgen.train.loop import TrainResult


@dataclass
class Run:
    """A published run: where it is and what it measured."""

    path: Path
    metrics: Metrics
    timings: dict[str, float] = field(default_factory=dict)
    thresholds: list[ThresholdResult] = field(default_factory=list)

    @property
    def failed_thresholds(self) -> list[ThresholdResult]:
        """Return the ``gate.fail_under`` thresholds this run missed."""
        return [t for t in self.thresholds if not t.passed]

    @property
    def diverged(self) -> list[str]:
        """Return the names of the models that diverged: a loss or logits not finite."""
        return [name for name, m in self.metrics.models.items() if m.divergence is not None]


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

    The configuration is checked against its data source and the output path
    (:func:`reportgen.artifacts.publish.check_target`) before any work: only a
    new path, an empty directory or a previous run is replaced.

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
    check_config(config)
    font = None if config.report.font is None else read_font(config.report.font)
    final = Path(out) if out is not None else Path("reports") / config.run.name
    publish.check_target(final, kind=layout.RUN_KIND)
    device = resolve_device(config.runtime.device)
    seed_everything(config.seed, threads=config.runtime.threads)
    with publish.open_staging(final, resume=resume) as staging:
        if fill_date:
            config = with_date(config, _started_on(staging) if resume else None)
        try:
            return _run_in(
                config, final, staging, resume=resume, argv=argv, log=RunLog(progress),
                device=device, data_root=config.data.root if data_root is None else data_root,
                templates=config.report.templates if config_templates else None,
                code_dir=code_dir, font=font,
            )  # fmt: skip
        except BaseException as e:
            kept = worth_resuming(staging)
            if not kept:
                publish.discard_staging(staging)
            if isinstance(e, OSError):
                # A full disk or a vanished directory: say where, and what is kept.
                raise OutputError(f"cannot write {e.filename or final}: {e.strerror or e}; "
                                  + _kept_text(staging, kept)) from e  # fmt: skip
            if isinstance(e, SystemExit):  # user code (a network's) tried to end the process
                kept_note = f"; {_kept_text(staging, kept)}" if kept else ""
                raise ConfigError(f"user code called {exit_call(e)} during the run, which did "
                                  f"not finish{kept_note}") from e  # fmt: skip
            if kept and isinstance(e, ReportgenError):
                raise type(e)(f"{e}; {_kept_text(staging, kept)}") from e
            raise


def worth_resuming(staging: Path) -> bool:
    """Return whether a partial run holds a checkpoint, the work ``--resume`` continues from."""
    work = layout.RunPaths(staging).work
    return work.is_dir() and not work.is_symlink() and any(work.glob("*.ckpt"))


def _kept_text(staging: Path, kept: bool) -> str:
    if not kept:
        return "nothing was trained yet, so nothing is kept"
    return (
        f"the unfinished run is kept in {staging} (rerun with --resume to continue from "
        "its last epoch, or delete it)"
    )


def _started_on(staging: Path) -> str | None:
    """Return the ``run.date`` an interrupted run was started with, if it recorded one."""
    try:
        previous = parse_toml(layout.RunPaths(staging).config.read_text(), source="config.toml")
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
    font: FontFile | None,
) -> Run:
    """Build the run in ``staging``, then publish it at ``final``."""
    progress = log.event
    paths = layout.RunPaths(staging)
    resolved = to_toml(config)
    if resume and paths.config.is_file() and paths.config.read_text() != resolved:
        raise RunDirError(
            f"cannot resume {final}: its config differs from this one "
            "(resume with the same --config and --set options)"
        )
    fileio.write_atomic(paths.config, resolved)
    paths.work.mkdir(exist_ok=True)
    timings: dict[str, float] = {}

    with _timed(timings, "data", progress):
        acquired, dataset = stage_data(config, progress, root=data_root, font=font)
        dataset = to_device(dataset, device)
        eval_batches = stage_check_models(config, dataset, code_dir=code_dir, device=device)
        for line in eval_batch_lines(config, eval_batches):
            progress(info("data", line))

    with _timed(timings, "train", progress):
        models = stage_train(config, dataset, device=device, work=paths.work, progress=progress,
                             code_dir=code_dir, eval_batches=eval_batches)  # fmt: skip
    trained = {model.name: model for model in models}
    outcomes = []
    for name, spec in config.model_items():
        if spec.source == "predictions":
            with _timed(timings, f"evaluate:{name}", progress):
                outcomes.append(stage_rank(stage_predictions(config, name, spec, dataset), dataset))
            continue  # no network: no models/<name>.pt, no attributions
        if name in trained:
            timings[f"train:{name}"] = round(trained[name].seconds, 3)
            network, result = trained[name].model, trained[name].result
        else:  # a checkpoint: its weights, no training
            with _timed(timings, f"load:{name}", progress):
                network = stage_load(config, name, spec, dataset, code_dir=code_dir,
                                     device=device)  # fmt: skip
            result = TrainResult(history=[], divergence=None)
        with _timed(timings, f"evaluate:{name}", progress):
            outcome = stage_evaluate(config, name, spec, network, result, dataset,
                                     eval_batch=eval_batches[name])  # fmt: skip
            outcome = stage_rank(outcome, dataset)
            assert outcome.state_dict is not None  # a network's outcome has its weights
            save_state(paths.weights(name), outcome.state_dict)
        if config.report.attributions:
            with _timed(timings, f"attributions:{name}", progress):
                outcome = stage_attributions(
                    config, outcome, dataset, eval_batch=eval_batches.get(name)
                )
        outcomes.append(outcome)

    found = None
    if config.report.duplicates:
        with _timed(timings, "duplicates", progress):
            found = data_checks.find(dataset)
    findings = None
    if config.report.label_issues:
        with _timed(timings, "label_issues", progress):
            findings = stage_label_issues(outcomes, dataset)
            fileio.write_atomic(paths.label_issues, label_issues_csv(findings))
    label_rows: list[LabelIssueRow] = findings.rows if findings else []
    robustness = None
    if config.report.robustness.enabled:
        with _timed(timings, "robustness", progress):
            # The reference first: corruption errors are relative to it, and the paired
            # tests compare the other model against it.
            networks = {o.name: o.model for o in outcomes}
            order = config.compared() or tuple(networks)
            networks = {name: networks[name] for name in order}
            robustness = stage_robustness(config, networks, dataset,
                                          eval_batches=eval_batches, device=device)  # fmt: skip

    with _timed(timings, "metrics", progress):
        metrics = assemble.build_metrics(config, outcomes, dataset,
                                         findings.metrics if findings else None,
                                         robustness=robustness, found=found)  # fmt: skip
        write_tables(paths, metrics, outcomes, dataset)

    if config.report.render:
        with _timed(timings, "figures", progress):
            jobs = run_figure_jobs(config, outcomes, dataset, metrics, label_rows)
            with fallback_font(None if font is None else font.path):
                pngs = draw_all(jobs, workers=config.runtime.threads)
            for job, png in zip(jobs, pngs, strict=True):
                fileio.write_atomic(paths.figure(job.name), png)

    thresholds = gate.check_thresholds(metrics, config.gate.fail_under)
    gate.summary(metrics, thresholds).write(paths.summary_json)
    fileio.write_atomic(paths.summary_md, gate.summary_markdown(metrics, thresholds))
    fileio.write_atomic(paths.model_card, model_card(config, metrics))

    manifest = RunManifest(
        inputs=input_files(config, outcomes) | font_input(config, font),
        run_name=config.run.name,
        seed=config.seed,
        command=argv or [],
        data_files=acquired.fingerprint,
        data_source=acquired.source,
        environment=EnvironmentFacts.model_validate(describe(str(device), config.runtime.threads)),
        artifacts=artifact_hashes(staging),
    )
    if config.report.render:
        with _timed(timings, "render", progress):
            render.render_run(staging, templates_dir=templates, pdf=config.report.pdf,
                              manifest=manifest, font=font)  # fmt: skip
    fileio.write_atomic(paths.log, log.text())
    manifest.model_copy(update={"timings_s": timings, "artifacts": artifact_hashes(staging)}).write(
        paths.manifest
    )
    kept = publish.publish(staging, final)
    if kept is not None:
        message = f"the previous run held files reportgen did not write; it was kept at {kept}"
        progress(Event("info", stage="publish", message=message))
    return Run(final, metrics, timings, thresholds)


def label_issues_csv(findings: LabelFindings) -> bytes:
    """Return ``label_issues.csv``'s bytes: the whole ranking."""
    return csv_bytes(label_issues_frame(findings.rows, list(findings.metrics.models)))


def input_files(config: Config, outcomes: list[ModelOutcome]) -> dict[str, InputFile]:
    """Return the manifest's record of every file a model came from: its setting, path and hash.

    The hash is the one taken when the file was read (``ModelMetrics.source``).
    """
    files = {}
    for (name, spec), outcome in zip(config.model_items(), outcomes, strict=True):
        given, sha256 = spec.checkpoint or spec.predictions, outcome.source.sha256
        if given is not None and sha256 is not None:
            size = Path(given).expanduser().stat().st_size
            key = f"models.{name}.{outcome.source.kind}"
            files[key] = InputFile(path=given, sha256=sha256, size=size)
    return files


def write_tables(
    paths: layout.RunPaths, metrics: Metrics, outcomes: list[ModelOutcome], dataset: Dataset
) -> None:
    """Write ``metrics.json`` and the tables: history, predictions, comparison, per class, DVC's."""
    metrics.write(paths.metrics)
    history = history_table(outcomes)
    fileio.write_atomic(paths.history, csv_bytes(history))
    write_dvc_files(paths, metrics, history)
    predictions = predictions_frame(
        {o.name: o.proba for o in outcomes},
        labels=dataset.test.y.cpu().numpy(),
        index=dataset.test.index.numpy(),
        classes=dataset.info.classes,
        files=dataset.info.test_files,
    )
    fileio.write_atomic(paths.predictions, csv_bytes(predictions, float_format=PROBABILITY_FORMAT))
    fileio.write_atomic(paths.comparison, csv_bytes(comparison_frame(metrics.comparison)))
    fileio.write_atomic(paths.per_class, csv_bytes(per_class_frame(metrics)))
