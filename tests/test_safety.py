"""A hostile or careless user: no command deletes what is not its own, a run is data.

Each test is one way reportgen was misused, run through the command line as
a person would type it; each asserts exit status, one line of stderr and
that every file of the user's is still there.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts import publish
from reportgen.cli.main import main
from reportgen.core import fileio
from reportgen.data import idx
from tests.synthetic import rehash

from .conftest import QuickMnist, quick_overrides

FAKE_CLI = Path(__file__).with_name("fake_cli.py")


def _sets(mnist: QuickMnist, *extra: str) -> list[str]:
    return [a for item in (*quick_overrides(mnist.root), *extra) for a in ("--set", item)]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reportgen: error: "), err
    assert "internal error" not in err
    return err


def _tree(path: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(path).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
    }


@pytest.fixture
def mnist(quick_mnist: QuickMnist, monkeypatch: pytest.MonkeyPatch) -> QuickMnist:
    monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
    return quick_mnist


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    user = tmp_path / "userdir"
    (user / "sub").mkdir(parents=True)
    (user / "important.txt").write_text("precious\n")
    return user


# --------------------------------------------------------------------------- run --out


def test_run_refuses_a_directory_of_the_users(
    mnist: QuickMnist, user_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(user_dir.parent)
    assert main(["run", "--out", str(user_dir), *_sets(mnist)]) == 2
    err = _one_error_line(capsys)
    assert "not a reportgen run (holds important.txt, sub)" in err
    assert _tree(user_dir.parent) == before  # nothing deleted, nothing created


@pytest.mark.parametrize("target", [".", "..", "/", "~"])
def test_run_refuses_cwd_parents_root_and_home(
    mnist: QuickMnist,
    user_dir: Path,
    target: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(user_dir / "sub")
    monkeypatch.setenv("HOME", str(user_dir))
    before = _tree(user_dir.parent)
    out = str(Path(target).expanduser())
    assert main(["run", "--out", out, *_sets(mnist)]) == 2
    err = _one_error_line(capsys)
    assert "current directory" in err or "home directory" in err
    assert _tree(user_dir.parent) == before


def test_run_refuses_a_file_before_any_work(
    mnist: QuickMnist, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["--verbose", "run", "--out", str(target), *_sets(mnist)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"reportgen: error: {target}: exists and is not a directory; refusing to replace it\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no .partial


def test_run_refuses_a_run_holding_foreign_files_and_a_comparison(
    quick_run: Path, quick_compare: Path, tmp_path: Path, mnist: QuickMnist,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    (run / "figures" / "my-notes.md").write_text("mine")
    before = _tree(tmp_path)
    assert main(["run", "--out", str(run), *_sets(mnist)]) == 2
    assert "does not list (figures/my-notes.md)" in _one_error_line(capsys)
    assert _tree(tmp_path) == before
    compare_copy = tmp_path / "cmp"
    shutil.copytree(quick_compare, compare_copy)
    before = _tree(tmp_path)
    assert main(["run", "--out", str(compare_copy), *_sets(mnist)]) == 2
    assert "holds a reportgen comparison" in _one_error_line(capsys)
    assert _tree(tmp_path) == before


def test_run_replaces_its_own_previous_run(
    quick_run: Path, tmp_path: Path, mnist: QuickMnist, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    (run / "run.log").write_text("an older execution's log\n")
    assert main(["--quiet", "run", "--out", str(run), *_sets(mnist, "seed=3")]) == 0
    assert manifest_mod.read_manifest(run).seed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --------------------------------------------------------------------------- compare --out


def test_compare_refuses_a_run_and_a_users_directory(
    quick_run: Path, quick_run_lr: Path, user_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    before = _tree(tmp_path)
    for out, message in ((run, "holds a reportgen run"), (user_dir, "not a reportgen comparison")):
        assert main(["compare", str(quick_run), str(quick_run_lr), "--out", str(out)]) == 2
        assert message in _one_error_line(capsys)
    assert _tree(tmp_path) == before


def test_compare_replaces_its_own_output(
    quick_run: Path, quick_run_lr: Path, quick_compare: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    shutil.copytree(quick_compare, out)
    assert main(["--quiet", "compare", str(quick_run_lr), str(quick_run), "--out", str(out)]) == 0
    manifest = manifest_mod.read_manifest(out, manifest_mod.CompareManifest)
    assert sorted(manifest.artifacts) == [
        "compare.csv", "compare.html", "compare.pdf", "compare_history.png",
    ]  # fmt: skip
    assert manifest_mod.check_artifacts(out, manifest.artifacts) == []
    assert sorted(manifest.inputs) == ["quick", "quick-lr"]


# --------------------------------------------------------------------------- downloaded runs


EVIL = "{% set _ = cycler.__init__.__globals__.os.system('touch MARKER') %}"


def _evil_run(quick_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The issue's reproduction: a template that runs a command, named by the run's config."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "dl" / "evil"
    shutil.copytree(quick_run, evil)
    (evil / "pages").mkdir()
    (evil / "pages" / "report.html.j2").write_text(
        EVIL.replace("MARKER", str(marker)) + "{% extends 'frame.html.jinja2' %}\n"
    )
    config = evil / "config.toml"
    config.write_text(config.read_text().replace("[report]\n", '[report]\ntemplates = "evil"\n'))
    return evil, marker


def test_verify_refuses_a_tampered_run_before_running_anything(
    quick_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    evil, marker = _evil_run(quick_run, tmp_path)
    monkeypatch.chdir(evil.parent)
    before = _tree(tmp_path)
    assert main(["verify", "evil"]) == 2
    err = _one_error_line(capsys)
    assert "config.toml: SHA-256" in err and "refusing to verify a tampered run" in err
    assert not marker.exists()
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("package", ["namespace", "regular"])
def test_verify_allow_code_never_imports_a_module_from_inside_the_run(
    quick_run: Path, quick_mnist: QuickMnist, tmp_path: Path, package: str
) -> None:
    """A downloaded run ``art`` whose config names ``art.evilmod:make``, verified from its parent.

    The run directory would be the package ``art`` (a namespace package, or a
    regular one with an ``__init__.py``): the module is refused before anything
    of the run is imported.
    """
    marker = tmp_path / "pwned"
    run = tmp_path / "art"
    shutil.copytree(quick_run, run)
    planted = f"open({str(marker)!r}, 'w').close()\n\ndef make():\n    pass\n"
    (run / "evilmod.py").write_text(planted)
    if package == "regular":
        (run / "__init__.py").write_text(planted)
    config = run / "config.toml"
    section = (
        '[models.regularized]\nkind = "mlp"\nhidden = [256, 128]\ndropout = 0.3\nbatchnorm = true\n'
    )
    assert section in config.read_text()
    config.write_text(config.read_text().replace(
        section, '[models.regularized]\nkind = "python"\nfactory = "art.evilmod:make"\n'
    ))  # fmt: skip
    rehash(run)  # the run is consistent: only where the module comes from is wrong
    before = _tree(tmp_path)
    specs = {name: [spec.size, spec.sha256] for name, spec in quick_mnist.specs.items()}
    result = subprocess.run(
        [sys.executable, str(FAKE_CLI), "verify", "art", "--allow-code",
         "--data-root", str(quick_mnist.root)],
        cwd=tmp_path, env={**os.environ, "REPORTGEN_TEST_FILES": json.dumps(specs)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    place = run / "__init__.py" if package == "regular" else run
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "",
        f"reportgen: error: models.regularized.factory: art would be imported from {place}, "
        "inside art; code from inside a run directory is never run\n",
    )  # fmt: skip
    assert not marker.exists()
    assert _tree(tmp_path) == before


def test_render_of_a_run_with_an_evil_template_runs_nothing(
    quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil, marker = _evil_run(quick_run, tmp_path)
    shutil.copy(quick_run / "config.toml", evil / "config.toml")  # the manifest matches again
    assert main(["render", str(evil), "--templates", str(evil)]) == 2
    assert "unsafe" in _one_error_line(capsys)
    assert not marker.exists()
    assert (evil / "report.html").read_bytes() == (quick_run / "report.html").read_bytes()


def test_verify_takes_no_path_from_the_run(
    quick_run: Path, mnist: QuickMnist, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "quick"
    shutil.copytree(quick_run, copy)
    # The data elsewhere than the run's data.root says: verify reads the data it is told to.
    elsewhere = shutil.copytree(mnist.root, tmp_path / "elsewhere")
    assert main(["--quiet", "verify", str(copy), "--data-root", str(elsewhere)]) == 0
    out = capsys.readouterr().out
    assert "verified: all" in out and "differs" not in out
    empty = tmp_path / "no-data"
    empty.mkdir()
    with_download_off = main(["--quiet", "verify", str(copy), "--data-root", str(empty)])
    err = capsys.readouterr().err
    assert with_download_off != 0 and str(empty) in err


def test_render_reads_only_listed_files_inside_the_run(
    quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "quick"
    shutil.copytree(quick_run, copy)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the run")
    (copy / "extra.txt").write_text("not listed")
    (copy / "figures" / "outside.png").symlink_to(secret)
    assert main(["render", str(copy)]) == 0
    manifest = manifest_mod.read_manifest(copy)
    assert "extra.txt" not in manifest.artifacts
    assert "figures/outside.png" not in manifest.artifacts
    assert set(manifest.artifacts) == set(manifest_mod.read_manifest(quick_run).artifacts)

    data = manifest.dump()
    data["artifacts"]["../../etc/passwd"] = {"sha256": "0" * 64, "size": 1}
    (copy / "manifest.json").write_text(json.dumps(data))
    assert main(["render", str(copy)]) == 2
    assert "'../../etc/passwd' is not a relative path inside the run" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["artifacts"].update({"metrics.json": "abc"}), "artifacts.metrics.json"),
        (lambda m: m.pop("environment"), "environment: Field required"),
        (lambda m: m["artifacts"].update({"history.csv": []}), "artifacts.history.csv"),
    ],
)
@pytest.mark.parametrize("command", ["render", "compare", "email", "verify"])
def test_malformed_manifests_exit_2_with_one_line(
    quick_run: Path, quick_run_lr: Path, tmp_path: Path, edit: object, message: str,
    command: str, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    copy = tmp_path / "quick"
    shutil.copytree(quick_run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)  # type: ignore[operator]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    args = {
        "render": ["render", str(copy)],
        "compare": ["compare", str(quick_run_lr), str(copy), "--out", str(tmp_path / "c")],
        "email": ["email", str(copy), "--to", "a@example.org", "--eml-out", str(tmp_path / "m")],
        "verify": ["verify", str(copy)],
    }[command]
    assert main(args) == 2
    assert message in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick"]


def test_email_refuses_a_run_with_tampered_weights(
    quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "quick"
    shutil.copytree(quick_run, copy)
    weights = copy / "models" / "baseline.pt"
    weights.write_bytes(weights.read_bytes() + b"\0")
    eml = tmp_path / "report.eml"
    assert main(["email", str(copy), "--to", "a@example.org", "--eml-out", str(eml)]) == 2
    err = _one_error_line(capsys)
    assert "models/baseline.pt: SHA-256" in err and "refusing to mail a tampered run" in err
    assert not eml.exists()


def test_email_never_overwrites_a_file_it_did_not_write(
    quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "notes.txt"
    eml.write_text("mine")
    args = ["email", str(quick_run), "--to", "a@example.org", "--eml-out", str(eml)]
    assert main(args) == 2
    assert "not a message reportgen wrote" in _one_error_line(capsys)
    assert eml.read_text() == "mine"
    eml.unlink()
    assert main(args) == 0 and main(args) == 0  # its own message it may replace


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_names_the_file_and_keeps_the_work(
    mnist: QuickMnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up when the figures are written
        if "/figures/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    assert main(["--quiet", "run", "--out", str(out), *_sets(mnist)]) == 1
    err = _one_error_line(capsys)
    staging = publish.partial_path(out)
    assert "No space left on device" in err and "figures/" in err
    assert f"the unfinished run is kept in {staging}" in err and "--resume" in err
    assert (staging / "work").is_dir() and not out.exists()
    monkeypatch.setattr(fileio.os, "fsync", real_fsync)
    assert main(["--quiet", "run", "--out", str(out), "--resume", *_sets(mnist)]) == 0
    assert manifest_mod.check_artifacts(out, manifest_mod.read_manifest(out).artifacts) == []
