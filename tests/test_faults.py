"""Fault injection: kills, interrupts, tampering and bad input never lose or corrupt a run."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reportgen.artifacts import layout, manifest, publish
from reportgen.data import idx

from .conftest import CliRunner, fake_cli_env, quick_overrides, specs_of

FAKE_CLI = Path(__file__).with_name("fake_cli.py")
REPO = Path(__file__).resolve().parents[1]


def _args(
    root: Path, out: Path, *extra: str, epochs: int = 3, pdf: bool = False, batch: int = 8
) -> list[str]:
    # Small batches make epochs long enough to be killed in. The PDF is left out
    # where the test is not about killing a run while it renders.
    sets = [
        *quick_overrides(root),
        f"train.epochs={epochs}",
        f"data.batch_size={batch}",
        f"report.pdf={str(pdf).lower()}",
    ]
    return [
        sys.executable, str(FAKE_CLI), "run", "--out", str(out),
        *[a for s in sets for a in ("--set", s)], *extra,
    ]  # fmt: skip


def _cli_args(root: Path, out: Path, *extra: str, **options: object) -> list[str]:
    """The same command line without the interpreter, for the ``cli`` fixture (in process)."""
    return _args(root, out, *extra, **options)[2:]  # type: ignore[arg-type]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _wait_for(path_glob: tuple[Path, str], process: subprocess.Popen[str], timeout: float = 120):
    folder, pattern = path_glob
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and list(folder.glob(pattern)):
            return
        if process.poll() is not None:
            raise AssertionError(f"run ended before {pattern} appeared: {process.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError(f"{pattern} never appeared in {folder}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("data")
    return root, fake_cli_env(root)


@pytest.fixture(scope="module")
def old_run(env: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run with another seed and fewer images: what a path holds before a run."""
    from reportgen.cli.main import main

    root, _ = env
    out = tmp_path_factory.mktemp("old") / "run"
    args = _cli_args(root, out, "--set", "seed=1", "--set", "data.limit_train=100", epochs=1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(idx, "MNIST_FILES", specs_of(root))
        assert main(["--quiet", *args]) == 0
    return out


def _artifacts(run: Path) -> dict[str, manifest.ArtifactEntry]:
    return manifest.read_manifest(run).artifacts


CHAIN: dict[str, Any] = {"pdf": True, "epochs": 2, "batch": 16}


def test_kill_9_anywhere_keeps_the_old_run_and_resumes_to_the_same_bytes(
    env: tuple[Path, dict[str, str]], old_run: Path, cli: CliRunner, tmp_path: Path
) -> None:
    """Killed while preparing data, while training, while rendering: each resume goes on.

    One run is killed three times in a row, each time at the first file of a
    stage, and resumed after each kill; it ends with the bytes of a run that
    was never interrupted.  Until then the previous run at the path is intact.
    """
    root, environ = env
    out = tmp_path / "run"
    shutil.copytree(old_run, out)  # a previous, different run is published at the path
    old_manifest = (out / "manifest.json").read_bytes()
    # With the PDF: it is rendered after report.html, the window the last kill lands in.
    for where, pattern in [
        ("data preparation", "config.toml"),
        ("training", "work/baseline.ckpt"),
        ("rendering", "report.html"),
    ]:
        resume = ["--resume"] if where != "data preparation" else []
        process = subprocess.Popen(_args(root, out, *resume, **CHAIN), env=environ, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        _wait_for((publish.partial_path(out), pattern), process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert (out / "manifest.json").read_bytes() == old_manifest, where
        assert manifest.check_artifacts(out, _artifacts(out)) == [], where
        assert publish.partial_path(out).is_dir(), where
    # The last resume and the reference are killed by nobody: they run in this process.
    resumed = cli("--quiet", *_cli_args(root, out, "--resume", **CHAIN), specs=specs_of(root))
    assert resumed.returncode == 0, resumed.stderr
    assert not publish.partial_path(out).exists()

    reference = tmp_path / "reference"  # the same run, never interrupted
    uninterrupted = cli("--quiet", *_cli_args(root, reference, **CHAIN), specs=specs_of(root))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert _artifacts(out) == _artifacts(reference)


def _signal_after_first_checkpoint(
    root: Path, out: Path, environ: dict[str, str], signum: int
) -> tuple[subprocess.Popen[str], str]:
    """Start a long run, send ``signum`` once its first checkpoint exists; return it and stderr."""
    process = subprocess.Popen(_args(root, out, epochs=30), env=environ, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for((publish.partial_path(out), "work/baseline.ckpt"), process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    return process, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_with_one_line(
    env: tuple[Path, dict[str, str]], tmp_path: Path, signum: int
) -> None:
    root, environ = env
    out = tmp_path / "run"
    process, err = _signal_after_first_checkpoint(root, out, environ, signum)
    assert process.returncode == 130
    partial = publish.partial_path(out)
    assert err.strip().splitlines()[-1] == (
        "reportgen: interrupted; the previous run (if any) is unchanged; the unfinished run is "
        f"kept in {partial} (rerun with --resume to continue from its last epoch)"
    )
    assert "Traceback" not in err
    assert not out.exists() and (partial / "work/baseline.ckpt").is_file()


def test_resume_refuses_tampered_checkpoint(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, _ = env
    out = tmp_path / "run"
    work = publish.partial_path(out) / "work"
    work.mkdir(parents=True)
    (work.parent / layout.PARTIAL_MARKER).write_text("run\n")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (work / "baseline.ckpt").write_bytes(pickle.dumps(Evil()))
    result = cli(*_cli_args(root, out, "--resume"), specs=specs_of(root))
    assert result.returncode == 2
    assert "checkpoint" in result.stderr and "tampered" in result.stderr
    assert not (tmp_path / "pwned").exists()


@pytest.fixture(scope="module")
def killed(env: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The partial directory a run killed after its first checkpoint left; read-only (copy it)."""
    root, environ = env
    out = tmp_path_factory.mktemp("killed") / "run"
    process, _ = _signal_after_first_checkpoint(root, out, environ, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    return publish.partial_path(out)


@pytest.mark.parametrize("payload", ["pickle", "garbage"])
def test_refused_checkpoint_is_one_line(
    env: tuple[Path, dict[str, str]], killed: Path, cli: CliRunner, tmp_path: Path, payload: str
) -> None:
    root, _ = env
    out = tmp_path / "run"
    shutil.copytree(killed, publish.partial_path(out))  # a real run's partial directory

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    content = pickle.dumps(Evil()) if payload == "pickle" else b"\x80\x04not a checkpoint"
    (publish.partial_path(out) / "work" / "baseline.ckpt").write_bytes(content)
    result = cli("--quiet", *_cli_args(root, out, "--resume", epochs=30), specs=specs_of(root))
    assert result.returncode == 2, result.stderr
    assert re.fullmatch(
        r"reportgen: error: checkpoint \S+baseline\.ckpt is unreadable or tampered with: .+\n",
        result.stderr,
    ), result.stderr
    assert "Warning" not in result.stderr and "weights_only" not in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_resume_without_partial_run(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, _ = env
    result = cli(*_cli_args(root, tmp_path / "run", "--resume"), specs=specs_of(root))
    assert result.returncode == 2 and "nothing to resume" in result.stderr


def test_resume_with_another_config_is_refused(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, _ = env
    out = tmp_path / "run"
    staging = publish.partial_path(out)
    staging.mkdir()
    (staging / layout.PARTIAL_MARKER).write_text("run\n")
    (staging / "config.toml").write_text("seed = 99\n")
    result = cli(*_cli_args(root, out, "--resume"), specs=specs_of(root))
    assert result.returncode == 2 and "config differs" in result.stderr


def test_unwritable_output_directory(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, _ = env
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli(*_cli_args(root, blocker / "run"), specs=specs_of(root))
    assert result.returncode == 2 and f"{blocker} is a file, not a directory" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_two_runs_into_one_out_one_is_refused_before_any_work(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, environ = env
    out = tmp_path / "run"

    def start(seed: int) -> subprocess.Popen[str]:
        args = _args(root, out, "--set", f"seed={seed}", "--set", "report.render=false",
                     epochs=1, batch=32)  # fmt: skip
        return subprocess.Popen(args, env=environ, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip

    # The first holds the output's lock (its partial directory appears only locked) and is
    # paused there, so the second always tries while the first is writing.
    first = start(0)
    partial, deadline = publish.partial_path(out), time.monotonic() + 600
    while not partial.exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)
    try:
        second = start(1)
        (_, refused_err), refused = second.communicate(timeout=600), second.returncode
    finally:
        first.send_signal(signal.SIGCONT)
    ended, status = first.communicate(timeout=600), first.returncode
    assert (status, refused) == (0, 2), (ended, refused_err)
    winner = 0
    assert refused_err == (
        f"reportgen: error: {out}: another reportgen command is writing it; wait for it to end "
        "or give another --out\n"
    )
    assert manifest.read_manifest(out).seed == winner
    assert f"seed = {winner}\n" in (out / "config.toml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no partial left behind
    verified = cli("verify", str(out), "--data-root", str(root), specs=specs_of(root))
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize("cause", ["data", "factory"])
def test_a_failure_with_nothing_to_resume_leaves_nothing(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path, cause: str
) -> None:
    root, _ = env
    out = tmp_path / "run"
    if cause == "data":
        (tmp_path / "empty").mkdir()
        extra = ["--set", f"data.root={json.dumps(str(tmp_path / 'empty'))}"]
    else:
        (tmp_path / "badnet.py").write_text("def make(**kwargs):\n    raise RuntimeError('no')\n")
        python = {"kind": "python", "factory": "badnet:make", "dropout": 0,
                  "batchnorm": False, "hidden": []}  # fmt: skip
        extra = [a for k, v in python.items()
                 for a in ("--set", f"models.regularized.{k}={json.dumps(v)}")]  # fmt: skip
    result = cli(*_cli_args(root, out, *extra), specs=specs_of(root), cwd=tmp_path)
    assert result.returncode == (1 if cause == "data" else 2), result.stderr
    assert result.stderr.count("reportgen: error: ") == 1 and "Traceback" not in result.stderr
    assert "kept" not in result.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["empty"] if cause == "data" else ["badnet.py"])


def test_a_failure_after_training_names_the_kept_run_and_resume_finishes(
    env: tuple[Path, dict[str, str]], cli: CliRunner, tmp_path: Path
) -> None:
    root, _ = env
    out = tmp_path / "run"
    templates = tmp_path / "templates"
    (templates / "partials").mkdir(parents=True)
    footer = templates / "partials" / "footer.html.j2"
    footer.write_text("<footer>{{ no_such_name.field }}</footer>\n")
    args = _cli_args(root, out, "--set", f"report.templates={json.dumps(str(templates))}",
                     epochs=1, batch=32)  # fmt: skip
    failed = cli(*args, specs=specs_of(root))
    partial = publish.partial_path(out)
    assert failed.returncode == 2, failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("reportgen: error: ") and "no_such_name" in line
    assert line.endswith(
        f"; the unfinished run is kept in {partial} (rerun with --resume to continue from "
        "its last epoch, or delete it)"
    )
    assert (partial / "work/baseline.ckpt").is_file() and not out.exists()

    footer.write_text("<footer>fixed</footer>\n")
    resumed = cli(*args, "--resume", specs=specs_of(root))
    assert resumed.returncode == 0, resumed.stderr
    assert "<footer>fixed</footer>" in (out / "report.html").read_text()
    assert not partial.exists()


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted read-only below ``tmp_path``, holding a folder ``ro/sub``."""
    mount = tmp_path / "ro"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a file system here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def test_a_read_only_output_is_refused_before_any_work(
    env: tuple[Path, dict[str, str]],
    read_only_mount: Path,
    old_run: Path,
    cli: CliRunner,
    tmp_path: Path,
) -> None:
    root, _ = env
    specs = specs_of(root)
    shutil.copytree(old_run, read_only_mount / "run")
    (read_only_mount / "empty").mkdir()
    _remount_read_only(read_only_mount)
    for out in (read_only_mount / "new", read_only_mount / "run"):
        result = cli(*_cli_args(root, out), specs=specs)
        assert result.returncode == 2
        assert result.stderr == (
            f"reportgen: error: {out}: {read_only_mount} is on a read-only file system; give an "
            "output on a writable one\n"
        )
    rendered = cli("render", str(read_only_mount / "run"), specs=specs)
    assert rendered.returncode == 2
    assert rendered.stderr == (
        f"reportgen: error: {read_only_mount / 'run'}: is on a read-only file system; render "
        "writes the reports into the run: copy it somewhere writable first\n"
    )
    # A mount point itself (here: the read-only one) cannot take a finished run.
    mounted = cli(*_cli_args(root, read_only_mount), specs=specs)
    assert mounted.returncode == 2
    assert f"{read_only_mount}: is a mount point" in mounted.stderr
    assert mounted.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]


def test_no_eval_exec_or_shell_anywhere() -> None:
    # Built-in eval/exec (not Module.eval()), shells and the weights-only escape hatch.
    pattern = re.compile(
        r"(?<![.\w])(eval|exec)\(|shell\s*=\s*True|os\.system\(|TORCH_FORCE_NO_WEIGHTS"
    )
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "reportgen").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_every_torch_load_is_weights_only() -> None:
    for path in sorted((REPO / "reportgen").rglob("*.py")):
        for line in path.read_text().splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"
