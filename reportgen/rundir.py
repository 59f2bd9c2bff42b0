"""The run directory: layout, atomic writes, manifest and atomic publish.

A run is built in a hidden sibling ``.<name>.partial`` and swapped into
place only when complete, so the published path always holds some complete
run.  The partial directory survives a kill and is what ``--resume`` picks up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.errors import RunDirError

MANIFEST = "manifest.json"
LOG = "run.log"  # this execution's log: timings vary, so it is outside the hashed artifacts
WORK = "work"  # checkpoints: inside the partial directory only, never published
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"

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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
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
    """Yield every published file of a run except the manifest and log, in sorted order."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        hidden = rel.name.startswith(".")  # temporary files of an interrupted write
        own = rel.as_posix() in (MANIFEST, LOG)
        if path.is_file() and rel.parts[0] != WORK and not own and not hidden:
            yield path


def artifact_hashes(root: Path) -> dict[str, dict[str, Any]]:
    """Return ``{relative path: {sha256, size}}`` for every artifact of a run."""
    return {
        path.relative_to(root).as_posix(): {
            "sha256": sha256_path(path),
            "size": path.stat().st_size,
        }
        for path in artifacts(root)
    }


# --------------------------------------------------------------------------- reading a run


def read_manifest(root: Path) -> dict[str, Any]:
    """Return a run's manifest, refusing a directory that is not a run."""
    path = root / MANIFEST
    if not root.is_dir():
        raise RunDirError(f"{root}: no such run directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a reportgen run (no {MANIFEST})") from e
    except (OSError, ValueError) as e:
        raise RunDirError(f"{root}: unreadable {MANIFEST}: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise RunDirError(f"{root}: {MANIFEST} is not a reportgen manifest")
    return manifest


def read_artifact(
    root: Path, rel: str, manifest: Mapping[str, Any], *, what: str = "", hint: str = ""
) -> bytes:
    """Return an artifact's bytes, refusing one missing, unreadable or differing from the manifest.

    The bytes are read once and hashed in memory, so what is checked is what is used.
    """
    path = root / rel
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise RunDirError(f"{root}: not a complete run ({what}{rel} is missing){hint}") from e
    except OSError as e:
        raise RunDirError(f"{path}: unreadable: {e}") from e
    recorded = manifest["artifacts"].get(rel)
    if recorded is not None and (actual := sha256_bytes(data)) != recorded["sha256"]:
        raise RunDirError(
            f"{root}: {rel} does not match its SHA-256 in {MANIFEST} "
            f"({rel}: SHA-256 {actual}, manifest says {recorded['sha256']}; tampered with?)"
        )
    return data


def check_artifacts(root: Path, recorded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return a line per artifact whose bytes differ from ``recorded`` (empty when all match)."""
    problems = []
    for rel, expected in sorted(recorded.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif (actual := sha256_path(path)) != expected["sha256"]:
            problems.append(f"{rel}: SHA-256 {actual}, manifest says {expected['sha256']}")
    return problems


# --------------------------------------------------------------------------- staging and publish


def partial_path(final: Path) -> Path:
    """Return the hidden sibling in which the run at ``final`` is built."""
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


def open_staging(final: Path, *, resume: bool) -> Path:
    """Create (or, when resuming, reuse) the partial directory for ``final``.

    A new run removes whatever an earlier killed run left behind.
    """
    final = final.absolute()
    staging = partial_path(final)
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
        probe = staging / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise RunDirError(f"output directory {final.parent} is not writable: {e}") from e
    return staging


def _remove_stale(final: Path) -> None:
    for old in final.parent.glob(f".{final.name}{OLD_SUFFIX}-*"):
        shutil.rmtree(old, ignore_errors=True)


def publish(staging: Path, final: Path) -> None:
    """Swap a complete ``staging`` directory into ``final`` atomically.

    Uses ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, so the
    published path never lacks a run; elsewhere moves the old run aside first.
    """
    final = final.absolute()
    shutil.rmtree(staging / WORK, ignore_errors=True)
    _fsync_tree(staging)
    os.chmod(staging, 0o755)  # noqa: S103 - a published report is meant to be readable
    if final.exists() and not final.is_dir():
        raise RunDirError(f"{final} exists and is not a directory")
    if final.exists() and _exchange(staging, final):
        shutil.rmtree(staging)  # now holds the previous run
    else:
        if final.exists():
            aside = final.with_name(f".{final.name}{OLD_SUFFIX}-{os.getpid()}")
            os.replace(final, aside)
            os.replace(staging, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, final)
    fsync_dir(final.parent)


def _fsync_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            fsync_dir(path)
        else:
            with open(path, "rb") as f:
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
