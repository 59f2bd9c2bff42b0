from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reportgen.artifacts import layout, publish
from reportgen.artifacts import manifest as manifest_mod
from reportgen.core import fileio
from reportgen.core.errors import RunDirError


def test_write_atomic_and_json(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.json"
    fileio.write_json(path, {"b": 1, "a": [1.5, None]})
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
    with pytest.raises(ValueError, match="Out of range float"):
        fileio.write_json(path, {"x": float("nan")})


def test_write_atomic_names_the_file_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as caught:
        fileio.write_atomic(tmp_path / "big.bin", b"x")
    assert caught.value.filename == str(tmp_path / "big.bin")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


ENVIRONMENT = {
    "versions": {"python": "3.11.7"},
    "hardware": {"machine": "x86_64", "device": "cpu"},
    "threads": 2,
    "parallel_info": "",
    "git_commit": None,
}


def _manifest(root: Path) -> manifest_mod.RunManifest:
    return manifest_mod.RunManifest(
        run_name="test",
        seed=0,
        command=["reportgen", "run"],
        data_files={},
        data_source="cache",
        environment=manifest_mod.EnvironmentFacts(**ENVIRONMENT),
        artifacts=manifest_mod.artifact_hashes(root),
    )


def _make_run(root: Path, marker: str, *, work: bool = False) -> None:
    """A minimal complete run: two artifacts and a manifest (and checkpoints, as in staging)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "metrics.json").write_text(marker)
    (root / "models" / "a.pt").write_text("weights")
    if work:
        (root / "work").mkdir(exist_ok=True)
        (root / "work" / "a.ckpt").write_text("checkpoint")
    _manifest(root).write(root / layout.MANIFEST)


def test_artifact_hashes_skip_manifest_work_hidden_files_and_links(tmp_path: Path) -> None:
    _make_run(tmp_path, "m", work=True)
    (tmp_path / ".metrics.json.tmp-1").write_text("partial write")
    (tmp_path / "link").symlink_to("/etc/hostname")
    hashes = manifest_mod.artifact_hashes(tmp_path)
    assert list(hashes) == ["metrics.json", "models/a.pt"]
    assert hashes["metrics.json"] == manifest_mod.ArtifactEntry(
        sha256=fileio.sha256_bytes(b"m"), size=1
    )
    assert hashes["models/a.pt"].model_dump() == {
        "sha256": fileio.sha256_bytes(b"weights"),
        "size": 7,
    }


def _publish(final: Path, marker: str) -> Path | None:
    with publish.open_staging(final, resume=False) as staging:
        _make_run(staging, marker, work=True)
        return publish.publish(staging, final)


def test_publish_replaces_previous_run(tmp_path: Path) -> None:
    final = tmp_path / "run"
    for marker in ("first", "second"):
        assert publish.partial_path(final) == tmp_path / ".run.partial"
        assert _publish(final, marker) is None
        assert (final / "metrics.json").read_text() == marker
        assert not (final / "work").exists()
        assert not (final / layout.PARTIAL_MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert oct(final.stat().st_mode & 0o777) == "0o755"


def test_publish_into_an_empty_directory(tmp_path: Path) -> None:
    final = tmp_path / "empty"
    final.mkdir()
    _publish(final, "first")
    assert (final / "metrics.json").read_text() == "first"


def test_new_run_clears_its_own_stale_partial_only(tmp_path: Path) -> None:
    final = tmp_path / "run"
    with publish.open_staging(final, resume=False):
        pass  # a killed run: its partial directory stays, unlocked
    stale = publish.partial_path(final)
    (stale / "junk").write_text("x")
    with publish.open_staging(final, resume=False) as staging:
        assert [p.name for p in staging.iterdir()] == [layout.PARTIAL_MARKER]

    other = tmp_path / "mine"
    foreign = publish.partial_path(other)
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with (
        pytest.raises(RunDirError, match="not made by reportgen"),
        publish.open_staging(other, resume=False),
    ):
        pass
    assert (foreign / "notes.txt").read_text() == "precious"


def test_resume_needs_a_partial_run(tmp_path: Path) -> None:
    with (
        pytest.raises(RunDirError, match="nothing to resume"),
        publish.open_staging(tmp_path / "run", resume=True),
    ):
        pass


@pytest.mark.parametrize("resume", [False, True])
def test_a_partial_directory_in_use_is_refused_and_left_alone(tmp_path: Path, resume: bool) -> None:
    final = tmp_path / "run"
    with publish.open_staging(final, resume=False) as staging:
        (staging / "work").mkdir()
        (staging / "work" / "baseline.ckpt").write_bytes(b"epoch 3")
        busy = pytest.raises(RunDirError, match="another reportgen command is writing it")
        with busy, publish.open_staging(final, resume=resume):
            pass
        assert (staging / "work" / "baseline.ckpt").read_bytes() == b"epoch 3"
    # Once the first one has ended, its work can be resumed.
    with publish.open_staging(final, resume=True) as again:
        assert (again / "work" / "baseline.ckpt").read_bytes() == b"epoch 3"


def test_a_partial_directory_killed_before_its_rename_is_cleared(tmp_path: Path) -> None:
    unborn = tmp_path / ".run.partial-x1y2"
    unborn.mkdir()
    (unborn / layout.PARTIAL_MARKER).write_text("run\n")
    kept = tmp_path / ".run.partial-notes"
    kept.mkdir()
    (kept / "notes.txt").write_text("not reportgen's")
    with publish.open_staging(tmp_path / "run", resume=False):
        pass
    assert not unborn.exists()
    assert (kept / "notes.txt").read_text() == "not reportgen's"


def test_discard_staging_removes_only_a_partial_directory(tmp_path: Path) -> None:
    with publish.open_staging(tmp_path / "run", resume=False) as staging:
        (staging / "config.toml").write_text("x")
        publish.discard_staging(staging)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    plain = tmp_path / "plain"
    plain.mkdir()
    publish.discard_staging(plain)
    assert plain.is_dir()


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
        publish.check_target(target)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_check_target_refuses_cwd_root_home_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    for target in (Path("."), project, tmp_path, Path("..")):
        with pytest.raises(RunDirError, match="current directory or one of its parents"):
            publish.check_target(target)
    with pytest.raises(RunDirError, match="over / or the home directory"):
        publish.check_target(Path("/"))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(RunDirError, match="over / or the home directory"):
        publish.check_target(home)
    (tmp_path / "link").symlink_to(home)
    with pytest.raises(RunDirError, match="symbolic link"):
        publish.check_target(tmp_path / "link")


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with its bytes (None for a folder)."""
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def test_check_target_accepts_new_empty_and_intact_runs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _make_run(tmp_path / "run", "m")
    (tmp_path / "run" / layout.LOG).write_text("log")
    targets = [tmp_path / "new" / "deeper", tmp_path / "empty", tmp_path / "run"]
    before = _tree(tmp_path)
    for target in targets:
        assert publish.check_target(target) is None
    assert _tree(tmp_path) == before  # checking changes nothing: "new" is not even created
    # Each accepted target really takes a new run (publish checks it again, then swaps).
    for target in targets:
        assert _publish(target, "replacement") is None
        assert (target / "metrics.json").read_text() == "replacement"
        assert manifest_mod.read_intact(target, action="check").artifacts["metrics.json"] == (
            manifest_mod.ArtifactEntry(sha256=fileio.sha256_bytes(b"replacement"), size=11)
        )
    assert not (tmp_path / "run" / layout.LOG).exists()  # the old run's log went with it
    # The same run is no longer accepted once it holds a file its manifest does not list.
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"does not list \(notes\.txt\)"):
        publish.check_target(tmp_path / "run")


