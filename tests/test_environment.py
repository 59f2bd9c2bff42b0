from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reportgen.core import environment

REPO = Path(__file__).resolve().parents[1]


def _head(cwd: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_git_commit_is_the_projects_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout of reportgen")
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "f").write_text("x")
    subprocess.run(["git", "-C", str(other), "add", "f"], check=True)
    subprocess.run(
        ["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@example.org",
         "commit", "-qm", "other"],
        check=True,
    )  # fmt: skip
    for cwd in (other, tmp_path):  # another repository, and no repository at all
        monkeypatch.chdir(cwd)
        commit = environment.git_commit()
        assert commit is not None and commit.removesuffix("-dirty") == _head(REPO)


def test_text_libraries_name_a_version_each() -> None:
    versions = environment.text_libraries()
    assert sorted(versions) == ["fontconfig", "freetype", "harfbuzz", "pango"]
    for name, version in versions.items():
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), (name, version)


def test_describe_records_the_text_libraries_with_the_packages() -> None:
    versions = environment.describe("cpu", 1)["versions"]
    assert {"pango", "harfbuzz", "freetype", "fontconfig", "fonttools", "weasyprint"} <= set(
        versions
    )
