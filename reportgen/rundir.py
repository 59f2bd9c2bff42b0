"""The run directory: layout, atomic writes, manifest and atomic publish.

A run is built in a hidden sibling ``.<name>.partial`` and swapped into
place only when complete, so the published path always holds some complete
run.  The partial directory survives a kill and is what ``--resume`` picks up.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reportgen.errors import RunDirError
from reportgen.formatting import first_few

MANIFEST = "manifest.json"
LOG = "run.log"  # this execution's log: timings vary, so it is outside the hashed artifacts
WORK = "work"  # checkpoints: inside the partial directory only, never published
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
PARTIAL_MARKER = ".reportgen-partial"  # marks a partial directory as reportgen's own

# --------------------------------------------------------------------------- atomic files


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (new names, renames)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        # A failed write or fsync (a full disk) names no file: name the one being written.
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON with sorted keys and a final newline: stable bytes for stable data."""
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return _sha256_stream(f)


def _sha256_stream(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class RunPaths:
    """Where each artifact of a run lives, relative to its root."""

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
    def log(self) -> Path:
        return self.root / LOG

    @property
    def work(self) -> Path:
        return self.root / WORK

    def weights(self, model: str) -> Path:
        return self.models / f"{model}.pt"

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"


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


def artifact_hashes(root: Path) -> dict[str, dict[str, Any]]:
    """Return ``{relative path: {sha256, size}}`` for every artifact of a run."""
    return {
        path.relative_to(root).as_posix(): {
            "sha256": sha256_path(path),
            "size": path.stat().st_size,
        }
        for path in artifacts(root)
    }


# --------------------------------------------------------------------------- the manifest


RUN_KIND, COMPARE_KIND, SWEEP_KIND = "run", "compare", "sweep"
KIND_NAMES = {RUN_KIND: "run", COMPARE_KIND: "comparison", SWEEP_KIND: "sweep"}
MANIFEST_MAX_BYTES = 16 << 20  # a real manifest is a few kB; a huge one is not a manifest
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class ArtifactEntry(_Strict):
    """One listed file: its SHA-256 and size in bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    sha256: str
    size: int = Field(ge=0)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.fullmatch(value):
            raise ValueError("must be 64 lowercase hexadecimal digits")
        return value


class EnvironmentFacts(_Strict):
    """What a run depended on besides its config (see :mod:`reportgen.environment`)."""

    versions: dict[str, str]
    hardware: dict[str, str | None]
    threads: int = Field(ge=1)
    parallel_info: str
    git_commit: str | None = None


class _Manifest(_Strict):
    schema_version: Literal[1] = Field(alias="schema")
    artifacts: dict[str, ArtifactEntry]

    @field_validator("artifacts")
    @classmethod
    def _safe_paths(cls, value: dict[str, ArtifactEntry]) -> dict[str, ArtifactEntry]:
        for rel in value:
            check_relpath(rel)
        return value


class RunManifest(_Manifest):
    """``manifest.json`` of a run (``reportgen run``)."""

    kind: Literal["run"] = "run"  # runs written before kinds existed have none
    seed: int = Field(ge=0)
    data_files: dict[str, str]
    environment: EnvironmentFacts


class CompareManifest(_Manifest):
    """``manifest.json`` of a comparison (``reportgen compare``)."""

    kind: Literal["compare"]
    inputs: dict[str, str]  # run label -> SHA-256 of that run's manifest.json


class SweepManifest(_Manifest):
    """``manifest.json`` of a sweep (``reportgen sweep``): its own files and every run's."""

    kind: Literal["sweep"]
    runs: list[str]  # every run's folder, relative to the sweep


MANIFEST_MODELS: dict[str, type[_Manifest]] = {
    RUN_KIND: RunManifest,
    COMPARE_KIND: CompareManifest,
    SWEEP_KIND: SweepManifest,
}


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


def validate_manifest(manifest: Any, *, source: str = MANIFEST) -> None:
    """Check a parsed manifest against its typed schema; a problem names the field."""
    if not isinstance(manifest, dict):
        raise RunDirError(f"{source}: not a reportgen manifest")
    found = manifest.get("kind", RUN_KIND)
    model = MANIFEST_MODELS.get(found) if isinstance(found, str) else None
    if model is None:
        raise RunDirError(f"{source}: unknown kind {found!r}")
    try:
        model.model_validate(manifest)
    except ValidationError as e:
        raise RunDirError(f"{source} is malformed: {validation_problem(e)}") from e


def manifest_kind(manifest: Mapping[str, Any]) -> str:
    """Return what a validated manifest describes: ``"run"`` or ``"compare"``."""
    return str(manifest.get("kind", RUN_KIND))


def read_manifest(root: Path, *, kind: str | None = RUN_KIND) -> dict[str, Any]:
    """Return a validated manifest, refusing a directory that is not a reportgen output.

    ``kind`` is the kind of output expected (``None``: any kind). The manifest
    must be a regular file (not a link), at most 16 MiB, and every listed path
    must stay inside ``root``.
    """
    if not root.is_dir():
        raise RunDirError(f"{root}: no such run directory")
    try:
        raw = read_listed(root, MANIFEST, limit=MANIFEST_MAX_BYTES)
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a reportgen run (no {MANIFEST})") from e
    except (OSError, RunDirError) as e:
        raise RunDirError(f"{root}: unreadable {MANIFEST}: {_reason(e)}") from e
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise RunDirError(f"{root}: {MANIFEST} is not valid JSON: {_reason(e)}") from e
    validate_manifest(manifest, source=f"{root}: {MANIFEST}")
    found = manifest_kind(manifest)
    if kind is not None and found != kind:
        raise RunDirError(f"{root}: is a reportgen {KIND_NAMES[found]}, not a {KIND_NAMES[kind]}")
    return manifest


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# --------------------------------------------------------------------------- reading files


def _open_inside(root: Path, rel: str) -> int:
    """Return a read-only descriptor of the regular file ``root/rel``, following no link.

    Every component below ``root`` is opened with ``O_NOFOLLOW``, so neither a
    linked file nor a linked directory can lead out of the run.
    """
    parts = rel.split("/")
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = child
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RunDirError(f"{root / rel}: a symbolic link or not a regular file") from e
        raise
    finally:
        os.close(directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunDirError(f"{root / rel}: not a regular file")
    return fd


def read_listed(root: Path, rel: str, *, limit: int | None = None) -> bytes:
    """Return the bytes of ``root/rel`` without following links; refuse more than ``limit``."""
    fd = _open_inside(root, rel)
    with os.fdopen(fd, "rb") as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise RunDirError(f"{root / rel}: larger than {limit} bytes")
    return data


def _hash_listed(root: Path, rel: str) -> str:
    with os.fdopen(_open_inside(root, rel), "rb") as f:
        return _sha256_stream(f)


def read_artifact(
    root: Path, rel: str, manifest: Mapping[str, Any], *, what: str = "", hint: str = ""
) -> bytes:
    """Return a listed artifact's bytes, refusing one unlisted, missing or differing.

    The bytes are read once and hashed in memory, so what is checked is what is used.
    """
    recorded = manifest["artifacts"].get(rel)
    if recorded is None:
        raise RunDirError(f"{root}: {what}{rel} is not listed in its {MANIFEST}{hint}")
    try:
        data = read_listed(root, rel)
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a complete run ({what}{rel} is missing){hint}") from e
    except OSError as e:
        raise RunDirError(f"{root / rel}: unreadable: {_reason(e)}") from e
    if (actual := sha256_bytes(data)) != recorded["sha256"]:
        raise RunDirError(
            f"{root}: {rel} does not match its SHA-256 in {MANIFEST} "
            f"({rel}: SHA-256 {actual}, manifest says {recorded['sha256']}; tampered with?)"
        )
    return data


def check_artifacts(root: Path, recorded: Mapping[str, Mapping[str, Any]]) -> list[str]:
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
            problems.append(f"{rel}: unreadable ({_reason(e)})")
        else:
            if actual != expected["sha256"]:
                problems.append(f"{rel}: SHA-256 {actual}, manifest says {expected['sha256']}")
    return problems


def read_intact(root: Path, *, action: str, kind: str = RUN_KIND) -> dict[str, Any]:
    """Return the manifest of ``root`` after checking every listed file against it.

    Raises :class:`RunDirError` naming the first differing files, before any
    of them is used: "refusing to ``action`` a tampered run".
    """
    manifest = read_manifest(root, kind=kind)
    problems = check_artifacts(root, manifest["artifacts"])
    if problems:
        more = "; …" if len(problems) > 3 else ""
        raise RunDirError(
            f"{root}: files differ from its manifest ({'; '.join(problems[:3])}{more}); "
            f"refusing to {action} a tampered {KIND_NAMES[kind]}"
        )
    return manifest


def unlisted(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Return every path below ``root`` its manifest does not account for, sorted.

    Accounted for: the listed artifacts, the folders holding them, the
    manifest and the log.  Links are never followed, so a link is reported
    as itself.
    """
    listed = set(manifest["artifacts"])
    folders = {"/".join(rel.split("/")[:i]) for rel in listed for i in range(1, rel.count("/") + 1)}
    known = listed | folders | {MANIFEST, LOG}
    found = []
    for current, dirs, files in os.walk(root, followlinks=False):
        base = Path(current).relative_to(root)
        for name in [*dirs, *files]:
            rel = (base / name).as_posix()
            if rel not in known:
                found.append(rel + ("/" if name in dirs else ""))
        dirs[:] = [d for d in dirs if (base / d).as_posix() in known]  # don't list inside unknowns
    return sorted(found)


# --------------------------------------------------------------------------- output paths


def check_target(final: Path, *, kind: str = RUN_KIND) -> None:
    """Refuse an output path that a new output of ``kind`` may not replace.

    Allowed: a path that does not exist (below directories), an empty
    directory, or an intact reportgen output of the same kind holding nothing
    its manifest does not list.  Everything else is refused before any work
    starts, naming what would be lost.
    """
    final = Path(os.path.abspath(final))
    what = KIND_NAMES[kind]
    if final.is_symlink():
        raise RunDirError(f"{final}: is a symbolic link; give the directory itself as the output")
    resolved = final.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise RunDirError(f"{final}: refusing to write a {what} over / or the home directory")
    if cwd.is_relative_to(resolved):
        raise RunDirError(
            f"{final}: is the current directory or one of its parents; give a new directory "
            f"for the {what}"
        )
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(f"{final}: {parent} is a file, not a directory")
            break
    if not final.exists():
        return
    if not final.is_dir():
        raise RunDirError(f"{final}: exists and is not a directory; refusing to replace it")
    if not any(final.iterdir()):
        return
    if not (final / MANIFEST).exists():
        names = sorted(p.name for p in final.iterdir())
        shown = first_few(names)
        raise RunDirError(
            f"{final}: not empty and not a reportgen {what} (holds {shown}); "
            "refusing to replace it: give a new or empty directory"
        )
    try:
        manifest = read_manifest(final, kind=None)
    except RunDirError as e:
        raise RunDirError(f"{e}; refusing to replace it") from e
    if manifest_kind(manifest) != kind:
        found = KIND_NAMES[manifest_kind(manifest)]
        raise RunDirError(
            f"{final}: holds a reportgen {found}; refusing to replace it with a {what}"
        )
    extra = unlisted(final, manifest)
    if extra:
        shown = first_few(extra)
        raise RunDirError(
            f"{final}: holds files its {MANIFEST} does not list ({shown}); "
            "refusing to replace it: move them away or give another directory"
        )
    changed = [line.split(":", 1)[0] for line in check_artifacts(final, manifest["artifacts"])]
    changed = [rel for rel in changed if (final / rel).exists() or (final / rel).is_symlink()]
    if changed:
        shown = first_few(changed)
        raise RunDirError(
            f"{final}: files changed since reportgen wrote them ({shown}); "
            "refusing to replace it: move them away or give another directory"
        )


# --------------------------------------------------------------------------- staging and publish


def partial_path(final: Path) -> Path:
    """Return the hidden sibling in which the output at ``final`` is built."""
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


def open_staging(final: Path, *, resume: bool, kind: str = RUN_KIND) -> Path:
    """Create (or, when resuming, reuse) the partial directory for ``final``.

    A new run replaces what an earlier killed run of reportgen left behind
    (recognised by its marker file), and nothing else.
    """
    final = Path(os.path.abspath(final))
    staging = partial_path(final)
    ours = (staging / PARTIAL_MARKER).is_file() and not staging.is_symlink()
    if (staging.exists() or staging.is_symlink()) and not ours:
        raise RunDirError(
            f"{staging} exists but was not made by reportgen; move it away to write {final}"
        )
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(final)
        if resume:
            if not staging.is_dir():
                raise RunDirError(
                    f"nothing to resume: no interrupted run at {staging} "
                    "(run without --resume to start one)"
                )
            return staging
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o755)
        (staging / PARTIAL_MARKER).write_text(kind + "\n")
    except OSError as e:
        raise RunDirError(f"output directory {final.parent} is not writable: {_reason(e)}") from e
    return staging


def _remove_stale(final: Path) -> None:
    for old in final.parent.glob(f".{final.name}{OLD_SUFFIX}-*"):
        remove_output(old)


def remove_output(root: Path) -> bool:
    """Delete a reportgen output: its listed files, manifest, log and checkpoints, nothing else.

    Folders are removed only once empty.  Return True when ``root`` is gone;
    False when something reportgen did not write kept it (it is left as it is).
    """
    try:
        manifest = read_manifest(root, kind=None)
    except RunDirError:
        return False
    listed = [*manifest["artifacts"], MANIFEST, LOG, PARTIAL_MARKER]
    for rel in listed:
        path = root / rel
        if path.is_file() and not path.is_symlink():
            path.unlink()
    work = root / WORK
    if work.is_dir() and not work.is_symlink():
        for checkpoint in work.glob("*.ckpt"):
            checkpoint.unlink()
    for current, _dirs, _files in sorted(os.walk(root, followlinks=False), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something that is not ours
            os.rmdir(current)
    return not root.exists()


def publish(staging: Path, final: Path, *, kind: str = RUN_KIND) -> Path | None:
    """Swap a complete ``staging`` directory into ``final`` atomically.

    Uses ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, so the
    published path never lacks a run; elsewhere moves the old run aside first.
    ``final`` is checked again just before (:func:`check_target`), and of the
    previous output only what reportgen wrote is deleted.  Return the path
    where a previous output was kept because it held something else, or None.
    """
    final = Path(os.path.abspath(final))
    check_target(final, kind=kind)
    shutil.rmtree(staging / WORK, ignore_errors=True)
    (staging / PARTIAL_MARKER).unlink(missing_ok=True)
    _fsync_tree(staging)
    os.chmod(staging, 0o755)  # noqa: S103 - a published report is meant to be readable
    kept = None
    if final.is_dir() and not any(final.iterdir()):
        os.replace(staging, final)  # rename(2) replaces an empty directory atomically
    elif final.exists() and _exchange(staging, final):
        if not remove_output(staging):  # now holds the previous output
            kept = staging.with_name(f".{final.name}{OLD_SUFFIX}-kept-{os.getpid()}")
            os.replace(staging, kept)
    elif final.exists():
        aside = final.with_name(f".{final.name}{OLD_SUFFIX}-{os.getpid()}")
        os.replace(final, aside)
        os.replace(staging, final)
        kept = None if remove_output(aside) else aside
    else:
        os.replace(staging, final)
    fsync_dir(final.parent)
    return kept


def _fsync_tree(root: Path) -> None:
    for current, _dirs, files in os.walk(root, followlinks=False):
        fsync_dir(Path(current))
        for name in files:
            with open(Path(current) / name, "rb") as f:
                os.fsync(f.fileno())


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux renameat2; return False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
