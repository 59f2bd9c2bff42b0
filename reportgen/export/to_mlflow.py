"""``reportgen export mlflow``: a finished run (or sweep) as an MLflow run, read and never changed.

A run becomes one MLflow run: its parameters are the flattened resolved
config, its metrics every scalar of :mod:`reportgen.export.scalars` plus each
model's history per epoch as steps (``MODEL.epoch.COLUMN``), its tags the
reportgen version, the project commit and the run's fingerprint (the
SHA-256 of its ``manifest.json``), and its artifacts the report, the tables
and the figures.  A sweep becomes a parent run with a nested child per run.
An MLflow run carrying the fingerprint is found before anything is logged,
so exporting the same run twice logs it once.  MLflow is optional: the
client is ``pip install 'reportgen[mlflow]'`` (``mlflow-skinny``), imported
only here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.artifacts.layout import MANIFEST, RUN_FILES
from reportgen.artifacts.manifest import (
    RunManifest,
    SweepManifest,
    read_any_manifest,
    read_intact,
)
from reportgen.artifacts.metrics import read_metrics
from reportgen.artifacts.runconfig import read_config
from reportgen.artifacts.tables import HISTORY_COLUMNS, read_history
from reportgen.core.errors import ConfigError, OutputError, RunDirError
from reportgen.core.fileio import sha256_path
from reportgen.core.text import one_line
from reportgen.core.version import VERSION
from reportgen.export.scalars import scalars

DEFAULT_EXPERIMENT = "reportgen"
FINGERPRINT_TAG = "reportgen.fingerprint"  # SHA-256 of the exported output's manifest.json
VERSION_TAG = "reportgen.version"
COMMIT_TAG = "reportgen.git_commit"
KIND_TAG = "reportgen.kind"  # "run" or "sweep"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag of a nested run
BATCH = 100  # MLflow takes at most 100 parameters or tags, 1,000 metrics, per log_batch
# The files of a run logged as artifacts (figures/ follows as a folder); absent ones are skipped.
RUN_ARTIFACTS = tuple(path.as_posix() for path in (
    RUN_FILES.html, RUN_FILES.pdf, RUN_FILES.metrics, RUN_FILES.predictions, RUN_FILES.history,
    RUN_FILES.comparison, RUN_FILES.per_class, RUN_FILES.config, RUN_FILES.summary_json,
    RUN_FILES.summary_md, RUN_FILES.model_card, RUN_FILES.scalars, RUN_FILES.manifest,
))  # fmt: skip
INSTALL_HINT = "pip install 'reportgen[mlflow]'"


@dataclass(frozen=True)
class Exported:
    """One MLflow run of an export: its id, name, and whether this export created it."""

    run_id: str
    name: str
    created: bool
    children: list[Exported] = field(default_factory=list)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return nested config data as ``{"section.key": text}``: lists and tables as JSON."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}.")
        elif isinstance(value, str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, sort_keys=True)
    return flat


def fingerprint(root: Path) -> str:
    """Return what identifies an exported output: the SHA-256 of its ``manifest.json``."""
    return sha256_path(root / MANIFEST)


def export_mlflow(
    root: Path, *, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT
) -> Exported:
    """Log the run or sweep at ``root`` to the MLflow tracking server; return its MLflow run.

    ``tracking_uri`` defaults to ``MLFLOW_TRACKING_URI``.  Every file is
    checked against the manifest first: a changed run is refused, not logged.

    Raises
    ------
    ConfigError
        MLflow is not installed, or no tracking URI is given.
    RunDirError
        ``root`` is not an intact run or sweep.
    OutputError
        The tracking server refused or could not be reached.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError(
            "no MLflow tracking server: pass --tracking-uri URI or set MLFLOW_TRACKING_URI"
        )
    client_class, mlflow_error = _mlflow()
    found = read_any_manifest(root)
    if not isinstance(found, RunManifest | SweepManifest):
        raise RunDirError(f"{root}: only a run or a sweep can be exported, not a comparison")
    # Every file is checked before the server is asked anything.
    if isinstance(found, SweepManifest):
        manifest: RunManifest | SweepManifest = read_intact(root, SweepManifest, action="export")
    else:
        manifest = read_intact(root, RunManifest, action="export")
    try:
        client = client_class(tracking_uri=uri)
        experiment_id = _experiment(client, experiment)
        if isinstance(manifest, SweepManifest):
            return _export_sweep(client, experiment_id, root, manifest)
        return _export_run(client, experiment_id, root, manifest)
    except mlflow_error as e:
        raise OutputError(f"MLflow at {uri}: {one_line(e)}") from e
    except OSError as e:  # the server is not there: requests' errors are OSErrors
        raise OutputError(f"cannot reach MLflow at {uri}: {one_line(e)}") from e


