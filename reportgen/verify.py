"""Prove a run reproducible: re-run its saved config and compare every artifact's hash."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import rundir
from reportgen.config import load_config


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
    tampered: list[str]

    @property
    def ok(self) -> bool:
        return not self.tampered and all(c.status == "match" for c in self.checks)


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


def verify_run(run_dir: Path, *, progress: Any = None) -> Verification:
    """Re-run ``run_dir`` from its resolved config into a temporary directory and compare."""
    from reportgen import pipeline

    manifest = rundir.read_manifest(run_dir)
    tampered = rundir.check_artifacts(run_dir, manifest["artifacts"])
    config = load_config(rundir.RunPaths(run_dir).config)
    with tempfile.TemporaryDirectory(prefix="reportgen-verify-") as tmp:
        kwargs = {"progress": progress} if progress is not None else {}
        rerun = pipeline.run(config, out=Path(tmp) / run_dir.name, **kwargs)
        reproduced = rundir.read_manifest(rerun.path)
    return Verification(
        checks=compare_artifacts(manifest["artifacts"], reproduced["artifacts"]),
        environment=environment_differences(manifest["environment"], reproduced["environment"]),
        tampered=tampered,
    )
