from __future__ import annotations

import json
from pathlib import Path

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


def _make_run(root: Path, marker: str) -> None:
    (root / "models").mkdir(parents=True)
    (root / "metrics.json").write_text(marker)
    (root / "models" / "a.pt").write_text("weights")
    (root / "work").mkdir()
    (root / "work" / "a.ckpt").write_text("checkpoint")


def test_artifact_hashes_skip_manifest_and_work(tmp_path: Path) -> None:
    _make_run(tmp_path, "m")
    (tmp_path / "manifest.json").write_text("{}")
    hashes = rundir.artifact_hashes(tmp_path)
    assert list(hashes) == ["metrics.json", "models/a.pt"]
    assert hashes["metrics.json"] == {"sha256": rundir.sha256_bytes(b"m"), "size": 1}


def test_publish_replaces_previous_run(tmp_path: Path) -> None:
    final = tmp_path / "run"
    for marker in ("first", "second"):
        staging = rundir.open_staging(final, resume=False)
        assert staging == tmp_path / ".run.partial"
        _make_run(staging, marker)
        rundir.publish(staging, final)
        assert (final / "metrics.json").read_text() == marker
        assert not (final / "work").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert oct(final.stat().st_mode & 0o777) == "0o755"


def test_new_run_clears_stale_partial(tmp_path: Path) -> None:
    final = tmp_path / "run"
    stale = rundir.partial_path(final)
    stale.mkdir()
    (stale / "junk").write_text("x")
    staging = rundir.open_staging(final, resume=False)
    assert list(staging.iterdir()) == []


def test_resume_needs_a_partial_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="nothing to resume"):
        rundir.open_staging(tmp_path / "run", resume=True)


def test_read_manifest_and_check(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        rundir.read_manifest(tmp_path / "missing")
    with pytest.raises(RunDirError, match="not a reportgen run"):
        rundir.read_manifest(tmp_path)
    _make_run(tmp_path, "m")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"artifacts": rundir.artifact_hashes(tmp_path)})
    )
    manifest = rundir.read_manifest(tmp_path)
    assert rundir.check_artifacts(tmp_path, manifest["artifacts"]) == []
    (tmp_path / "metrics.json").write_text("n")
    assert rundir.check_artifacts(tmp_path, manifest["artifacts"]) == [
        f"metrics.json: SHA-256 {rundir.sha256_bytes(b'n')}, "
        f"manifest says {rundir.sha256_bytes(b'm')}"
    ]
