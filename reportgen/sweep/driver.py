"""A sweep: every point × seed as an ordinary run, then one report over all of them.

The sweep directory is built in place, so that a driver killed at any moment
loses nothing that was finished::

    OUT/
      points/<label>/config.toml     the point's resolved config (seed: the first seed)
      points/<label>/seed-<n>/       a complete run, published atomically when it ends
      sweep.html, sweep.pdf          the report over every run
      sweep.csv, sweep.json          one row per run; every number the report shows
      figures/*.png                  the report's figures
      timings.json, sweep.log        wall times and the log (they differ between executions)
      manifest.json                  written last, once every run has succeeded

While a sweep is unfinished its directory holds a marker file,
``.reportgen-sweep``, locked by the driver at work.  A re-invocation (with
or without ``--resume``) keeps every run whose manifest verifies and whose
config is the planned one, continues interrupted runs from their last
checkpoint, and runs the rest.  A run that fails is retried once; if it
fails again it is reported and the others go on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.artifacts import layout, publish
from reportgen.artifacts.manifest import (
    RunManifest,
    SweepManifest,
    artifact_hashes,
    read_artifact,
    read_intact,
    read_manifest,
)
from reportgen.config.dates import with_date
from reportgen.config.loading import parse_toml
from reportgen.config.schema import GATE_METRICS
from reportgen.config.sweepspec import SweepSpec
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, OutputError, ReportgenError, RunDirError
from reportgen.core.events import Event, Progress, silent
from reportgen.core.text import first_few
from reportgen.data.sources import check_config
from reportgen.evaluate.gate import MeanThreshold, check_mean_thresholds
from reportgen.sweep.executors import Executor, RunTask
from reportgen.sweep.plan import (
    FIGURES,
    LOG_NAME,
    MARKER,
    POINT_CONFIG,
    POINTS,
    REPORT_FILES,
    TIMINGS,
    PlannedRun,
    plan_runs,
    point_config,
    run_key,
)
from reportgen.sweep.report import build_outputs

ATTEMPTS = 2  # a failed run is retried once
_TEMP = re.compile(r"\..+\.tmp-\d+")


@dataclass
class SweepResult:
    """What a sweep did: the runs it kept, ran and lost, and where its report is."""

    path: Path
    planned: list[PlannedRun]
    skipped: list[str] = field(default_factory=list)  # complete already
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> the last error
    thresholds: list[MeanThreshold] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed_thresholds(self) -> list[MeanThreshold]:
        return [t for t in self.thresholds if not t.passed]


# --------------------------------------------------------------------------- the directory


def _expected_entries(spec: SweepSpec) -> tuple[set[str], dict[str, set[str]]]:
    """Return what an unfinished sweep may hold: top-level names, and names per point folder."""
    top = {MARKER, POINTS, FIGURES, LOG_NAME, TIMINGS, layout.MANIFEST, *REPORT_FILES}
    per_point = {}
    for point in spec.points:
        names = {POINT_CONFIG}
        for seed in spec.seeds:
            names |= {f"seed-{seed}", f".seed-{seed}{layout.PARTIAL_SUFFIX}"}
        per_point[point.label] = names
    return top, per_point


def _unexpected(root: Path, spec: SweepSpec) -> list[str]:
    """Return the entries of an unfinished sweep that a sweep of ``spec`` would not write."""
    top, per_point = _expected_entries(spec)
    found = []
    for entry in sorted(os.listdir(root)):
        if entry not in top and not _TEMP.fullmatch(entry):
            found.append(entry)
    points = root / POINTS
    if points.is_dir() and not points.is_symlink():
        for label in sorted(os.listdir(points)):
            folder = points / label
            if label not in per_point or folder.is_symlink() or not folder.is_dir():
                found.append(f"{POINTS}/{label}")
                continue
            for entry in sorted(os.listdir(folder)):
                stale = entry.startswith(".seed-") and layout.OLD_SUFFIX in entry
                if entry not in per_point[label] and not stale and not _TEMP.fullmatch(entry):
                    found.append(f"{POINTS}/{label}/{entry}")
    figures = root / FIGURES
    if figures.is_dir() and not figures.is_symlink():
        for entry in sorted(os.listdir(figures)):
            if not (entry.endswith(".png") or _TEMP.fullmatch(entry)):
                found.append(f"{FIGURES}/{entry}")
    return found


def check_sweep_dir(out: Path, spec: SweepSpec, *, resume: bool) -> None:
    """Refuse ``out`` unless a sweep of ``spec`` may be written there; change nothing."""
    out = Path(os.path.abspath(out))
    marker = out / MARKER
    unfinished = marker.is_file() and not marker.is_symlink() and not out.is_symlink()
    if unfinished:
        _check_not_locked(out, marker)
        extra = _unexpected(out, spec)
        if extra:
            shown = first_few(extra)
            raise RunDirError(
                f"{out}: holds what this sweep would not write ({shown}); an unfinished sweep "
                "of other points or seeds? give another --out, or move them away"
            )
    else:
        publish.check_target(out, kind=layout.SWEEP_KIND)
        finished = (out / layout.MANIFEST).is_file()
        if resume and not finished:
            raise RunDirError(f"nothing to resume: no sweep at {out} (run without --resume)")
        if finished:
            _check_points(out, spec, read_manifest(out, SweepManifest))


def _check_not_locked(out: Path, marker: Path) -> None:
    """Refuse a sweep directory whose marker another driver holds locked (changes nothing)."""
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return  # gone meanwhile: open_sweep_dir decides
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        raise RunDirError(f"{out}: another reportgen sweep is writing it") from e
    finally:
        os.close(fd)  # releases the lock, if this took it


@contextlib.contextmanager
def open_sweep_dir(out: Path, spec: SweepSpec, *, resume: bool) -> Iterator[None]:
    """Check ``out``, mark it unfinished and hold its lock while the sweep works in it.

    Allowed: a new path, an empty folder, a finished sweep (its files as its
    manifest lists them and nothing else) or an unfinished one of the same
    points and seeds.  ``resume`` demands one of the last two.
    """
    out = Path(os.path.abspath(out))
    check_sweep_dir(out, spec, resume=resume)
    marker = out / MARKER
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise RunDirError(f"{out}: another reportgen sweep is writing it") from e
        os.ftruncate(fd, 0)
        os.write(fd, b"sweep\n")
        os.fsync(fd)
        fileio.fsync_dir(out)
        # From here on the folder is an unfinished sweep: its manifest no longer vouches for it.
        (out / layout.MANIFEST).unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


def _check_points(out: Path, spec: SweepSpec, manifest: SweepManifest) -> None:
    planned = {run_key(p.label, s) for p in spec.points for s in spec.seeds}
    other = sorted(set(manifest.runs) - planned)
    if other:
        raise RunDirError(
            f"{out}: holds a sweep with other runs ({', '.join(other[:3])}); "
            "give another --out to sweep other points or seeds"
        )


def sweep_day(out: Path, spec: SweepSpec) -> str:
    """Return the date of the sweep's reports: the one it started with, else today (UTC).

    Every run of a sweep carries the same ``run.date``, so a sweep resumed on
    another day still gives the bytes of an uninterrupted one.
    """
    for point in spec.points:
        path = out / POINTS / point.label / POINT_CONFIG
        with contextlib.suppress(OSError, ReportgenError):
            day = parse_toml(path.read_text(encoding="utf-8"), source=str(path))["run"]["date"]
            if isinstance(day, str):
                return day
    return with_date(spec.points[0].config).run.date or dt.date.today().isoformat()


def is_complete(out: Path, run: PlannedRun) -> bool:
    """Return whether the run at its place is complete: manifest verifies, config as planned."""
    root = out / run.key
    if not root.is_dir() or root.is_symlink():
        return False
    try:
        manifest = read_intact(root, RunManifest, action="keep")
        config = read_artifact(root, POINT_CONFIG, manifest)
    except (RunDirError, OSError):
        return False
    return config.decode("utf-8", "replace") == run.toml


def can_resume(out: Path, run: PlannedRun) -> bool:
    """Return whether an interrupted attempt of ``run`` left a partial run of the same config."""
    partial = publish.partial_path(out / run.key)
    try:
        return (partial / layout.PARTIAL_MARKER).is_file() and (
            (partial / POINT_CONFIG).read_text(encoding="utf-8") == run.toml
        )
    except OSError:
        return False


def install_archive(out: Path, run: PlannedRun, archive: bytes) -> None:
    """Unpack a run built elsewhere, check every file against its manifest, then publish it."""
    from reportgen.artifacts.archive import unpack_run

    final = out / run.key
    publish.check_target(final)
    with publish.open_staging(final, resume=False) as staging:
        unpack_run(archive, staging)
        manifest = read_intact(staging, RunManifest, action="publish")
        extra = [rel for rel in publish.unlisted(staging, manifest) if rel != layout.PARTIAL_MARKER]
        if extra:
            shown = ", ".join(extra)
            raise RunDirError(f"the run sent back files its manifest does not list: {shown}")
        if (staging / POINT_CONFIG).read_text(encoding="utf-8") != run.toml:
            raise RunDirError("the run sent back was made with another config")
        publish.publish(staging, final)


# --------------------------------------------------------------------------- the log


class SweepLog:
    """Appends one line per event to ``sweep.log`` as it happens and forwards events."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.path, self.progress = path, progress

    def line(self, message: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
            f.flush()

    def info(self, message: str) -> None:
        self.line(message)
        self.progress(Event("info", stage="sweep", message=message))

    def runs(self, done: int, total: int, failed: int, message: str = "") -> None:
        text = f"runs {done}/{total} done, {failed} failed"
        self.progress(Event("runs", stage="sweep", done=done, total=total,
                            message=message or text, failed=failed))  # fmt: skip


# --------------------------------------------------------------------------- running


def schedule(
    pending: Sequence[PlannedRun],
    executor: Executor,
    out: Path,
    log: SweepLog,
    result: SweepResult,
    *,
    argv: Sequence[str],
    timings: dict[str, float],
    code_dir: str | None = None,
) -> None:
    """Run every pending run on ``executor``, retrying a failed one once.

    ``code_dir`` is where a ``kind = "python"`` model's factory may be imported from.
    """
    total = len(result.planned)
    queue = [(run, 1) for run in pending]
    running: dict[str, tuple[PlannedRun, float]] = {}

    def start(run: PlannedRun, attempt: int) -> None:
        task = RunTask(
            run.key, run.toml, threads=run.config.runtime.threads,
            gpu=run.config.runtime.device == "cuda",
            resume=executor.name == "local" and can_resume(out, run),
            attempt=attempt, argv=tuple(argv), code_dir=code_dir,
        )  # fmt: skip
        where = executor.submit(task)
        how = "continuing from its checkpoint" if task.resume else "started"
        log.line(f"{run.key}: attempt {attempt} {how} on {where}")
        running[run.key] = (run, time.perf_counter())

    def done_count() -> int:
        return len(result.skipped) + len(result.succeeded) + len(result.failed)

    while queue or running:
        while queue and len(running) < executor.slots:
            start(*queue.pop(0))
        outcome = executor.wait()
        run, started = running.pop(outcome.task.key)
        error = outcome.error
        if outcome.ok:
            try:
                if outcome.archive is not None:
                    install_archive(out, run, outcome.archive)
                read_intact(out / run.key, RunManifest, action="keep")
            except (ReportgenError, OSError) as e:
                error = f"the finished run does not verify: {e}"
        if not error:
            timings[run.key] = round(time.perf_counter() - started, 3)
            result.succeeded.append(run.key)
            log.line(f"{run.key}: done in {timings[run.key]:.1f} s")
        elif outcome.task.attempt < ATTEMPTS:
            log.info(f"{run.key}: attempt {outcome.task.attempt} failed ({error}); retrying")
            queue.insert(0, (run, outcome.task.attempt + 1))
            continue
        else:
            result.failed[run.key] = error
            log.info(f"{run.key}: failed after {ATTEMPTS} attempts: {error}")
        log.runs(done_count(), total, len(result.failed))


def run_sweep(
    spec: SweepSpec,
    out: Path,
    executor: Executor | None = None,
    *,
    make_executor: Callable[[], Executor] | None = None,
    resume: bool = False,
    fail_under: Mapping[str, float] | None = None,
    argv: Sequence[str] = (),
    progress: Progress = silent,
    pdf: bool = True,
) -> SweepResult:
    """Run every point × seed of ``spec`` into ``out`` and write the sweep report.

    ``make_executor`` is called (with no arguments) only when some run is
    left to do, so that a finished sweep re-renders without starting workers;
    ``executor`` is used as given.  ``fail_under`` holds ``MODEL.METRIC``
    minimums checked against the mean over seeds of every point.
    """
    for point in spec.points:  # what the data can refuse, refused before any run starts
        check_config(point.config)
    out = Path(out)
    start_time = time.perf_counter()
    check_sweep_dir(out, spec, resume=resume)
    made: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if executor is None and make_executor is not None and _work_left(out, spec):
        # Before the directory is made: an executor that cannot start (a Ray
        # cluster out of reach) leaves nothing behind.
        executor = make_executor()
        made = contextlib.closing(executor)
    with made, open_sweep_dir(out, spec, resume=resume):
        day = sweep_day(out, spec)
        planned = plan_runs(spec, day)
        result = SweepResult(out, planned)
        log = SweepLog(out / LOG_NAME, progress)
        log.line(f"sweep {spec.source}: {len(spec.points)} points × {len(spec.seeds)} seeds")
        try:
            for point in spec.points:
                fileio.write_atomic(
                    out / POINTS / point.label / POINT_CONFIG, point_config(spec, point.label, day)
                )
            pending = []
            for run in planned:
                if is_complete(out, run):
                    result.skipped.append(run.key)
                    log.line(f"{run.key}: complete already; kept")
                else:
                    pending.append(run)
            log.runs(len(result.skipped), len(planned), 0)
            timings: dict[str, float] = {}
            if pending:
                if executor is None:
                    if make_executor is None:
                        raise ValueError("run_sweep needs an executor or make_executor")
                    executor = make_executor()
                log.info(
                    f"{len(pending)} of {len(planned)} runs to do on the {executor.name} executor"
                )
                try:
                    schedule(
                        pending,
                        executor,
                        out,
                        log,
                        result,
                        argv=argv,
                        timings=timings,
                        code_dir=spec.code_dir,
                    )
                finally:
                    executor.close()
            log.info("writing the sweep report")
            outputs = build_outputs(spec, planned, out, result.failed, pdf=pdf)
            result.thresholds = check_mean_thresholds(outputs.table, fail_under or {})
            for name, data in outputs.files.items():
                fileio.write_atomic(out / name, data)
            result.seconds = round(time.perf_counter() - start_time, 3)
            fileio.write_json(out / TIMINGS, {"runs_s": timings, "total_s": result.seconds})
            log.line(f"done: {len(result.succeeded)} run, {len(result.skipped)} kept, "
                     f"{len(result.failed)} failed")  # fmt: skip
            if not result.failed:
                _write_manifest(out, planned, list(outputs.files))
        except OSError as e:
            raise OutputError(f"cannot write {e.filename or out}: {e.strerror or e}") from e
    return result


def _work_left(out: Path, spec: SweepSpec) -> bool:
    """Return whether some run of ``spec`` is not complete at ``out`` yet (reads only)."""
    planned = plan_runs(spec, sweep_day(out, spec))
    return not all(is_complete(out, run) for run in planned)


def _write_manifest(out: Path, planned: Sequence[PlannedRun], files: Sequence[str]) -> None:
    """List every file of the finished sweep, then drop the unfinished marker."""
    listed = [*files, TIMINGS, LOG_NAME]
    listed += sorted({f"{POINTS}/{run.point}/{POINT_CONFIG}" for run in planned})
    for run in planned:
        manifest = read_manifest(out / run.key, RunManifest)
        listed += [f"{run.key}/{rel}" for rel in manifest.artifacts]
        listed += [f"{run.key}/{layout.MANIFEST}", f"{run.key}/{layout.LOG}"]
    SweepManifest(runs=[run.key for run in planned], artifacts=artifact_hashes(out, listed)).write(
        out / layout.MANIFEST
    )
    (out / MARKER).unlink()
    fileio.fsync_dir(out)


def parse_fail_under(items: Sequence[str], models: Sequence[str]) -> dict[str, float]:
    """Return ``MODEL.METRIC=VALUE`` items as minimums, refusing unknown models or metrics."""
    minimums = {}
    for item in items:
        key, sep, raw = item.partition("=")
        model, _, metric = key.strip().partition(".")
        try:
            minimum = float(raw)
        except ValueError:
            minimum = float("nan")
        if not sep or model not in models or metric not in GATE_METRICS or not 0 <= minimum <= 1:
            raise ConfigError(
                f"--fail-under {item!r}: expected MODEL.METRIC=VALUE with MODEL one of "
                f"{', '.join(models)}, METRIC one of {', '.join(GATE_METRICS)} and VALUE in [0, 1]"
            )
        minimums[key.strip()] = minimum
    return dict(sorted(minimums.items()))
