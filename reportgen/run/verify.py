"""Prove a run reproducible: re-run its saved config and compare every artifact's hash."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reportgen.artifacts.manifest import (
    ArtifactEntry,
    EnvironmentFacts,
    InputFile,
    RunManifest,
    read_intact,
    read_manifest,
)
from reportgen.artifacts.runconfig import read_config
from reportgen.config.loading import validate
from reportgen.config.schema import Config, default_data_root
from reportgen.core.errors import ConfigError
from reportgen.core.events import Progress, silent
from reportgen.core.fileio import sha256_path
from reportgen.data.sources import source_for
from reportgen.run.font import font_disagreement


@dataclass(frozen=True)
class ArtifactCheck:
    """One artifact: its hash in the original run and in the re-run."""

    path: str
    recorded: str | None
    reproduced: str | None

    @property
    def status(self) -> str:
        if self.recorded is None:
            return "extra"
        if self.reproduced is None:
            return "missing"
        return "match" if self.recorded == self.reproduced else "differs"


@dataclass(frozen=True)
class Verification:
    """The outcome of a verification: per-artifact checks and environment differences."""

    checks: list[ArtifactCheck]
    environment: list[str]
    notes: list[str] = field(default_factory=list)
    data_problem: str | None = None  # the data differ from the run's fingerprint: not re-run

    @property
    def ok(self) -> bool:
        return self.data_problem is None and all(c.status == "match" for c in self.checks)


def compare_artifacts(
    recorded: Mapping[str, ArtifactEntry], reproduced: Mapping[str, ArtifactEntry]
) -> list[ArtifactCheck]:
    """Return one check per artifact named in either manifest, sorted by path."""
    return [
        ArtifactCheck(
            path,
            recorded[path].sha256 if path in recorded else None,
            reproduced[path].sha256 if path in reproduced else None,
        )
        for path in sorted(set(recorded) | set(reproduced))
    ]


def environment_differences(old: EnvironmentFacts, new: EnvironmentFacts) -> list[str]:
    """Return a line per environment fact (version, CPU, threads, commit) that changed."""
    lines = []
    pairs = [
        *((f"{k} version", old.versions.get(k), new.versions.get(k))
          for k in sorted(set(old.versions) | set(new.versions))),
        *((f"hardware {k}", old.hardware.get(k), new.hardware.get(k))
          for k in ("cpu", "cpu_capability", "machine", "device", "gpu")),
        ("threads", old.threads, new.threads),
        ("project commit", old.git_commit, new.git_commit),
    ]  # fmt: skip
    for what, before, after in pairs:
        if before != after:
            lines.append(f"{what}: {before} → {after}")
    return lines


def python_factories(config: Config) -> list[str]:
    """Return ``models.NAME.factory = module:callable`` for every model that runs user code."""
    return [
        f"models.{name}.factory = {spec.factory}"
        for name, spec in config.model_items()
        if spec.kind == "python"
    ]


def data_problem(
    config: Config, recorded: Mapping[str, str], *, data_path: Path | None
) -> str | None:
    """Return why the data now differ from the fingerprint the run recorded, or None.

    The data's source says what identifies them now: MNIST and Fashion-MNIST
    are pinned by their official hashes, so a run that recorded other ones
    was made from other files; an image folder is fingerprinted again (paths
    and contents, nothing decoded).
    """
    source = source_for(config.data.dataset)
    current, where = source.fingerprint(config.data, data_path=data_path)
    if dict(recorded) == current:
        return None
    changed = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    first = changed[0]
    return (
        f"the data differ from the run's fingerprint: {where} have {first} "
        f"{str(current.get(first))[:12]}…, the run recorded {str(recorded.get(first))[:12]}… "
        "(a file was added, removed, renamed or changed)"
    )


def input_problem(recorded: Mapping[str, InputFile]) -> str | None:
    """Return why a file a model came from is not the one the run read, or None.

    Each recorded path is read as the run's config gives it (a relative one
    from the current directory, as the run was made).
    """
    for key, entry in sorted(recorded.items()):
        path = Path(entry.path).expanduser()
        if not path.is_file():
            return (
                f"{key} = {entry.path!r} is missing (the run read it; a relative path is found "
                "from the directory the run was made from)"
            )
        if (current := sha256_path(path)) != entry.sha256:
            return (
                f"{key} = {entry.path!r} changed since the run: SHA-256 {current[:12]}…, the run "
                f"recorded {entry.sha256[:12]}…"
            )
    return None


def verify_run(
    run_dir: Path,
    *,
    data_root: str | None = None,
    data_path: Path | None = None,
    allow_code: bool = False,
    progress: Progress = silent,
    info: Callable[[str], None] = lambda message: None,
) -> Verification:
    """Re-run ``run_dir`` from its resolved config into a temporary directory and compare.

    A run directory may come from anywhere, so it is data, never code: its
    manifest is checked first and a run whose files differ from it is
    refused before anything is built, as is a run whose recorded input files
    (a model's checkpoint or predictions file, ``report.font``) are missing or changed
    (``data_problem``: one line, nothing re-run).  Of the run's config, only settings
    are used: the data come from ``data_root`` (default: the per-user cache,
    never the run's ``data.root``) or, for an image folder, ``data_path``
    (default: the run's ``data.path``), whose fingerprint must match the
    run's before anything is trained; the report is rendered with the
    packaged templates only (never the run's ``report.templates``).  A run
    whose config names a ``kind = "python"`` factory is re-run only with
    ``allow_code``, importing from the installed packages and the current
    directory, never from the run directory: a factory whose module, or a
    package above it, would be found inside the run directory is refused
    before anything is imported from there.

    Raises
    ------
    RunDirError
        ``run_dir`` is not a run, or a file differs from its manifest.
    ConfigError
        The run needs user code and ``allow_code`` is false, or its factory
        module would be imported from inside ``run_dir``.
    """
    from reportgen.run import pipeline  # the run imports torch: only when a run is verified
    from reportgen.train.factory import refuse_code_from

    manifest = read_intact(run_dir, RunManifest, action="verify")
    config, _ = read_config(run_dir, manifest)
    factories = python_factories(config)
    if factories and not allow_code:
        raise ConfigError(
            f"{run_dir}: its config runs user code ({'; '.join(factories)}); verifying it "
            "imports that module: pass --allow-code if you trust it"
        )
    code_dir = Path.cwd()
    if factories:
        _refuse_code_inside(run_dir, code_dir)
        for name, spec in config.model_items():
            if spec.factory is not None:
                refuse_code_from(f"models.{name}.factory", spec.factory, run_dir,
                                 code_dir=code_dir)  # fmt: skip
    if data_path is None:
        _check_recorded_folder(run_dir, config)
    problem = (
        font_disagreement(config, manifest)
        or input_problem(manifest.inputs)
        or data_problem(config, manifest.data_files, data_path=data_path)
    )
    if problem is not None:
        return Verification(checks=[], environment=[], data_problem=problem)
    if data_path is not None:
        config = _with_data_path(config, data_path)
    if factories:
        where = f"from the installed packages or {code_dir}"
        info(f"importing user code: {'; '.join(factories)} ({where})")
    with tempfile.TemporaryDirectory(prefix="reportgen-verify-") as tmp:
        rerun = pipeline.run(
            config, out=Path(tmp) / "run", data_root=data_root or default_data_root(),
            config_templates=False, fill_date=False, code_dir=code_dir if factories else None,
            progress=progress,
        )  # fmt: skip
        reproduced = read_manifest(rerun.path, RunManifest)
    notes = []
    if config.report.templates is not None:
        notes.append(
            "the run was rendered with report.templates; verify renders with the packaged "
            "templates only, so report.html and report.pdf are expected to differ"
        )
    if data_path is not None:
        notes.append(
            f"the images were read from {data_path}; config.toml records data.path, so it is "
            "expected to differ if that path differs"
        )
    return Verification(
        checks=compare_artifacts(manifest.artifacts, reproduced.artifacts),
        environment=environment_differences(manifest.environment, reproduced.environment),
        notes=notes,
    )


def _check_recorded_folder(run_dir: Path, config: Config) -> None:
    """Refuse, naming ``--data-path``, a recorded relative image folder not found from here."""
    recorded = config.data.path
    if config.data.dataset != "imagefolder" or recorded is None:
        return
    path = Path(os.path.expanduser(recorded))
    if not path.is_absolute() and not path.is_dir():
        raise ConfigError(
            f"{run_dir}: its image folder, data.path = {recorded!r}, is relative to the "
            f"directory the run was made from and is not found from {Path.cwd()}; pass "
            "--data-path DIR (the image folder), or verify from that directory"
        )


def _with_data_path(config: Config, path: Path) -> Config:
    """Return ``config`` reading its image folder from ``path``."""
    data = config.model_dump(mode="json", exclude_none=True)
    data["data"]["path"] = str(path)
    return validate(data)


def _refuse_code_inside(run_dir: Path, code_dir: Path) -> None:
    """Refuse to import from a directory that is, or is inside, the run directory."""
    run, here = run_dir.resolve(), code_dir.resolve()
    if here == run or run in here.parents:
        raise ConfigError(
            f"{run_dir}: verify never imports code from inside a run directory; "
            "run it from another directory"
        )
