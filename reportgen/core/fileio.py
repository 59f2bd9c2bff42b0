"""Files written atomically and read without following links; SHA-256 of bytes and files.

Everything reportgen writes goes through :func:`write_atomic` (a temporary
file, fsync, rename, fsync of the folder), so a reader never sees half a
file; everything it reads from a directory that may come from elsewhere
goes through :func:`read_listed`, which follows no symbolic link.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from reportgen.core.errors import RunDirError


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


def json_text(payload: Any) -> str:
    """Return JSON with sorted keys, indented, and a final newline: stable text for stable data."""
    return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, payload: Any) -> None:
    """Write :func:`json_text` of ``payload`` atomically."""
    write_atomic(path, json_text(payload))


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    with open(path, "rb") as f:
        return sha256_stream(f)


def sha256_stream(f: BinaryIO) -> str:
    """Return the hex SHA-256 of an open binary file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def open_inside(root: Path, rel: str) -> int:
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
    fd = open_inside(root, rel)
    with os.fdopen(fd, "rb") as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise RunDirError(f"{root / rel}: larger than {limit} bytes")
    return data


def unwritable(directory: Path) -> str | None:
    """Return why nothing can be created in ``directory`` (an existing folder), or None.

    Asked before any work, so that a read-only mount is named as such instead
    of surfacing, after training, as a failed write. ``access`` reports a
    read-only file system even to root, for whom permission bits do not count.
    """
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
    except OSError as e:
        return f"cannot be examined: {e.strerror or e}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable (permission denied)"
    return None
