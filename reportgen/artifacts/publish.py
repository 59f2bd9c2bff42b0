"""Publishing an output: staging in a hidden sibling, checks of the target, an atomic swap."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reportgen.artifacts.layout import (
    KIND_NAMES,
    LOG,
    MANIFEST,
    OLD_SUFFIX,
    PARTIAL_MARKER,
    PARTIAL_SUFFIX,
    RUN_KIND,
    WORK,
)
from reportgen.artifacts.manifest import Manifest, check_artifacts, read_any_manifest
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import fsync_dir, unwritable
from reportgen.core.text import first_few, one_line


def unlisted(root: Path, manifest: Manifest) -> list[str]:
    """Return every path below ``root`` its manifest does not account for, sorted.

    Accounted for: the listed artifacts, the folders holding them, the
    manifest and the log.  Links are never followed, so a link is reported
    as itself.
    """
    listed = set(manifest.artifacts)
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
            reason = unwritable(parent)
            if reason is not None:
                raise RunDirError(f"{final}: {parent} {reason}; give an output on a writable one")
            break
    if not final.exists():
        return
    if not final.is_dir():
        raise RunDirError(f"{final}: exists and is not a directory; refusing to replace it")
    if os.path.ismount(final):
        raise RunDirError(
            f"{final}: is a mount point, which a finished {what} cannot be swapped into; "
            "give a directory inside it"
        )
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
        manifest = read_any_manifest(final)
    except RunDirError as e:
        raise RunDirError(f"{e}; refusing to replace it") from e
    if kind != manifest.KIND:
        found = KIND_NAMES[manifest.KIND]
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
    changed = [line.split(":", 1)[0] for line in check_artifacts(final, manifest.artifacts)]
    changed = [rel for rel in changed if (final / rel).exists() or (final / rel).is_symlink()]
    if changed:
        shown = first_few(changed)
        raise RunDirError(
            f"{final}: files changed since reportgen wrote them ({shown}); "
            "refusing to replace it: move them away or give another directory"
        )


def partial_path(final: Path) -> Path:
    """Return the hidden sibling in which the output at ``final`` is built."""
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def open_staging(final: Path, *, resume: bool, kind: str = RUN_KIND) -> Iterator[Path]:
    """Create (or, when resuming, reuse) the partial directory for ``final`` and lock it.

    The lock (``flock`` on the partial directory's marker file) is held until
    the block ends, so two commands never write into one partial directory:
    the second is refused before any work.  A new run replaces what an
    earlier killed run of reportgen left behind (recognised by its marker
    file, and unlocked since its process is gone), and nothing else.
    """
    final = Path(os.path.abspath(final))
    staging = partial_path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(final)
        held = _lock_existing(staging, final)
        if resume:
            if held is None:
                raise RunDirError(
                    f"nothing to resume: no interrupted run at {staging} "
                    "(run without --resume to start one)"
                )
        else:
            if held is not None:
                shutil.rmtree(staging)  # a killed run's leftovers: ours, and nobody holds them
                os.close(held)
            held = _create_locked(staging, final, kind)
    except OSError as e:
        raise RunDirError(f"output directory {final.parent} is not writable: {one_line(e)}") from e
    try:
        yield staging
    finally:
        os.close(held)


def _busy(final: Path) -> RunDirError:
    return RunDirError(
        f"{final}: another reportgen command is writing it; wait for it to end or give "
        "another --out"
    )


def _lock_existing(staging: Path, final: Path) -> int | None:
    """Lock the partial directory at ``staging``; None when there is none."""
    if not (staging.exists() or staging.is_symlink()):
        return None
    marker = staging / PARTIAL_MARKER
    if staging.is_symlink() or not marker.is_file() or marker.is_symlink():
        raise RunDirError(
            f"{staging} exists but was not made by reportgen; move it away to write {final}"
        )
    fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        os.close(fd)
        raise _busy(final) from e
    return fd


def _create_locked(staging: Path, final: Path, kind: str) -> int:
    """Make a locked partial directory at ``staging``, which must not exist.

    It is built under a temporary name and renamed into place with its marker
    already locked, so no other command can see it unlocked; of two commands
    racing for the name, the rename of the second fails.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"{staging.name}-", dir=staging.parent))
    fd = os.open(tmp / PARTIAL_MARKER, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this file yet
        os.write(fd, f"{kind}\n".encode())
        os.chmod(tmp, 0o755)  # noqa: S103 - as a published report will be
        os.rename(tmp, staging)  # fails when another command made ``staging`` meanwhile
    except OSError as e:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOENT):
            raise _busy(final) from e
        raise
    return fd


def discard_staging(staging: Path) -> None:
    """Delete a partial directory whose lock this command holds: nothing in it is worth keeping."""
    if (staging / PARTIAL_MARKER).is_file() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale(final: Path) -> None:
    for old in final.parent.glob(f".{final.name}{OLD_SUFFIX}-*"):
        remove_output(old)
    # A partial directory killed before it got its name: an unlocked marker and nothing else.
    for tmp in final.parent.glob(f".{final.name}{PARTIAL_SUFFIX}-*"):
        _remove_unborn(tmp)


def _remove_unborn(tmp: Path) -> None:
    marker = tmp / PARTIAL_MARKER
    if tmp.is_symlink() or not marker.is_file() or marker.is_symlink():
        return
    if [p.name for p in tmp.iterdir()] != [PARTIAL_MARKER]:
        return
    fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # being born right now
    finally:
        os.close(fd)
    shutil.rmtree(tmp, ignore_errors=True)


def remove_output(root: Path) -> bool:
    """Delete a reportgen output: its listed files, manifest, log and checkpoints, nothing else.

    Folders are removed only once empty.  Return True when ``root`` is gone;
    False when something reportgen did not write kept it (it is left as it is).
    """
    try:
        manifest = read_any_manifest(root)
    except RunDirError:
        return False
    listed = [*manifest.artifacts, MANIFEST, LOG, PARTIAL_MARKER]
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
