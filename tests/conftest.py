"""Shared fixtures: a small generated MNIST-format dataset, so tests never need the network."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from reportgen.config.loading import load_config
from reportgen.data import idx, sources
from reportgen.data.idx import FileSpec, write_idx
from reportgen.data.tensors import Dataset

N_TRAIN, N_TEST = 600, 200


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` learnable 28×28 uint8 images: class k lights up a k-specific bar, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row = 2 + 2 * int(label)
        images[i, row : row + 3, 4:24] = 230
    return images, labels


def write_fake_mnist(
    root: Path, *, n_train: int = N_TRAIN, n_test: int = N_TEST
) -> dict[str, FileSpec]:
    """Write generated IDX files under ``root/MNIST/raw`` and return their specs."""
    raw = idx.raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    train_x, train_y = make_digits(n_train, seed=1)
    test_x, test_y = make_digits(n_test, seed=2)
    arrays = {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }
    specs = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        write_idx(buffer, array)
        (raw / name).write_bytes(buffer.getvalue())
        specs[name] = FileSpec(
            len(buffer.getvalue()), hashlib.sha256(buffer.getvalue()).hexdigest()
        )
    return specs


def load_mnist(
    root: Path, *, seed: int = 0, val_size: int = 100, limit_train: int = 0, limit_test: int = 0
) -> Dataset:
    """Return the MNIST files under ``root``, split as a run with these settings does."""
    config = load_config(None, [
        f"data.root={json.dumps(str(root))}", "data.download=false", f"seed={seed}",
        f"data.val_size={val_size}", f"data.limit_train={limit_train}",
        f"data.limit_test={limit_test}",
    ])  # fmt: skip
    return sources.load(config)[1]


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root holding generated MNIST files that the code accepts as verified."""
    root = tmp_path / "data"
    specs = write_fake_mnist(root)
    monkeypatch.setattr(idx, "MNIST_FILES", specs)
    return root


def quick_overrides(root: Path) -> list[str]:
    """Return ``--set`` options for a fast run on the generated dataset.

    One thread trains the models one after another in this process (no worker
    to start), no PDF is laid out, and neither corruptions, duplicates nor
    label errors are looked for (the session's ``quick_run`` has them all): a
    test that needs one sets it again.
    """
    return [
        f"data.root={json.dumps(str(root))}",
        "data.val_size=100",
        "data.download=false",
        "train.epochs=2",
        "data.batch_size=32",
        "train.eval_batch_size=256",
        "report.bootstrap_resamples=200",
        "runtime.threads=1",
        "report.pdf=false",
        *NO_CHECKS,
    ]


# The checks of the test set that cost a run most; a test not about them leaves them out.
NO_CHECKS = (
    "report.robustness.enabled=false",
    "report.duplicates=false",
    "report.label_issues=false",
)


# What quick_overrides leaves out of a run and a default run has: a test of them sets them.
EVERY_CHECK = (
    "report.robustness.enabled=true",
    "report.duplicates=true",
    "report.label_issues=true",
)


def fake_cli_env(root: Path) -> dict[str, str]:
    """Environment for running ``tests/fake_cli.py`` in a subprocess against ``root``."""
    specs = {name: [spec.size, spec.sha256] for name, spec in write_fake_mnist(root).items()}
    return {**os.environ, "REPORTGEN_TEST_FILES": json.dumps(specs)}


