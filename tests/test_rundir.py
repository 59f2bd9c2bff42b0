from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reportgen import rundir
from reportgen.errors import RunDirError


def test_write_atomic_and_json(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.json"
    rundir.write_json(path, {"b": 1, "a": [1.5, None]})
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
    with pytest.raises(ValueError, match="Out of range float"):
        rundir.write_json(path, {"x": float("nan")})


def test_write_atomic_names_the_file_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as caught:
        rundir.write_atomic(tmp_path / "big.bin", b"x")
    assert caught.value.filename == str(tmp_path / "big.bin")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


ENVIRONMENT = {
    "versions": {"python": "3.11.7"},
    "hardware": {"machine": "x86_64", "device": "cpu"},
    "threads": 2,
    "parallel_info": "",
    "git_commit": None,
}


def _manifest(root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": "run",
        "seed": 0,
        "data_files": {},
        "environment": ENVIRONMENT,
        "artifacts": rundir.artifact_hashes(root),
        **extra,
    }


def _make_run(root: Path, marker: str, *, work: bool = False) -> None:
    """A minimal complete run: two artifacts and a manifest (and checkpoints, as in staging)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "metrics.json").write_text(marker)
    (root / "models" / "a.pt").write_text("weights")
    if work:
        (root / "work").mkdir(exist_ok=True)
        (root / "work" / "a.ckpt").write_text("checkpoint")
    rundir.write_json(root / rundir.MANIFEST, _manifest(root))


def test_artifact_hashes_skip_manifest_work_hidden_files_and_links(tmp_path: Path) -> None:
    _make_run(tmp_path, "m", work=True)
    (tmp_path / ".metrics.json.tmp-1").write_text("partial write")
    (tmp_path / "link").symlink_to("/etc/hostname")
    hashes = rundir.artifact_hashes(tmp_path)
    assert list(hashes) == ["metrics.json", "models/a.pt"]
    assert hashes["metrics.json"] == {"sha256": rundir.sha256_bytes(b"m"), "size": 1}


def _publish(final: Path, marker: str) -> Path | None:
    staging = rundir.open_staging(final, resume=False)
    _make_run(staging, marker, work=True)
    return rundir.publish(staging, final)


def test_publish_replaces_previous_run(tmp_path: Path) -> None:
    final = tmp_path / "run"
    for marker in ("first", "second"):
        assert rundir.partial_path(final) == tmp_path / ".run.partial"
        assert _publish(final, marker) is None
        assert (final / "metrics.json").read_text() == marker
        assert not (final / "work").exists()
        assert not (final / rundir.PARTIAL_MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert oct(final.stat().st_mode & 0o777) == "0o755"


def test_publish_into_an_empty_directory(tmp_path: Path) -> None:
    final = tmp_path / "empty"
    final.mkdir()
    _publish(final, "first")
    assert (final / "metrics.json").read_text() == "first"


def test_new_run_clears_its_own_stale_partial_only(tmp_path: Path) -> None:
    final = tmp_path / "run"
    rundir.open_staging(final, resume=False)
    stale = rundir.partial_path(final)
    (stale / "junk").write_text("x")
    staging = rundir.open_staging(final, resume=False)
    assert [p.name for p in staging.iterdir()] == [rundir.PARTIAL_MARKER]

    other = tmp_path / "mine"
    foreign = rundir.partial_path(other)
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(RunDirError, match="not made by reportgen"):
        rundir.open_staging(other, resume=False)
    assert (foreign / "notes.txt").read_text() == "precious"


def test_resume_needs_a_partial_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="nothing to resume"):
        rundir.open_staging(tmp_path / "run", resume=True)


# --------------------------------------------------------------------------- output targets


def _user_dir(tmp_path: Path) -> Path:
    user = tmp_path / "userdir"
    (user / "sub").mkdir(parents=True)
    (user / "important.txt").write_text("precious")
    return user


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_user_dir, "not empty and not a reportgen run .holds important.txt, sub"),
        (lambda t: (t / "file.txt").write_text("x") and t / "file.txt", "not a directory"),
        (lambda t: (t / "f").write_text("x") and t / "f" / "run", "is a file, not a directory"),
    ],
)
def test_check_target_refuses_what_is_not_a_run(tmp_path: Path, make: Any, message: str) -> None:
    target = make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(RunDirError, match=message):
        rundir.check_target(target)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_check_target_refuses_cwd_root_home_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    for target in (Path("."), project, tmp_path, Path("..")):
        with pytest.raises(RunDirError, match="current directory or one of its parents"):
            rundir.check_target(target)
    with pytest.raises(RunDirError, match="over / or the home directory"):
        rundir.check_target(Path("/"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(RunDirError, match="over / or the home directory"):
        rundir.check_target(home)
    (tmp_path / "link").symlink_to(home)
    with pytest.raises(RunDirError, match="symbolic link"):
        rundir.check_target(tmp_path / "link")


def test_check_target_accepts_new_empty_and_intact_runs(tmp_path: Path) -> None:
    rundir.check_target(tmp_path / "new" / "deeper")
    (tmp_path / "empty").mkdir()
    rundir.check_target(tmp_path / "empty")
    _make_run(tmp_path / "run", "m")
    (tmp_path / "run" / rundir.LOG).write_text("log")
    rundir.check_target(tmp_path / "run")


def test_check_target_names_unlisted_and_changed_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(run, "m", work=True)
    (run / "notes.txt").write_text("mine")
    (run / "models" / "extra").mkdir()
    with pytest.raises(RunDirError, match=r"does not list \(models/extra/, notes.txt, work/\)"):
        rundir.check_target(run)
    for extra in ("notes.txt", "models/extra", "work/a.ckpt", "work"):
        path = run / extra
        path.rmdir() if path.is_dir() else path.unlink()
    (run / "metrics.json").write_text("edited")
    with pytest.raises(RunDirError, match=r"changed since reportgen wrote them \(metrics.json\)"):
        rundir.check_target(run)


def test_check_target_refuses_another_kind(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("x")
    manifest = {
        "schema": 1,
        "kind": "compare",
        "inputs": {},
        "artifacts": rundir.artifact_hashes(out),
    }
    rundir.write_json(out / rundir.MANIFEST, manifest)
    with pytest.raises(RunDirError, match="holds a reportgen comparison; refusing to replace it"):
        rundir.check_target(out)
    rundir.check_target(out, kind="compare")


def test_publish_checks_the_target_again(tmp_path: Path) -> None:
    final = tmp_path / "run"
    _publish(final, "first")
    staging = rundir.open_staging(final, resume=False)
    _make_run(staging, "second")
    (final / "notes.txt").write_text("written while the run trained")
    with pytest.raises(RunDirError, match=r"notes\.txt"):
        rundir.publish(staging, final)
    assert (final / "notes.txt").exists() and (final / "metrics.json").read_text() == "first"
    assert (staging / "metrics.json").read_text() == "second"  # the new run is not lost


def test_remove_output_deletes_only_what_reportgen_wrote(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(run, "m")
    (run / "models" / "mine.txt").write_text("keep")
    assert rundir.remove_output(run) is False
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == [
        "models",
        "models/mine.txt",
    ]
    assert rundir.remove_output(tmp_path / "nothing") is False


# --------------------------------------------------------------------------- reading a run


def test_read_manifest_and_check(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        rundir.read_manifest(tmp_path / "missing")
    with pytest.raises(RunDirError, match="not a reportgen run"):
        rundir.read_manifest(tmp_path)
    _make_run(tmp_path, "m")
    manifest = rundir.read_manifest(tmp_path)
    assert rundir.check_artifacts(tmp_path, manifest["artifacts"]) == []
    (tmp_path / "metrics.json").write_text("n")
    assert rundir.check_artifacts(tmp_path, manifest["artifacts"]) == [
        f"metrics.json: SHA-256 {rundir.sha256_bytes(b'n')}, "
        f"manifest says {rundir.sha256_bytes(b'm')}"
    ]
    with pytest.raises(RunDirError, match="refusing to mail a tampered run"):
        rundir.read_intact(tmp_path, action="mail")


ENTRY = {"sha256": "0" * 64, "size": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"artifacts": {"../../etc/passwd": ENTRY}}, "not a relative path inside the run"),
        ({"artifacts": {"/etc/passwd": ENTRY}}, "not a relative path inside the run"),
        ({"artifacts": {"figures/./a.png": ENTRY}}, "not a relative path inside the run"),
        ({"artifacts": {"metrics.json": "abc"}}, "artifacts.metrics.json"),
        ({"artifacts": {"metrics.json": {"sha256": "x", "size": 1}}}, "64 lowercase hex"),
        ({"artifacts": {"metrics.json": {**ENTRY, "size": True}}}, "artifacts.metrics.json.size"),
        ({"environment": None}, "environment"),
        ({"environment": {**ENVIRONMENT, "threads": "2"}}, "environment.threads"),
        ({"schema": 2}, "schema"),
        ({"kind": "notebook"}, "unknown kind 'notebook'"),
    ],
)
def test_malformed_manifests_are_refused_naming_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    _make_run(tmp_path, "m")
    manifest = {**_manifest(tmp_path), **change}
    (tmp_path / rundir.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match=message) as caught:
        rundir.read_manifest(tmp_path)
    assert "\n" not in str(caught.value)


def test_missing_environment_is_refused(tmp_path: Path) -> None:
    _make_run(tmp_path, "m")
    manifest = _manifest(tmp_path)
    del manifest["environment"]
    (tmp_path / rundir.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="environment: Field required"):
        rundir.read_manifest(tmp_path)


@pytest.mark.parametrize(
    "content", [b"[" * 100_000, b"\xff\xfe", b"[]", b"{" + b" " * (17 << 20) + b"}"]
)
def test_unreadable_manifests_are_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / rundir.MANIFEST).write_bytes(content)
    with pytest.raises(RunDirError, match=rundir.MANIFEST):
        rundir.read_manifest(tmp_path)


def test_links_never_lead_out_of_the_run(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    run = tmp_path / "run"
    _make_run(run, "m")
    manifest = rundir.read_manifest(run)
    # A listed file replaced by a link to a file outside, with the right hash.
    os.remove(run / "metrics.json")
    (outside / "m").write_text("m")
    (run / "metrics.json").symlink_to(outside / "m")
    with pytest.raises(RunDirError, match="symbolic link"):
        rundir.read_artifact(run, "metrics.json", manifest)
    assert rundir.check_artifacts(run, manifest["artifacts"]) == [
        "metrics.json: a symbolic link or not a regular file"
    ]
    # A listed file's folder replaced by a link to a folder outside.
    (outside / "models").mkdir()
    (outside / "models" / "a.pt").write_text("weights")
    (run / "models" / "a.pt").unlink()
    (run / "models").rmdir()
    (run / "models").symlink_to(outside / "models")
    with pytest.raises(RunDirError, match="symbolic link"):
        rundir.read_artifact(run, "models/a.pt", manifest)
    # The manifest itself as a link.
    (outside / "manifest.json").write_bytes((run / rundir.MANIFEST).read_bytes())
    (run / rundir.MANIFEST).unlink()
    (run / rundir.MANIFEST).symlink_to(outside / "manifest.json")
    with pytest.raises(RunDirError, match=r"unreadable manifest\.json"):
        rundir.read_manifest(run)


def test_unlisted_files_are_never_read(tmp_path: Path) -> None:
    _make_run(tmp_path, "m")
    (tmp_path / "extra.txt").write_text("x")
    manifest = rundir.read_manifest(tmp_path)
    with pytest.raises(RunDirError, match=r"extra\.txt is not listed"):
        rundir.read_artifact(tmp_path, "extra.txt", manifest)
    assert rundir.unlisted(tmp_path, manifest) == ["extra.txt"]
