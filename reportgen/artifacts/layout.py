"""Where each file of a run (and of a comparison) lives, and which files are its artifacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
LOG = "run.log"  # this execution's log: timings vary, so it is outside the hashed artifacts
WORK = "work"  # checkpoints: inside the partial directory only, never published
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
PARTIAL_MARKER = ".reportgen-partial"  # marks a partial directory as reportgen's own

RUN_KIND, COMPARE_KIND, SWEEP_KIND = "run", "compare", "sweep"
KIND_NAMES = {RUN_KIND: "run", COMPARE_KIND: "comparison", SWEEP_KIND: "sweep"}


@dataclass(frozen=True)
class RunPaths:
    """Where each artifact of a run lives, below its root (``RunPaths(Path())``: relative paths)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.csv"

    @property
    def per_class(self) -> Path:
        return self.root / "per_class.csv"

    @property
    def label_issues(self) -> Path:
        return self.root / "label_issues.csv"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def html(self) -> Path:
        return self.root / "report.html"

    @property
    def pdf(self) -> Path:
        return self.root / "report.pdf"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def scalars(self) -> Path:
        return self.root / "scalars.json"

    @property
    def model_card(self) -> Path:
        return self.root / "model_card.md"

    @property
    def log(self) -> Path:
        return self.root / LOG

    @property
    def work(self) -> Path:
        return self.root / WORK

    def weights(self, model: str) -> Path:
        return self.models / f"{model}.pt"

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"

    def curves(self, model: str) -> Path:
        return self.root / "curves" / f"{model}.csv"

    def confusion(self, model: str) -> Path:
        return self.root / "confusion" / f"{model}.csv"


RUN_FILES = RunPaths(Path())  # every artifact's path relative to the run: the names manifests use


@dataclass(frozen=True)
class ComparePaths:
    """The files of a comparison (``reportgen compare``), below its root."""

    root: Path

    @property
    def html(self) -> Path:
        return self.root / "compare.html"

    @property
    def pdf(self) -> Path:
        return self.root / "compare.pdf"

    @property
    def figure(self) -> Path:
        return self.root / "compare_history.png"

    @property
    def csv(self) -> Path:
        return self.root / "compare.csv"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST


def artifacts(root: Path) -> Iterator[Path]:
    """Yield every file reportgen wrote into a run, except the manifest and log, sorted.

    Links are never followed nor listed: reportgen writes none, and a link
    could make the manifest vouch for a file outside the run.
    """
    found = []
    for current, dirs, files in os.walk(root, followlinks=False):
        base = Path(current)
        dirs[:] = [d for d in dirs if not (base == root and d == WORK)]
        for name in files:
            path = base / name
            rel = path.relative_to(root).as_posix()
            hidden = name.startswith(".")  # temporary files of an interrupted write, the marker
            if not hidden and rel not in (MANIFEST, LOG) and not path.is_symlink():
                found.append(path)
    yield from sorted(found, key=lambda p: p.relative_to(root).parts)


def check_relpath(rel: str) -> str:
    """Return ``rel`` if it names a file inside a run; refuse ``..``, absolute and odd paths."""
    parts = rel.split("/")
    if (
        not rel
        or rel.startswith("/")
        or "\\" in rel
        or any(ord(c) < 32 or c == "\x7f" for c in rel)
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        or parts[0] == WORK
        or rel in (MANIFEST, LOG)
    ):
        raise ValueError(f"{rel!r} is not a relative path inside the run")
    return rel