class CliResult(NamedTuple):
    """What one ``reportgen`` command line gave: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


CliRunner = Callable[..., CliResult]


def _forget_modules_in(folder: Path) -> None:
    """Drop every imported module whose file lies in ``folder`` (a test's own factories)."""
    inside = str(folder.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file).startswith(inside):
            del sys.modules[name]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``reportgen`` command lines in this process: ``cli(*args, specs=..., cwd=...)``.

    The production entry point, its parsing, errors and exit statuses, without
    a new interpreter to start (seconds of imports each): for commands that
    need no process of their own (nothing killed, paused or left running).
    ``specs`` are the IDX hashes to accept (the generated data's), ``cwd``
    the directory to run in (a factory is imported from there).
    """
    from reportgen.cli.main import main

    def run(*args: str, specs: dict[str, FileSpec] | None = None,
            cwd: Path | None = None) -> CliResult:  # fmt: skip
        with pytest.MonkeyPatch.context() as monkeypatch:
            if specs is not None:
                monkeypatch.setattr(idx, "MNIST_FILES", specs)
            if cwd is not None:
                monkeypatch.chdir(cwd)
            capsys.readouterr()
            try:
                status = main(list(args))
            finally:
                captured = capsys.readouterr()
                if cwd is not None:  # user code imported from there: the next test has its own
                    _forget_modules_in(cwd)
        return CliResult(status, captured.out, captured.err)

    return run


class QuickMnist(NamedTuple):
    """Generated MNIST written once per session: its data root and the specs that verify it."""

    root: Path
    specs: dict[str, FileSpec]


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """Return a folder that ``build`` fills once for the whole test session.

    With pytest-xdist every worker is a session of its own; the folder is then
    made in the directory the workers share, under a lock, by the first worker
    that asks for it, and the others use it as it is (read-only, like every
    session fixture here).
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of one run
    folder = base / f"shared-{name}"
    with open(base / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / f"shared-{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (base / f"shared-{name}.built").touch()
    return folder


def specs_of(root: Path) -> dict[str, FileSpec]:
    """Return the specs that verify the IDX files under ``root/MNIST/raw``."""
    raw = idx.raw_dir(root)
    return {
        name: FileSpec(
            (raw / name).stat().st_size, hashlib.sha256((raw / name).read_bytes()).hexdigest()
        )
        for name in idx.MNIST_FILES
    }


@pytest.fixture(scope="session")
def quick_mnist(tmp_path_factory: pytest.TempPathFactory) -> QuickMnist:
    """Generated MNIST shared by the session's quick runs.

    ``data.MNIST_FILES`` is patched only while a run is made, not for the whole
    session: the real-data tests in the same session need the official hashes.
    A test that trains again from a quick run (verify, resume) patches it with
    ``quick_mnist.specs`` itself.
    """
    root = built_once(tmp_path_factory, "quick_data", write_fake_mnist)
    return QuickMnist(root, specs_of(root))


def make_quick_run(mnist: QuickMnist, out: Path, *overrides: str) -> Path:
    """Run ``reportgen run`` on the generated data into ``out`` and return ``out``."""
    from reportgen.cli.main import main

    sets = [arg for item in (*quick_overrides(mnist.root), *overrides) for arg in ("--set", item)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(idx, "MNIST_FILES", mnist.specs)
        assert main(["--quiet", "run", "--out", str(out), *sets]) == 0
    return out


# What the session's quick run sets besides quick_overrides: every artifact a default run writes.
QUICK_RUN = ("report.pdf=true", "runtime.threads=2", *EVERY_CHECK)


@pytest.fixture(scope="session")
def quick_run(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run on the generated data, made once per session; read-only (copy to change)."""
    folder = built_once(
        tmp_path_factory, "quick_run",
        lambda folder: make_quick_run(quick_mnist, folder / "quick", *QUICK_RUN),
    )  # fmt: skip
    return folder / "quick"


@pytest.fixture(scope="session")
def quick_run_lr(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second session run that differs from ``quick_run`` only in ``train.lr``; read-only."""
    folder = built_once(
        tmp_path_factory, "quick_run_lr",
        lambda folder: make_quick_run(quick_mnist, folder / "quick-lr", "train.lr=0.002",
                                      "report.pdf=true", "runtime.threads=2"),
    )  # fmt: skip
    return folder / "quick-lr"


@pytest.fixture(scope="session")
def quick_compare(
    quick_run: Path, quick_run_lr: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The output directory of ``reportgen compare`` on the two quick runs; read-only."""
    from reportgen.cli.main import main

    out = tmp_path_factory.mktemp("quick_compare") / "compare"
    assert main(["--quiet", "compare", str(quick_run), str(quick_run_lr), "--out", str(out)]) == 0
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVERS = "REPORTGEN_TEST_SERVERS"  # a folder of <name>.pid files, one per server started


def pytest_configure(config: pytest.Config) -> None:
    """In the controller (or a run without xdist): make the folder the servers' ids go to.

    The workers inherit it through the environment, so a server one worker
    starts is used by every worker and stopped once, when the whole run ends.
    """
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(SERVERS, tempfile.mkdtemp(prefix="reportgen-test-servers-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    """After every worker has ended: stop each server's process group, by its id."""
    if hasattr(config, "workerinput") or SERVERS not in os.environ:
        return
    folder = Path(os.environ.pop(SERVERS))
    for pid_file in sorted(folder.glob("*.pid")):
        _stop_group(int(pid_file.read_text()))
    shutil.rmtree(folder, ignore_errors=True)


def _stop_group(pid: int) -> None:
    """End the process group ``pid`` leads: SIGTERM, then SIGKILL after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it where this process started it
            os.killpg(pid, 0)  # ProcessLookupError once the group is gone
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)


def _start_mlflow(folder: Path) -> None:
    """Start an MLflow tracking server with a SQLite store in ``folder``; write its URI."""
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    port = _free_port()
    with open(folder / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(mlflow_cli), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # Tracking only: no job runner (seven more processes the tests never use).
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
    (Path(os.environ[SERVERS]) / f"mlflow-{server.pid}.pid").write_text(str(server.pid))
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the MLflow server did not start: {(folder / 'server.log').read_text()}")
        time.sleep(0.5)
    (folder / "server.json").write_text(json.dumps({"uri": uri}))


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real MLflow tracking server on 127.0.0.1, one for the whole test run; its URI.

    The first worker that asks starts it (``built_once``); it runs in a process
    group of its own (the server starts workers), ended as a whole when the run
    ends (``pytest_unconfigure``).  Skipped where MLflow is not installed.
    """
    if not (Path(sys.executable).parent / "mlflow").is_file():
        pytest.skip("the mlflow server is not installed (pip install -e '.[dev]')")
    folder = built_once(tmp_path_factory, "mlflow", _start_mlflow)
    return str(json.loads((folder / "server.json").read_text())["uri"])
