"""Helpers for the sweep tests: workers that accept the generated MNIST files, sweep files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from reportgen.data import idx
from reportgen.data.idx import FileSpec

from .conftest import quick_overrides


def accept_files(specs: Mapping[str, tuple[int, str]]) -> None:
    """Worker setup: accept the generated MNIST files (``name -> (size, sha256)``)."""
    idx.MNIST_FILES = {name: FileSpec(size, sha) for name, (size, sha) in specs.items()}


def plain_specs(specs: Mapping[str, FileSpec]) -> dict[str, tuple[int, str]]:
    return {name: (spec.size, spec.sha256) for name, spec in specs.items()}


def quick_settings(root: Path, *extra: str) -> dict[str, object]:
    """Return ``[overrides]`` for fast runs on the generated data at ``root``."""
    items = [*quick_overrides(root), "train.epochs=1", "runtime.threads=1", "report.pdf=false",
             *extra]  # fmt: skip
    settings: dict[str, object] = {}
    for item in items:
        key, _, raw = item.partition("=")
        settings[key] = json.loads(raw) if raw[:1] in '"[' or raw[:1].isdigit() else raw
        if raw in ("true", "false"):
            settings[key] = raw == "true"
    return settings


def write_sweep(
    path: Path,
    *,
    seeds: Sequence[int],
    overrides: Mapping[str, object],
    grid: Mapping[str, Sequence[object]] | None = None,
    extra: str = "",
) -> Path:
    """Write a sweep file; values are written as JSON, which TOML reads the same."""
    lines = [f"seeds = {json.dumps(list(seeds))}", extra, "[overrides]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in overrides.items()]
    if grid:
        lines.append("[grid]")
        lines += [f"{json.dumps(k)} = {json.dumps(list(v))}" for k, v in grid.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
