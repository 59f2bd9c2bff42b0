"""Tests for `reportgen sweep`: the same bytes on every executor, faults, resume, the report."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reportgen.artifacts import layout, publish
from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts.sweepdoc import parse_sweep
from reportgen.cli.main import main
from reportgen.config.sweepspec import load_sweep
from reportgen.core.errors import ConfigError
from reportgen.data import idx
from reportgen.sweep.driver import run_sweep
from reportgen.sweep.executors import LocalExecutor, RayExecutor, local_workers
from reportgen.sweep.plan import LOG_NAME, MARKER, TIMINGS

from .conftest import QuickMnist, fake_cli_env
from .imagefolder_fixture import make_image_folder
from .sweep_support import (
    LOOPBACK_ONLY,
    accept_files,
    free_ports,
    plain_specs,
    quick_settings,
    ray_head,
    write_sweep,
)

FAKE_CLI = Path(__file__).with_name("fake_cli.py")
SEEDS = [0, 1, 2]


def tree(root: Path) -> dict[str, str]:
    """Return the SHA-256 of every file below ``root`` but those that record an execution."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        name = path.name
        timing = rel in (TIMINGS, LOG_NAME, layout.MANIFEST) or (
            rel.startswith("points/") and name in (layout.MANIFEST, layout.LOG)
        )
        if path.is_file() and not timing:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def sweep_file(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default configuration over three seeds, small enough to take seconds per run.

    Its runs are written without their own reports, as a large sweep's are.
    """
    folder = tmp_path_factory.mktemp("sweepfile")
    settings = quick_settings(
        quick_mnist.root, "data.limit_train=120", "train.lr=0.0001", 'run.date="2024-05-06"'
    )
    return write_sweep(folder / "seeds.toml", seeds=SEEDS, overrides=settings, run_reports="none")


@pytest.fixture(scope="module")
def local_sweep(
    sweep_file: Path, quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("local") / "sweep"
    setup = functools.partial(accept_files, plain_specs(quick_mnist.specs))
    executor = LocalExecutor(out.absolute(), workers=2, setup=setup)
    result = run_sweep(load_sweep(sweep_file), out, executor)
    assert result.failed == {} and len(result.succeeded) == len(SEEDS)
    return out


def test_local_sweep_writes_every_run_and_the_report(local_sweep: Path) -> None:
    for seed in SEEDS:
        run = local_sweep / f"points/base/seed-{seed}"
        manifest = manifest_mod.read_intact(run, action="check")
        # run_reports = "none": the run's data, and neither figures nor report.
        assert {"metrics.json", "predictions.csv", "models/baseline.pt"} <= set(manifest.artifacts)
        assert not any(name.startswith(("figures/", "report.")) for name in manifest.artifacts)
        assert not (run / "figures").exists() and not (run / "report.html").exists()
    manifest = manifest_mod.read_intact(local_sweep, manifest_mod.SweepManifest, action="check")
    assert publish.unlisted(local_sweep, manifest) == []
    assert not (local_sweep / MARKER).exists()
    document = parse_sweep((local_sweep / "sweep.json").read_bytes())
    assert [run.seed for run in document.runs] == SEEDS
    stats = document.points[0].models["regularized"].test_accuracy
    per_run = [
        json.loads((local_sweep / f"points/base/seed-{s}/metrics.json").read_text())["models"][
            "regularized"]["test_accuracy"]
        for s in SEEDS
    ]  # fmt: skip
    assert stats.values == per_run
    assert stats.mean == pytest.approx(sum(per_run) / len(per_run))
    comparison = document.comparisons[0]
    assert comparison.scope == "models" and comparison.tests == len(SEEDS)
    html = (local_sweep / "sweep.html").read_text()
    assert "report.html" not in html and "written without its own report" in html
    assert [run.report for run in document.runs] == [None] * len(SEEDS)
    assert comparison.sentence.split(";")[0] in html.replace("&#43;", "+")
    assert "points/base/seed-0/figures" not in html  # no run's image is embedded
    csv = (local_sweep / "sweep.csv").read_text().splitlines()
    assert len(csv) == 1 + len(SEEDS) and csv[0].startswith("run,point,seed,status")
    assert (local_sweep / "sweep.pdf").read_bytes().startswith(b"%PDF")


def test_ray_sweep_is_byte_identical_to_the_local_one(
    sweep_file: Path, quick_mnist: QuickMnist, local_sweep: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    import ray

    out = tmp_path / "sweep"
    setup = functools.partial(accept_files, plain_specs(quick_mnist.specs))
    executor = RayExecutor(setup=setup, num_cpus=2)  # a local instance of the test's own
    assert executor.address == "local"
    result = run_sweep(load_sweep(sweep_file), out, executor)
    assert not ray.is_initialized()  # the instance it started is shut down
    assert result.failed == {}
    assert tree(out) == tree(local_sweep)
    assert "on a Ray task" in (out / LOG_NAME).read_text()


def test_each_run_equals_a_plain_run_of_its_point_and_seed(
    local_sweep: Path, quick_mnist: QuickMnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
    out = tmp_path / "plain"
    config = local_sweep / "points/base/config.toml"
    assert main(["--quiet", "run", "--config", str(config), "--set", "seed=2", "--out",
                 str(out)]) == 0  # fmt: skip
    ours = manifest_mod.read_manifest(local_sweep / "points/base/seed-2").artifacts
    assert manifest_mod.read_manifest(out).artifacts == ours


def test_a_run_written_without_its_report_says_so_on_render_and_verifies(
    local_sweep: Path, quick_mnist: QuickMnist, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import shutil

    run = tmp_path / "run"
    shutil.copytree(local_sweep / "points/base/seed-1", run)
    before = tree(run)
    assert main(["render", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"reportgen: error: {run}: the run was written without its report (report.render = "
        "false) and has no figures to render; run it again with --set report.render=true for "
        "one\n"
    )
    assert tree(run) == before  # nothing written
    monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
    assert main(["--quiet", "verify", str(run), "--data-root", str(quick_mnist.root)]) == 0


def test_reinvocation_keeps_every_run_and_the_gate_reads_seed_means(
    sweep_file: Path, local_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again"
    import shutil

    shutil.copytree(local_sweep, out)
    before = {p: p.stat().st_mtime_ns for p in out.glob("points/base/seed-*/manifest.json")}
    mean = parse_sweep((out / "sweep.json").read_bytes()).points[0].models["baseline"]
    threshold = round(mean.test_accuracy.mean + 0.001, 4)
    status = main(["--quiet", "sweep", str(sweep_file), "--out", str(out), "--fail-under",
                   f"baseline.test_accuracy={threshold}"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 3, err
    assert re.search(r"threshold failed: base: mean baseline.test_accuracy = 0\.\d{4} < ", err)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing redone
    assert (out / LOG_NAME).read_text().count("complete already; kept") == len(SEEDS)
    assert tree(out) == tree(local_sweep)
    assert main(["--quiet", "sweep", str(sweep_file), "--out", str(out), "--fail-under",
                 f"baseline.test_accuracy={threshold - 0.01:.4f}"]) == 0  # fmt: skip


def test_ray_missing_is_a_one_line_error(
    sweep_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    status = main(["sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--executor", "ray"])
    err = capsys.readouterr().err
    assert status == 2
    assert err == (
        "reportgen: error: --executor ray needs Ray, which is not installed: "
        "pip install 'reportgen[ray]'\n"
    )


def test_workers_never_oversubscribe_the_cores() -> None:
    assert local_workers(None, 1, 2) == 2
    assert local_workers(None, 2, 2) == 1
    assert local_workers(None, 4, 2) == 1
    with pytest.raises(ConfigError, match=r"--workers 2 with runtime.threads = 2 needs 4 cores"):
        local_workers(2, 2, 2)


def test_an_output_that_is_not_a_sweep_is_refused(
    sweep_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", str(sweep_file), "--out", str(out)]) == 2
    assert "not a reportgen sweep" in capsys.readouterr().err
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["notes.txt"]


# --------------------------------------------------------------------------- kills


@pytest.fixture(scope="module")
def kill_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A sweep file of two slow-enough runs, one worker, and the environment of fake_cli."""
    folder = tmp_path_factory.mktemp("kill")
    environ = fake_cli_env(folder / "data")
    settings = quick_settings(folder / "data", "train.epochs=3", "data.batch_size=8",
                              'run.date="2024-05-06"')  # fmt: skip
    sweep = write_sweep(folder / "kill.toml", seeds=[0, 1], overrides=settings, run_reports="none")
    return sweep, environ


def _sweep(sweep: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(FAKE_CLI), "sweep", str(sweep), "--out", str(out),
            "--workers", "1", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(kill_env: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
                  ) -> Path:  # fmt: skip
    sweep, environ = kill_env
    out = tmp_path_factory.mktemp("uninterrupted") / "sweep"
    done = subprocess.run(_sweep(sweep, out), env=environ, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _wait(predicate, process: subprocess.Popen[str], what: str, timeout: float = 180) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}: {process.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.02)
    raise AssertionError(f"{what} never happened")


def _log(out: Path) -> str:
    path = out / LOG_NAME
    return path.read_text() if path.exists() else ""


def test_a_killed_worker_costs_its_attempt_and_a_killed_driver_loses_nothing(
    kill_env: tuple[Path, dict[str, str]], uninterrupted: Path, tmp_path: Path
) -> None:
    """One sweep: its first run's worker is killed, then the driver itself; resume finishes.

    A worker killed by its pid costs only that attempt (the next continues
    from its checkpoint); a driver killed with SIGKILL leaves every finished
    run intact and no worker behind, and ``--resume`` redoes nothing finished.
    The result has the bytes of a sweep never interrupted.
    """
    sweep, environ = kill_env
    out = tmp_path / "sweep"
    process = subprocess.Popen(_sweep(sweep, out), env=environ, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    started = re.compile(r"points/base/seed-0: attempt 1 started on pid (\d+)")
    first = out / "points/base/seed-0"
    first_partial = publish.partial_path(first)
    _wait(lambda: started.search(_log(out)) and list(first_partial.glob("work/*.ckpt")), process,
          "the first checkpoint")  # fmt: skip
    pid = int(started.search(_log(out)).group(1))  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)

    partial = publish.partial_path(out / "points/base/seed-1")
    _wait(lambda: first.is_dir() and list(partial.glob("work/*.ckpt")), process,
          "the second run's first checkpoint")  # fmt: skip
    log = _log(out)
    assert f"attempt 1 failed (worker process {pid} ended during the run (exit code -9))" in log
    assert "points/base/seed-0: attempt 2 continuing from its checkpoint" in log
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    kept = (first / layout.MANIFEST).stat()
    manifest_mod.read_intact(first, action="check")
    time.sleep(0.5)  # an orphaned worker would write now: it must have ended with its driver
    checkpoints = {p: p.stat().st_mtime_ns for p in partial.glob("work/*.ckpt")}

    resumed = subprocess.run(_sweep(sweep, out, "--resume"), env=environ, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = (first / layout.MANIFEST).stat()
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    log = _log(out)
    assert "points/base/seed-0: complete already; kept" in log
    assert "points/base/seed-1: attempt 1 continuing from its checkpoint" in log
    assert checkpoints  # the interrupted run had one to continue from
    assert tree(out) == tree(uninterrupted)


def test_points_sweep_compares_points_and_reports_failures(
    quick_mnist: QuickMnist, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each run writes its report: without attributions and the test-set checks, which
    # are not what this test is about.
    settings = quick_settings(quick_mnist.root, "data.limit_train=120", "train.lr=0.0001",
                              "report.attributions=false")  # fmt: skip
    sweep = write_sweep(
        tmp_path / "points.toml", seeds=[0, 1], overrides=settings, run_reports="html",
        extra='[[points]]\nlabel = "a"\n"models.regularized.dropout" = 0.2\n'
        '[[points]]\nlabel = "b"\n"models.regularized.dropout" = 0.4\n'
        '[[points]]\nlabel = "broken"\n"data.root" = "/nonexistent-reportgen-data"\n',
    )  # fmt: skip
    out = tmp_path / "sweep"
    setup = functools.partial(accept_files, plain_specs(quick_mnist.specs))
    result = run_sweep(load_sweep(sweep), out, LocalExecutor(out.absolute(), workers=2,
                                                              setup=setup))  # fmt: skip
    assert sorted(result.failed) == ["points/broken/seed-0", "points/broken/seed-1"]
    assert all("data.root" in error for error in result.failed.values())
    assert len(result.succeeded) == 4
    log = (out / LOG_NAME).read_text()
    assert log.count("points/broken/seed-0: attempt 1 failed") == 1
    assert "points/broken/seed-0: failed after 2 attempts" in log
    assert (out / MARKER).exists() and not (out / layout.MANIFEST).exists()  # unfinished

    document = parse_sweep((out / "sweep.json").read_bytes())
    assert [r.status for r in document.runs] == ["ok"] * 4 + ["failed"] * 2
    between = [c for c in document.comparisons if c.scope == "points"]
    # The broken point has no run to compare.
    assert [(c.model, c.first, c.second) for c in between] == [
        ("baseline", "a", "b"), ("regularized", "a", "b")
    ]  # fmt: skip
    regularized = next(c for c in between if c.model == "regularized" and c.second == "b")
    accuracy = {
        (r.point, r.seed): r.models["regularized"].test_accuracy for r in document.runs if r.models
    }
    assert regularized.differences == [accuracy[("b", s)] - accuracy[("a", s)] for s in (0, 1)]
    baseline = next(c for c in between if c.model == "baseline")
    assert baseline.differences == [0.0, 0.0]  # the baseline does not depend on the dropout
    assert (out / "figures/effect_1.png").is_file()
    html = (out / "sweep.html").read_text()
    assert "2 of 6 runs failed" in html and "Point against point" in html
    # run_reports = "html": each run has its report, linked, and no PDF.
    assert 'href="points/b/seed-1/report.html"' in html
    assert (out / "points/b/seed-1/report.html").is_file()
    assert not (out / "points/b/seed-1/report.pdf").exists()
    # Two seeds: no claim about the seed-to-seed variation, either way.
    assert "no claim is made about the seed-to-seed variation" in html
    assert "larger than the seed-to-seed variation" not in html.replace(
        "<strong>larger than the seed-to-seed variation</strong>", ""
    )
    assert (out / "sweep.csv").read_text().count(",failed,") == 2

    # Running it again redoes only the failed runs, and the exit status says they failed.
    status = main(["--quiet", "sweep", str(sweep), "--out", str(out), "--no-pdf"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("reportgen: run failed: points/broken/seed-") == 2
    assert (out / LOG_NAME).read_text().count("complete already; kept") == 4


@pytest.mark.parametrize(
    ("given", "environ", "expected"),
    [(None, {}, "local"), (None, {"RAY_ADDRESS": "127.0.0.1:6379"}, "127.0.0.1:6379"),
     ("auto", {"RAY_ADDRESS": "127.0.0.1:6379"}, "auto")],
)  # fmt: skip
def test_ray_address_is_the_option_then_the_environment_then_a_local_instance(
    given: str | None, environ: dict[str, str], expected: str
) -> None:
    from reportgen.sweep.executors import ray_address

    assert ray_address(given, environ) == expected


def test_a_sweep_being_written_is_not_written_by_a_second_driver(
    sweep_file: Path, tmp_path: Path
) -> None:
    import fcntl

    from reportgen.core.errors import RunDirError

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / MARKER, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunDirError, match="another reportgen sweep is writing it"):
            run_sweep(load_sweep(sweep_file), out, make_executor=lambda: None)  # type: ignore[arg-type,return-value]
    assert sorted(os.listdir(out)) == [MARKER]


def test_progress_is_one_line_per_finished_run_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    from reportgen.cli.display import Display
    from reportgen.sweep.driver import SweepLog

    stream = io.StringIO()
    display = Display(quiet=False, verbose=False, stream=stream)
    log = SweepLog(Path(os.devnull), display.event)
    log.runs(3, 10, 1)
    assert stream.getvalue() == "sweep: runs 3/10 done, 1 failed\n"


# --------------------------------------------------------------------------- a Ray cluster


def sweep_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``reportgen sweep ARGS`` as a user does, in a process of its own."""
    command = [sys.executable, "-m", "reportgen", "--quiet", "sweep", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def without_ray_settings() -> dict[str, str]:
    """This environment without any Ray address or authentication setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH_", "RAY_ADDRESS"))}


@pytest.fixture(scope="module")
def folder_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds of one epoch on a tiny image folder, which Ray workers take as it is."""
    folder = tmp_path_factory.mktemp("raysweep")
    images = make_image_folder(folder / "images", per_class_train=16, per_class_test=6,
                               sizes=(16,))  # fmt: skip
    settings = {
        "data.dataset": "imagefolder", "data.path": str(images), "data.val_size": 8,
        "train.epochs": 1, "runtime.threads": 1, "report.pdf": False,
        "report.attributions": False, "run.date": "2024-05-06",
    }  # fmt: skip
    return write_sweep(folder / "tiny.toml", seeds=[0, 1], overrides=settings)


@pytest.mark.parametrize("existing", [False, True])
def test_an_unreachable_ray_address_is_one_line_and_leaves_nothing(
    folder_sweep: Path, tmp_path: Path, existing: bool
) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    if existing:  # a folder of the user's, empty: it stays exactly as it was
        out.mkdir()
    (port,) = free_ports(1)  # nothing listens on it
    env = {**without_ray_settings(), **LOOPBACK_ONLY, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    done = sweep_cli([str(folder_sweep), "--out", str(out), "--executor", "ray"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"reportgen: error: cannot reach the Ray cluster at 127.0.0.1:{port}: connection "
        "refused; is it running (ray start --head), and is the address right (--ray-address "
        "or RAY_ADDRESS)?\n"
    )
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == (["sweep"] if existing else [])
    if existing:
        assert list(out.iterdir()) == []


@pytest.fixture(scope="module")
def token_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head started as ``ray start --head`` starts one where a token file exists.

    Ray turns token authentication on by itself then (here from
    ``RAY_AUTH_TOKEN_PATH`` rather than ``~/.ray/auth_token``, to leave the
    user's home alone); yields its address and the environment holding the token.
    """
    pytest.importorskip("ray")
    token = tmp_path_factory.mktemp("token") / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**without_ray_settings(), **LOOPBACK_ONLY, "RAY_AUTH_TOKEN_PATH": str(token)}
    with ray_head(env) as address:
        yield address, env


def test_a_ray_cluster_that_wants_a_token_is_one_line_and_leaves_nothing(
    token_head: tuple[str, dict[str, str]], folder_sweep: Path, tmp_path: Path
) -> None:
    address, env = token_head
    out = tmp_path / "sweep"
    done = sweep_cli([str(folder_sweep), "--out", str(out), "--executor", "ray"],
                     {**env, "RAY_ADDRESS": address}, tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"reportgen: error: the Ray cluster at {address} requires token authentication: set "
        "RAY_AUTH_MODE=token, with the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
        "or ~/.ray/auth_token\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_sweep_runs_on_a_ray_cluster_through_ray_address(
    token_head: tuple[str, dict[str, str]], folder_sweep: Path, tmp_path: Path
) -> None:
    address, env = token_head
    out = tmp_path / "sweep"
    env = {**env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    done = sweep_cli([str(folder_sweep), "--out", str(out), "--executor", "ray"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == f"{out}\n"
    manifest = manifest_mod.read_intact(out, manifest_mod.SweepManifest, action="check")
    assert manifest.runs == ["points/base/seed-0", "points/base/seed-1"]
    assert publish.unlisted(out, manifest) == []
    assert (out / LOG_NAME).read_text().count("on a Ray task") == 2