def _mlflow() -> tuple[Any, type[Exception]]:
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as e:
        raise ConfigError(f"export mlflow needs MLflow's client: {INSTALL_HINT}") from e
    return MlflowClient, MlflowException


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name))
    return str(found.experiment_id)


def _find(client: Any, experiment_id: str, print_: str, parent: str | None) -> list[Any]:
    """Return the MLflow runs carrying fingerprint ``print_`` (under ``parent``), finished first."""
    query = f"tags.`{FINGERPRINT_TAG}` = '{print_}'"
    if parent is not None:
        query += f" and tags.`{PARENT_TAG}` = '{parent}'"
    runs = client.search_runs([experiment_id], filter_string=query)
    return sorted(runs, key=lambda run: run.info.status != "FINISHED")


def _tags(root: Path, kind: str, commit: str | None, parent: str | None) -> dict[str, str]:
    tags = {FINGERPRINT_TAG: fingerprint(root), VERSION_TAG: VERSION, KIND_TAG: kind}
    if commit:
        tags[COMMIT_TAG] = commit
    if parent is not None:
        tags[PARENT_TAG] = parent
    return tags


def _export_run(
    client: Any,
    experiment_id: str,
    root: Path,
    manifest: RunManifest,
    *,
    parent: str | None = None,
    name: str | None = None,
) -> Exported:
    found = _find(client, experiment_id, fingerprint(root), parent)
    if found and found[0].info.status == "FINISHED":
        return Exported(found[0].info.run_id, found[0].info.run_name, created=False)
    for unfinished in found:  # an export that was interrupted: this tool's, logged again in full
        client.delete_run(unfinished.info.run_id)
    config, _ = read_config(root, manifest)
    metrics = read_metrics(root, manifest)
    history = read_history(root, manifest)
    run = client.create_run(
        experiment_id, run_name=name or manifest.run_name,
        tags=_tags(root, "run", manifest.environment.git_commit, parent),
    )  # fmt: skip
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    from mlflow.entities import Metric, Param

    flat = flatten(config.model_dump(mode="json"))
    params = [Param(key, value) for key, value in sorted(flat.items())]
    values = [Metric(key, float(value), now, 0) for key, value in scalars(metrics).items()]
    values += [Metric(key, value, now, step) for key, value, step in _history(history)]
    for chunk in _chunks(params, BATCH):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(values, 1000):
        client.log_batch(run_id, metrics=chunk)
    for rel in RUN_ARTIFACTS:
        if rel in manifest.artifacts or rel == MANIFEST:
            client.log_artifact(run_id, str(root / rel))
    for folder in ("figures", "curves", "confusion"):
        if (root / folder).is_dir():
            client.log_artifacts(run_id, str(root / folder), folder)
    _finish(client, run_id)
    return Exported(run_id, run.info.run_name, created=True)


def _finish(client: Any, run_id: str) -> None:
    """Mark a run finished, keeping MLflow's "View run at" lines off reportgen's stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        client.set_terminated(run_id, "FINISHED")


def _history(history: Any) -> Iterator[tuple[str, float, int]]:
    """Yield ``(MODEL.epoch.COLUMN, value, epoch)`` for every finite value of ``history.csv``."""
    columns = [c for c in HISTORY_COLUMNS if c not in ("model", "epoch")]
    for row in history.itertuples(index=False):
        record = row._asdict()
        for column in columns:
            value = record[column]
            if value is not None and math.isfinite(float(value)):
                yield f"{record['model']}.epoch.{column}", float(value), int(record["epoch"])


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _export_sweep(client: Any, experiment_id: str, root: Path, manifest: SweepManifest) -> Exported:
    found = _find(client, experiment_id, fingerprint(root), None)
    if found:  # finished, or interrupted while its runs were logged: its children are kept
        parent_id, name = found[0].info.run_id, found[0].info.run_name
        created = found[0].info.status != "FINISHED"
    else:
        run = client.create_run(experiment_id, run_name=root.name,
                                tags=_tags(root, "sweep", None, None))  # fmt: skip
        parent_id, name, created = run.info.run_id, run.info.run_name, True
    children = []
    for rel in manifest.runs:
        run_root = root / rel
        if (run_root / MANIFEST).is_file():  # a failed run has no manifest, and nothing to log
            run_manifest = read_intact(run_root, RunManifest, action="export")
            children.append(
                _export_run(
                    client,
                    experiment_id,
                    run_root,
                    run_manifest,
                    parent=parent_id,
                    name=rel.removeprefix("points/"),
                )
            )
    if created:  # the sweep's own files, once its runs are all there
        own = sorted(rel for rel in manifest.artifacts
                     if not any(rel.startswith(f"{run}/") for run in manifest.runs))  # fmt: skip
        for rel in [*own, MANIFEST]:
            folder = Path(rel).parent.as_posix()
            client.log_artifact(parent_id, str(root / rel), None if folder == "." else folder)
        _finish(client, parent_id)
    return Exported(parent_id, name, created, children)
