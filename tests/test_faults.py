"""Fault injection: kills, interrupts, tampering and bad input never lose or corrupt a run."""

from __future__ import annotations

import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reportgen.artifacts import layout, manifest, publish

from .conftest import fake_cli_env, quick_overrides

FAKE_CLI = Path(__file__).with_name("fake_cli.py")
REPO = Path(__file__).resolve().parents[1]


def _args(root: Path, out: Path, *extra: str, epochs: int = 3, pdf: bool = False) -> list[str]:
    # Small batches make epochs long enough to be killed in. The PDF is left out
    # where the test is not about killing a run while it renders.
    sets = [
        *quick_overrides(root),
        f"train.epochs={epochs}",
        "data.batch_size=8",
        f"report.pdf={str(pdf).lower()}",
    ]
    return [
        sys.executable, str(FAKE_CLI), "run", "--out", str(out),
        *[a for s in sets for a in ("--set", s)], *extra,
    ]  # fmt: skip


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
def reference(env: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run, the yardstick for every resumed one."""
    root, environ = env
    out = tmp_path_factory.mktemp("ref") / "run"
    result = _run(_args(root, out, pdf=True), environ)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def old_run(env: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run with another seed: what a path holds before a run is killed."""
    root, environ = env
    out = tmp_path_factory.mktemp("old") / "run"
    result = _run(_args(root, out, "--set", "seed=1"), environ)
    assert result.returncode == 0, result.stderr
    return out


def _artifacts(run: Path) -> dict[str, manifest.ArtifactEntry]:
    return manifest.read_manifest(run).artifacts


@pytest.mark.parametrize(
    ("where", "pattern"),
    [
        ("data preparation", "config.toml"),
        ("training", "work/baseline.ckpt"),
        ("rendering", "report.html"),
    ],
)
def test_kill_9_keeps_old_run_and_resume_is_byte_identical(
    env: tuple[Path, dict[str, str]],
    reference: Path,
    old_run: Path,
    tmp_path: Path,
    where: str,
    pattern: str,
) -> None:
    root, environ = env
    out = tmp_path / "run"
    shutil.copytree(old_run, out)  # a previous, different run is published at the path
    old_manifest = (out / "manifest.json").read_bytes()

    # With the PDF: it is rendered after report.html, the window the kill lands in.
    process = subprocess.Popen(_args(root, out, pdf=True), env=environ, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for((publish.partial_path(out), pattern), process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert (out / "manifest.json").read_bytes() == old_manifest, where
    assert manifest.check_artifacts(out, _artifacts(out)) == []
    assert publish.partial_path(out).is_dir()

    resumed = _run(_args(root, out, "--resume", pdf=True), environ)
    assert resumed.returncode == 0, resumed.stderr
    assert _artifacts(out) == _artifacts(reference)
    assert not publish.partial_path(out).exists()


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
    assert err.strip().splitlines()[-1].startswith("reportgen: interrupted")
    assert "Traceback" not in err
    assert not out.exists()


def test_resume_refuses_tampered_checkpoint(
    env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, environ = env
    out = tmp_path / "run"
    work = publish.partial_path(out) / "work"
    work.mkdir(parents=True)
    (work.parent / layout.PARTIAL_MARKER).write_text("run\n")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (work / "baseline.ckpt").write_bytes(pickle.dumps(Evil()))
    result = _run(_args(root, out, "--resume"), environ)
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
    env: tuple[Path, dict[str, str]], killed: Path, tmp_path: Path, payload: str
) -> None:
    root, environ = env
    out = tmp_path / "run"
    shutil.copytree(killed, publish.partial_path(out))  # a real run's partial directory

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    content = pickle.dumps(Evil()) if payload == "pickle" else b"\x80\x04not a checkpoint"
    (publish.partial_path(out) / "work" / "baseline.ckpt").write_bytes(content)
    python, cli, *rest = _args(root, out, "--resume", epochs=30)
    result = _run([python, cli, "--quiet", *rest], environ)
    assert result.returncode == 2, result.stderr
    assert re.fullmatch(
        r"reportgen: error: checkpoint \S+baseline\.ckpt is unreadable or tampered with: .+\n",
        result.stderr,
    ), result.stderr
    assert "Warning" not in result.stderr and "weights_only" not in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_resume_without_partial_run(env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, environ = env
    result = _run(_args(root, tmp_path / "run", "--resume"), environ)
    assert result.returncode == 2 and "nothing to resume" in result.stderr


def test_resume_with_another_config_is_refused(
    env: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, environ = env
    out = tmp_path / "run"
    staging = publish.partial_path(out)
    staging.mkdir()
    (staging / layout.PARTIAL_MARKER).write_text("run\n")
    (staging / "config.toml").write_text("seed = 99\n")
    result = _run(_args(root, out, "--resume"), environ)
    assert result.returncode == 2 and "config differs" in result.stderr


def test_unwritable_output_directory(env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, environ = env
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run(_args(root, blocker / "run"), environ)
    assert result.returncode == 2 and f"{blocker} is a file, not a directory" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


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