def test_check_target_names_unlisted_and_changed_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(run, "m", work=True)
    (run / "notes.txt").write_text("mine")
    (run / "models" / "extra").mkdir()
    with pytest.raises(RunDirError, match=r"does not list \(models/extra/, notes.txt, work/\)"):
        publish.check_target(run)
    for extra in ("notes.txt", "models/extra", "work/a.ckpt", "work"):
        path = run / extra
        path.rmdir() if path.is_dir() else path.unlink()
    (run / "metrics.json").write_text("edited")
    with pytest.raises(RunDirError, match=r"changed since reportgen wrote them \(metrics.json\)"):
        publish.check_target(run)


def test_check_target_refuses_another_kind(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("x")
    manifest_mod.CompareManifest(inputs={}, artifacts=manifest_mod.artifact_hashes(out)).write(
        out / layout.MANIFEST
    )
    with pytest.raises(RunDirError, match="holds a reportgen comparison; refusing to replace it"):
        publish.check_target(out)
    publish.check_target(out, kind="compare")


def test_publish_checks_the_target_again(tmp_path: Path) -> None:
    final = tmp_path / "run"
    _publish(final, "first")
    with publish.open_staging(final, resume=False) as staging:
        _make_run(staging, "second")
        (final / "notes.txt").write_text("written while the run trained")
        with pytest.raises(RunDirError, match=r"notes\.txt"):
            publish.publish(staging, final)
    assert (final / "notes.txt").exists() and (final / "metrics.json").read_text() == "first"
    assert (staging / "metrics.json").read_text() == "second"  # the new run is not lost


def test_remove_output_deletes_only_what_reportgen_wrote(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(run, "m")
    (run / "models" / "mine.txt").write_text("keep")
    assert publish.remove_output(run) is False
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == [
        "models",
        "models/mine.txt",
    ]
    assert publish.remove_output(tmp_path / "nothing") is False


# --------------------------------------------------------------------------- reading a run


def test_read_manifest_and_check(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        manifest_mod.read_manifest(tmp_path / "missing")
    with pytest.raises(RunDirError, match="not a reportgen run"):
        manifest_mod.read_manifest(tmp_path)
    _make_run(tmp_path, "m")
    manifest = manifest_mod.read_manifest(tmp_path)
    assert manifest_mod.check_artifacts(tmp_path, manifest.artifacts) == []
    (tmp_path / "metrics.json").write_text("n")
    assert manifest_mod.check_artifacts(tmp_path, manifest.artifacts) == [
        f"metrics.json: SHA-256 {fileio.sha256_bytes(b'n')}, "
        f"manifest says {fileio.sha256_bytes(b'm')}"
    ]
    with pytest.raises(RunDirError, match="refusing to mail a tampered run"):
        manifest_mod.read_intact(tmp_path, action="mail")


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
    manifest = {**_manifest(tmp_path).dump(), **change}
    (tmp_path / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match=message) as caught:
        manifest_mod.read_manifest(tmp_path)
    assert "\n" not in str(caught.value)


def test_missing_environment_is_refused(tmp_path: Path) -> None:
    _make_run(tmp_path, "m")
    manifest = _manifest(tmp_path).dump()
    del manifest["environment"]
    (tmp_path / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="environment: Field required"):
        manifest_mod.read_manifest(tmp_path)


@pytest.mark.parametrize(
    "content", [b"[" * 100_000, b"\xff\xfe", b"[]", b"{" + b" " * (17 << 20) + b"}"]
)
def test_unreadable_manifests_are_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / layout.MANIFEST).write_bytes(content)
    with pytest.raises(RunDirError, match=layout.MANIFEST):
        manifest_mod.read_manifest(tmp_path)


def test_links_never_lead_out_of_the_run(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    run = tmp_path / "run"
    _make_run(run, "m")
    manifest = manifest_mod.read_manifest(run)
    # A listed file replaced by a link to a file outside, with the right hash.
    os.remove(run / "metrics.json")
    (outside / "m").write_text("m")
    (run / "metrics.json").symlink_to(outside / "m")
    with pytest.raises(RunDirError, match="symbolic link"):
        manifest_mod.read_artifact(run, "metrics.json", manifest)
    assert manifest_mod.check_artifacts(run, manifest.artifacts) == [
        "metrics.json: a symbolic link or not a regular file"
    ]
    # A listed file's folder replaced by a link to a folder outside.
    (outside / "models").mkdir()
    (outside / "models" / "a.pt").write_text("weights")
    (run / "models" / "a.pt").unlink()
    (run / "models").rmdir()
    (run / "models").symlink_to(outside / "models")
    with pytest.raises(RunDirError, match="symbolic link"):
        manifest_mod.read_artifact(run, "models/a.pt", manifest)
    # The manifest itself as a link.
    (outside / "manifest.json").write_bytes((run / layout.MANIFEST).read_bytes())
    (run / layout.MANIFEST).unlink()
    (run / layout.MANIFEST).symlink_to(outside / "manifest.json")
    with pytest.raises(RunDirError, match=r"unreadable manifest\.json"):
        manifest_mod.read_manifest(run)


def test_unlisted_files_are_never_read(tmp_path: Path) -> None:
    _make_run(tmp_path, "m")
    (tmp_path / "extra.txt").write_text("x")
    manifest = manifest_mod.read_manifest(tmp_path)
    with pytest.raises(RunDirError, match=r"extra\.txt is not listed"):
        manifest_mod.read_artifact(tmp_path, "extra.txt", manifest)
    assert publish.unlisted(tmp_path, manifest) == ["extra.txt"]
