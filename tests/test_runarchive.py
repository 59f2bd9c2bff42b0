"""Tests for sending a run back as an archive: sorted, relative, and unpacked without trust."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts import publish
from reportgen.artifacts.archive import pack_run, unpack_run
from reportgen.core.errors import RunDirError


def _archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_quick_run_round_trips_and_verifies(quick_run: Path, tmp_path: Path) -> None:
    data = pack_run(quick_run)
    assert pack_run(quick_run) == data  # the same run, the same bytes
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert not any(n.startswith("/") or ".." in n.split("/") for n in names)
    dest = tmp_path / "copy"
    dest.mkdir()
    unpack_run(data, dest)
    manifest = manifest_mod.read_intact(dest, action="check")
    assert publish.unlisted(dest, manifest) == []
    assert (dest / "metrics.json").read_bytes() == (quick_run / "metrics.json").read_bytes()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([_link("evil", "/etc/passwd")], "'evil' is a link"),
        ([_link("evil", "../../x", tarfile.LNKTYPE)], "'evil' is a link"),
        ([_file("../escape")], "'../escape' leaves its folder"),
        ([_file("a/../../escape")], "leaves its folder"),
        ([_file("/etc/cron.d/job")], "'/etc/cron.d/job' is not a relative name"),
        ([_file("figures\\x.png")], "is not a relative name"),
        ([_file("a\nb")], "control character"),
        ([_file("metrics.json"), _file("metrics.json")], "'metrics.json' is in it twice"),
        ([_file("figures/x.png")], "comes before its folder"),
    ],
)
def test_malicious_archives_are_refused_and_write_nothing_outside(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], message: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RunDirError, match=message):
        unpack_run(_archive(*members), dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
    assert not (tmp_path / "escape").exists()


def test_fifo_member_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("pipe")
    info.type = tarfile.FIFOTYPE
    with pytest.raises(RunDirError, match="'pipe' is a link or a special file"):
        unpack_run(_archive((info, None)), tmp_path)


def test_a_file_left_in_the_way_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("mine")
    with pytest.raises(RunDirError, match="twice"):
        unpack_run(_archive(_file("metrics.json", b"theirs")), tmp_path)
    assert (tmp_path / "metrics.json").read_text() == "mine"


def test_garbage_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="run archive is malformed"):
        unpack_run(b"not a tar archive at all" * 40, tmp_path)
