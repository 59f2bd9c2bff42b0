"""A finished run directory as bytes, and back: how a remote worker returns its run.

No shared file system is assumed between a sweep's driver and its workers,
so a worker packs the run it published into a tar archive (members sorted,
relative names, no owners or times) and the driver unpacks it into a
partial directory.  Unpacking trusts nothing in the archive: only regular
files and folders with plain relative names are written, never over an
existing file and never through a link; the caller then checks every file
against the run's manifest before publishing it.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from reportgen.core.errors import RunDirError

MAX_ARCHIVE_BYTES = 2 << 30  # a run is a few MB; more is not a run
_CHUNK = 1 << 20


def pack_run(root: Path) -> bytes:
    """Return every file and folder below ``root`` as an uncompressed tar, sorted by name.

    Links and special files are refused: a run holds none.
    """
    buffer = io.BytesIO()
    entries = []
    for current, dirs, files in os.walk(root, followlinks=False):
        base = Path(current)
        entries += [base / name for name in (*dirs, *files)]
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(entries, key=lambda p: p.relative_to(root).parts):
            info = os.lstat(path)
            name = path.relative_to(root).as_posix()
            member = tarfile.TarInfo(name)
            member.mtime = 0
            if stat.S_ISDIR(info.st_mode):
                member.type, member.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(member)
            elif stat.S_ISREG(info.st_mode):
                member.size, member.mode = info.st_size, 0o644
                with open(path, "rb") as f:
                    archive.addfile(member, f)
            else:
                raise RunDirError(f"{path}: not a regular file or folder; a run holds none")
    return buffer.getvalue()


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Return why an archive member may not be unpacked, or None when it may."""
    name = member.name
    parts = name.split("/")
    if not (member.isreg() or member.isdir()):
        return f"{name!r} is a link or a special file"
    if name.startswith("/") or "\\" in name:
        return f"{name!r} is not a relative name"
    if any(part in ("", ".", "..") for part in parts):
        return f"{name!r} leaves its folder or is not a plain name"
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        return f"{name!r} holds a control character"
    return None


def unpack_run(data: bytes, dest: Path) -> list[str]:
    """Unpack an archive of :func:`pack_run` into the existing folder ``dest``; return the files.

    Raises
    ------
    RunDirError
        The archive is malformed, too large, or holds a link, a special
        file, an absolute name, a ``..`` or a name given twice.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        raise RunDirError(f"run archive of {len(data)} bytes is larger than {MAX_ARCHIVE_BYTES}")
    written = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = archive.getmembers()
            for member in members:
                if (problem := member_problem(member)) is not None:
                    raise RunDirError(f"refusing the run archive: {problem}")
            for member in members:
                target = dest / member.name
                _check_parents(dest, member.name)
                if member.isdir():
                    target.mkdir(mode=0o755, exist_ok=True)
                    continue
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have data
                    raise RunDirError(f"refusing the run archive: {member.name!r} has no data")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                try:
                    fd = os.open(target, flags, 0o644)
                except FileExistsError as e:
                    raise RunDirError(
                        f"refusing the run archive: {member.name!r} is in it twice"
                    ) from e
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                written.append(member.name)
    except tarfile.TarError as e:
        raise RunDirError(f"run archive is malformed: {e}") from e
    return written


def _check_parents(dest: Path, name: str) -> None:
    """Refuse a member whose folder is missing or is a link (made by an earlier member)."""
    folder = dest
    for part in name.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink() or not folder.is_dir():
            raise RunDirError(f"refusing the run archive: {name!r} comes before its folder")
