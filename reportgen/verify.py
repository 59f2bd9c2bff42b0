"""Prove a run reproducible: re-run its saved config and compare every artifact's hash."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen import rundir
from reportgen.config import default_data_root


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

    @property
    def ok(self) -> bool:
        return all(c.status == "match" for c in self.checks)


def compare_artifacts(
    recorded: Mapping[str, Mapping[str, Any]], reproduced: Mapping[str, Mapping[str, Any]]
) -> list[ArtifactCheck]:
    """Return one check per artifact named in either manifest, sorted by path."""
    return [
        ArtifactCheck(
            path,
            recorded[path]["sha256"] if path in recorded else None,
            reproduced[path]["sha256"] if path in reproduced else None,
        )
        for path in sorted(set(recorded) | set(reproduced))
    ]


def environment_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Return a line per environment fact (version, CPU, threads, commit) that changed."""
    lines = []
    pairs = [
        *((f"{k} version", old.get("versions", {}).get(k), new.get("versions", {}).get(k))
          for k in sorted(set(old.get("versions", {})) | set(new.get("versions", {})))),
        *((f"hardware {k}", old.get("hardware", {}).get(k), new.get("hardware", {}).get(k))
          for k in ("cpu", "cpu_capability", "machine", "device", "gpu")),
        ("threads", old.get("threads"), new.get("threads")),
        ("project commit", old.get("git_commit"), new.get("git_commit")),
    ]  # fmt: skip
    for what, before, after in pairs:
        if before != after:
            lines.append(f"{what}: {before} → {after}")
    return lines


def verify_run(
    run_dir: Path, *, data_root: str | None = None, progress: Any = None
) -> Verification:
    """Re-run ``run_dir`` from its resolved config into a temporary directory and compare.

    A run directory may come from anywhere, so it is data, never code: its
    manifest is checked first and a run whose files differ from it is
    refused before anything is built.  Of the run's config, only settings
    are used: the data come from ``data_root`` (default: the per-user cache,
    never the run's ``data.root``) and the report is rendered with the
    packaged templates only (never the run's ``report.templates``).

    Raises
    ------
    RunDirError
        ``run_dir`` is not a run, or a file differs from its manifest.
    """
    from reportgen import pipeline
    from reportgen.context import read_config

    manifest = rundir.read_intact(run_dir, action="verify")
    config, _ = read_config(run_dir, manifest)
    with tempfile.TemporaryDirectory(prefix="reportgen-verify-") as tmp:
        kwargs = {"progress": progress} if progress is not None else {}
        rerun = pipeline.run(
            config, out=Path(tmp) / "run", data_root=data_root or default_data_root(),
            config_templates=False, fill_date=False, **kwargs,
        )  # fmt: skip
        reproduced = rundir.read_manifest(rerun.path)
    notes = []
    if config.report.templates is not None:
        notes.append(
            "the run was rendered with report.templates; verify renders with the packaged "
            "templates only, so report.html and report.pdf are expected to differ"
        )
    return Verification(
        checks=compare_artifacts(manifest["artifacts"], reproduced["artifacts"]),
        environment=environment_differences(manifest["environment"], reproduced["environment"]),
        notes=notes,
    )
