"""``manifest.json``: the typed contract of every output's manifest (run, comparison, sweep).

A manifest lists the SHA-256 and size of every other file of its output, so
that a reader can refuse a file that was changed, added or taken away.  It
is built as one of the models below and written with :meth:`Manifest.write`;
it is read back only through :func:`read_manifest` (or :func:`read_intact`,
which also checks every listed file), which validates the whole document
first: strict types, no unknown keys, every listed path inside the output.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reportgen.artifacts.layout import (
    COMPARE_KIND,
    KIND_NAMES,
    MANIFEST,
    RUN_KIND,
    SWEEP_KIND,
    artifacts,
    check_relpath,
)
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import (
    open_inside,
    read_listed,
    sha256_bytes,
    sha256_path,
    sha256_stream,
    write_json,
)
from reportgen.core.text import one_line

MANIFEST_MAX_BYTES = 16 << 20  # a real manifest is a few kB; a huge one is not a manifest
_SHA256 = re.compile(r"[0-9a-f]{64}")
Sha256 = Annotated[str, Field(pattern=_SHA256.pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArtifactEntry(_Strict):
    """One listed file: its SHA-256 and size in bytes."""

    sha256: str
    size: int = Field(ge=0)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError("must be 64 lowercase hexadecimal digits")
        return value

    @classmethod
    def of(cls, path: Path) -> ArtifactEntry:
        """Return the entry of the file at ``path``."""
        return cls(sha256=sha256_path(path), size=path.stat().st_size)


def artifact_hashes(root: Path, rels: list[str] | None = None) -> dict[str, ArtifactEntry]:
    """Return ``{relative path: entry}`` for ``rels``, by default every artifact below ``root``."""
    if rels is None:
        rels = [path.relative_to(root).as_posix() for path in artifacts(root)]
    return {rel: ArtifactEntry.of(root / rel) for rel in sorted(rels)}


class EnvironmentFacts(_Strict):
    """What a run depended on besides its config (see :mod:`reportgen.core.environment`)."""

    versions: dict[str, str]
    hardware: dict[str, str | None]
    threads: int = Field(ge=1)
    parallel_info: str
    git_commit: str | None = None


class Manifest(_Strict):
    """What every manifest holds: its schema version, its kind and its listed files."""

    KIND: ClassVar[str]
    schema_version: Literal[1] = Field(default=1, alias="schema")
    artifacts: dict[str, ArtifactEntry]

    @field_validator("artifacts")
    @classmethod
    def _safe_paths(cls, value: dict[str, ArtifactEntry]) -> dict[str, ArtifactEntry]:
        for rel in value:
            check_relpath(rel)
        return value

    def dump(self) -> dict[str, object]:
        """Return the manifest as JSON data."""
        return self.model_dump(mode="json", by_alias=True)

    def write(self, path: Path) -> None:
        """Write the manifest atomically (sorted keys, so equal manifests are equal bytes)."""
        write_json(path, self.dump())


class InputFile(_Strict):
    """A file a run read besides its data: a model's checkpoint or predictions file, or the
    supplied font (``report.font``)."""

    path: str  # as the run's config.toml gives it
    sha256: Sha256
    size: int = Field(ge=0)


class RunManifest(Manifest):
    """``manifest.json`` of a run (``reportgen run``)."""

    KIND: ClassVar[str] = RUN_KIND
    kind: Literal["run"] = "run"  # runs written before kinds existed have none
    run_name: str
    seed: int = Field(ge=0)
    command: list[str]  # the command line that made the run
    data_files: dict[str, str]  # the data's fingerprint: file name (or "folder") -> SHA-256
    data_source: str  # where the data came from: "cache", a download, a package, a folder
    environment: EnvironmentFacts
    timings_s: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    # Setting (models.NAME.checkpoint or .predictions, report.font) -> the file it named, when
    # it was read; absent when the run read none, so a run of trained models keeps its
    # manifest's shape.
    inputs: dict[str, InputFile] = Field(default_factory=dict, exclude_if=lambda value: not value)


class CompareManifest(Manifest):
    """``manifest.json`` of a comparison (``reportgen compare``)."""

    KIND: ClassVar[str] = COMPARE_KIND
    kind: Literal["compare"] = "compare"
    inputs: dict[str, Sha256]  # run label -> SHA-256 of that run's manifest.json


class SweepManifest(Manifest):
    """``manifest.json`` of a sweep (``reportgen sweep``): its own files and every run's."""

    KIND: ClassVar[str] = SWEEP_KIND
    kind: Literal["sweep"] = "sweep"
    runs: list[str]  # every run's folder, relative to the sweep


AnyManifest = RunManifest | CompareManifest | SweepManifest
MANIFEST_MODELS: dict[str, type[AnyManifest]] = {
    RUN_KIND: RunManifest,
    COMPARE_KIND: CompareManifest,
    SWEEP_KIND: SweepManifest,
}
M = TypeVar("M", RunManifest, CompareManifest, SweepManifest)


def validation_problem(error: ValidationError) -> str:
    """Return pydantic's first complaint as ``field.path: what is wrong`` (and how many more).

    A complaint about the whole document (invalid JSON, or a check across
    fields, whose message names the fields itself) has no path.
    """
    first = error.errors(include_url=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    where = where.removeprefix(".")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def parse_manifest(data: object, *, source: str = MANIFEST) -> AnyManifest:
    """Return parsed JSON as the manifest model of its kind; a problem names the field."""
    if not isinstance(data, dict):
        raise RunDirError(f"{source}: not a reportgen manifest")
    found = data.get("kind", RUN_KIND)
    model = MANIFEST_MODELS.get(found) if isinstance(found, str) else None
    if model is None:
        raise RunDirError(f"{source}: unknown kind {found!r}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RunDirError(f"{source} is malformed: {validation_problem(e)}") from e


def read_any_manifest(root: Path) -> AnyManifest:
    """Return the validated manifest of any reportgen output, refusing anything else.

    The manifest must be a regular file (not a link), at most 16 MiB, and
    every listed path must stay inside ``root``.
    """
    if not root.is_dir():
        raise RunDirError(f"{root}: no such run directory")
    try:
        raw = read_listed(root, MANIFEST, limit=MANIFEST_MAX_BYTES)
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a reportgen run (no {MANIFEST})") from e
    except (OSError, RunDirError) as e:
        raise RunDirError(f"{root}: unreadable {MANIFEST}: {one_line(e)}") from e
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise RunDirError(f"{root}: {MANIFEST} is not valid JSON: {one_line(e)}") from e
    return parse_manifest(data, source=f"{root}: {MANIFEST}")


def read_manifest(root: Path, expected: type[M] = RunManifest) -> M:  # type: ignore[assignment]
    """Return the validated manifest of ``root``, refusing an output of another kind."""
    manifest = read_any_manifest(root)
    if not isinstance(manifest, expected):
        found, wanted = KIND_NAMES[manifest.KIND], KIND_NAMES[expected.KIND]
        raise RunDirError(f"{root}: is a reportgen {found}, not a {wanted}")
    return manifest


def _hash_listed(root: Path, rel: str) -> str:
    with os.fdopen(open_inside(root, rel), "rb") as f:
        return sha256_stream(f)


def read_artifact(
    root: Path, rel: str, manifest: Manifest, *, what: str = "", hint: str = ""
) -> bytes:
    """Return a listed artifact's bytes, refusing one unlisted, missing or differing.

    The bytes are read once and hashed in memory, so what is checked is what is used.
    """
    recorded = manifest.artifacts.get(rel)
    if recorded is None:
        raise RunDirError(f"{root}: {what}{rel} is not listed in its {MANIFEST}{hint}")
    try:
        data = read_listed(root, rel)
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a complete run ({what}{rel} is missing){hint}") from e
    except OSError as e:
        raise RunDirError(f"{root / rel}: unreadable: {one_line(e)}") from e
    if (actual := sha256_bytes(data)) != recorded.sha256:
        raise RunDirError(
            f"{root}: {rel} does not match its SHA-256 in {MANIFEST} "
            f"({rel}: SHA-256 {actual}, manifest says {recorded.sha256}; tampered with?)"
        )
    return data


def check_artifacts(root: Path, recorded: Mapping[str, ArtifactEntry]) -> list[str]:
    """Return a line per listed artifact that is missing, a link or differs (empty: all match)."""
    problems = []
    for rel, expected in sorted(recorded.items()):
        try:
            actual = _hash_listed(root, rel)
        except FileNotFoundError:
            problems.append(f"{rel}: missing")
        except RunDirError:
            problems.append(f"{rel}: a symbolic link or not a regular file")
        except OSError as e:
            problems.append(f"{rel}: unreadable ({one_line(e)})")
        else:
            if actual != expected.sha256:
                problems.append(f"{rel}: SHA-256 {actual}, manifest says {expected.sha256}")
    return problems


def read_intact(root: Path, expected: type[M] = RunManifest, *, action: str) -> M:  # type: ignore[assignment]
    """Return the manifest of ``root`` after checking every listed file against it.

    Raises :class:`RunDirError` naming the first differing files, before any
    of them is used: "refusing to ``action`` a tampered run".
    """
    manifest = read_manifest(root, expected)
    problems = check_artifacts(root, manifest.artifacts)
    if problems:
        more = "; …" if len(problems) > 3 else ""
        raise RunDirError(
            f"{root}: files differ from its manifest ({'; '.join(problems[:3])}{more}); "
            f"refusing to {action} a tampered {KIND_NAMES[expected.KIND]}"
        )
    return manifest
