"""Where a sweep's runs execute: a pool of local worker processes, or Ray tasks.

Both take :class:`RunTask` objects and hand back one :class:`Outcome` per
attempt; retrying, skipping and publishing are the sweep's business
(:mod:`reportgen.sweep.driver`).  Each run is an ordinary :func:`reportgen.run.pipeline.run`.

``local``
    ``workers`` spawned processes, each running one run at a time straight
    into the sweep directory (so an interrupted run keeps its checkpoints).
    A worker that dies — killed by its pid, out of memory — costs only the
    attempt it was running: the pool notices its exit, reports that attempt
    as failed and starts a new worker.  A worker whose driver has died ends
    itself at once, so nothing writes into a sweep that nobody drives.
``ray``
    One Ray task per run, asking for ``runtime.threads`` CPUs (and a GPU when
    the run's device is ``cuda``).  The task builds the run in a temporary
    folder of its node and returns it as an archive
    (:mod:`reportgen.runarchive`); no shared file system is assumed.
    ``ray.init`` connects to ``--ray-address`` or ``RAY_ADDRESS`` and else
    starts a local Ray instance.  Ray is optional: ``pip install 'reportgen[ray]'``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reportgen.core.errors import ConfigError
from reportgen.core.processes import exit_with_parent
from reportgen.core.text import one_line

WorkerSetup = Callable[[], None]


@dataclass(frozen=True)
class RunTask:
    """One attempt at one run of a sweep: everything a worker needs, as plain data."""

    key: str  # the run's folder relative to the sweep, e.g. "points/dropout=0.3/seed-0"
    config_toml: str  # the run's resolved configuration, exactly as its config.toml
    threads: int  # runtime.threads: CPUs the run uses
    gpu: bool  # the run asks for a CUDA device
    resume: bool = False  # continue the run's partial directory (local executor only)
    attempt: int = 1
    argv: tuple[str, ...] = ()
    code_dir: str | None = None  # where a python model's factory module may be imported from


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended."""

    task: RunTask
    ok: bool
    error: str = ""  # one line when not ok
    worker: str = ""  # where it ran, for the log: "pid 1234"
    archive: bytes | None = None  # the finished run, when it was built elsewhere


class Executor(Protocol):
    """Runs tasks somewhere; at most ``slots`` at once."""

    name: str
    slots: int

    def submit(self, task: RunTask) -> str:
        """Start ``task``; return where it runs (for the log)."""
        ...

    def wait(self) -> Outcome:
        """Return the outcome of the next attempt to end."""
        ...

    def close(self) -> None:
        """Stop every worker; an attempt still running is abandoned."""
        ...


def run_task(task: RunTask, out: Path) -> None:
    """Run ``task`` as ``reportgen run`` would, publishing it at ``out``."""
    from reportgen.config.loading import parse_toml, validate
    from reportgen.run import pipeline

    config = validate(parse_toml(task.config_toml, source=f"{task.key}/config.toml"))
    code_dir = Path(task.code_dir) if task.code_dir is not None else None
    pipeline.run(config, out=out, resume=task.resume, argv=list(task.argv), fill_date=False,
                 code_dir=code_dir)  # fmt: skip


def available_cores() -> int:
    """Return the CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def local_workers(requested: int | None, threads: int, cores: int) -> int:
    """Return how many local workers to start so that ``workers × threads ≤ cores``.

    The default is ``max(1, cores // threads)``; a request for more is refused.
    """
    fit = max(1, cores // threads)
    if requested is None:
        return fit
    if requested < 1:
        raise ConfigError(f"--workers: must be at least 1 (got {requested})")
    if requested * threads > cores and requested > 1:
        raise ConfigError(
            f"--workers {requested} with runtime.threads = {threads} needs "
            f"{requested * threads} cores; this machine has {cores} "
            f"(workers × runtime.threads ≤ cores: at most --workers {fit})"
        )
    return requested


def _worker_main(
    connection: multiprocessing.connection.Connection, root: str, setup: WorkerSetup | None
) -> None:
    """A local worker: run tasks from the driver until told to stop, or until the driver dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    exit_with_parent()  # the driver is gone: write nothing more into its sweep
    if setup is not None:
        setup()
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            run_task(task, Path(root) / task.key)
        except Exception as e:
            connection.send((False, one_line(e, typed=True)))
        else:
            connection.send((True, ""))


class LocalExecutor:
    """A pool of spawned worker processes on this machine, one run at a time each."""

    name = "local"

    def __init__(self, root: Path, *, workers: int, setup: WorkerSetup | None = None) -> None:
        self.root, self.slots, self.setup = root, workers, setup
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[tuple[Any, multiprocessing.connection.Connection]] = []
        self._busy: dict[int, tuple[Any, multiprocessing.connection.Connection, RunTask]] = {}

    def _start_worker(self) -> tuple[Any, multiprocessing.connection.Connection]:
        here, there = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(there, str(self.root), self.setup), name="sweep-worker"
        )
        process.start()
        there.close()
        return process, here

    def submit(self, task: RunTask) -> str:
        for process, connection in [w for w in self._idle if not w[0].is_alive()]:
            # It sent its result, then died (killed between two runs): replace it.
            self._idle.remove((process, connection))
            process.join()
            connection.close()
        if not self._idle:
            if len(self._busy) >= self.slots:
                raise RuntimeError("no free worker: wait() for one first")
            self._idle.append(self._start_worker())
        process, connection = self._idle.pop()
        connection.send(task)
        self._busy[process.pid] = (process, connection, task)
        return f"pid {process.pid}"

    def wait(self) -> Outcome:
        if not self._busy:
            raise RuntimeError("nothing is running")
        while True:
            waitables: dict[Any, int] = {}
            for pid, (process, connection, _task) in self._busy.items():
                waitables[connection] = pid
                waitables[process.sentinel] = pid
            ready = multiprocessing.connection.wait(list(waitables))
            for item in ready:
                pid = waitables[item]
                process, connection, task = self._busy[pid]
                try:
                    ok, error = connection.recv() if connection.poll() else (None, "")
                except (EOFError, OSError):
                    ok = None
                if ok is None:  # the worker died in the middle of the run
                    process.join()
                    connection.close()
                    del self._busy[pid]
                    return Outcome(
                        task, False,
                        f"worker process {pid} ended during the run (exit code {process.exitcode})",
                        f"pid {pid}",
                    )  # fmt: skip
                del self._busy[pid]
                self._idle.append((process, connection))
                return Outcome(task, bool(ok), error, f"pid {pid}")

    def close(self) -> None:
        for _process, connection in self._idle:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process, _connection, _task in self._busy.values():
            process.terminate()
        for process, connection in [*self._idle, *((p, c) for p, c, _ in self._busy.values())]:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
            connection.close()
        self._idle, self._busy = [], {}


# --------------------------------------------------------------------------- Ray


# Ray sets OMP_NUM_THREADS in its workers; a run records these variables (in
# torch's parallel_info, shown by its report), so a task takes the driver's values.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def remote_run(
    task: RunTask, setup: WorkerSetup | None, thread_variables: dict[str, str | None]
) -> bytes:
    """The Ray task: build the run in a temporary folder and return it as an archive."""
    from reportgen.artifacts.archive import pack_run

    for name, value in thread_variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if setup is not None:
        setup()
    with tempfile.TemporaryDirectory(prefix="reportgen-run-") as folder:
        out = Path(folder) / "run"
        run_task(task, out)
        return pack_run(out)


def ray_address(given: str | None, environ: dict[str, str] | os._Environ[str]) -> str:
    """Return where to find Ray: ``--ray-address``, else ``RAY_ADDRESS``, else ``"local"``.

    ``"local"`` starts a Ray instance of this process's own rather than
    joining whichever cluster was started last on this machine.
    """
    return given or environ.get("RAY_ADDRESS") or "local"


# Ray's core logs every failed attempt to reach a cluster to file descriptor 2,
# from C++ (about twenty lines of gcs_client.cc warnings), whatever Python's
# logging says; the attempt's output is kept aside and read only to explain a failure.
AUTH_REFUSED = ("InvalidAuthToken", "Authentication token is missing or incorrect")
AUTH_SOURCES = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
REACH_TIMEOUT_S = 5.0
REFUSED = (ConnectionError, ValueError, RuntimeError)  # what ray.init raises for a bad address


@contextlib.contextmanager
def captured_stderr() -> Iterator[Callable[[], str]]:
    """Send what this process writes to file descriptor 2 into a temporary file meanwhile.

    Yields a function that returns what was written so far.
    """
    sys.stderr.flush()
    with tempfile.TemporaryFile() as file:

        def written() -> str:
            sys.stderr.flush()
            file.seek(0)
            return file.read().decode("utf-8", "replace")

        saved = os.dup(2)
        try:
            os.dup2(file.fileno(), 2)
            yield written
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def ray_host_port(address: str) -> tuple[str, int] | None:
    """Return the host and port Ray connects to for ``address``; None where Ray finds it itself.

    Ray replaces a loopback host with this machine's address (unless
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); its own resolution is used where it
    is available, so that the check below knocks where ``ray.init`` will.
    """
    if address in ("auto", "local") or "://" in address:
        return None
    with contextlib.suppress(Exception):  # a private helper of Ray's: else the address as given
        from ray._private.services import canonicalize_bootstrap_address

        address = canonicalize_bootstrap_address(address) or address
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None  # ray.init says what is wrong with it
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Refuse, in one line and within seconds, a Ray address nothing answers on.

    ``ray.init`` would retry an unreachable address for many minutes, printing
    a warning every few seconds.
    """
    target = ray_host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=REACH_TIMEOUT_S):
            pass
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        if isinstance(e, TimeoutError):
            reason = f"no answer within {REACH_TIMEOUT_S:.0f} s"
        where = f"{target[0]}:{target[1]}"
        shown = address if where == address else f"{address} ({where})"
        raise ConfigError(
            f"cannot reach the Ray cluster at {shown}: {reason.lower()}; is it running "
            "(ray start --head), and is the address right (--ray-address or RAY_ADDRESS)?"
        ) from e


def connection_error(address: str, error: BaseException, output: str) -> str:
    """Return the one line that says why ``ray.init`` could not join the cluster at ``address``."""
    if any(sign in output or sign in str(error) for sign in AUTH_REFUSED):
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            return (
                f"the Ray cluster at {address} refused this machine's authentication token: "
                f"give it the cluster's token ({AUTH_SOURCES})"
            )
        return (
            f"the Ray cluster at {address} requires token authentication: set "
            f"RAY_AUTH_MODE=token, with the cluster's token in {AUTH_SOURCES}"
        )
    return f"cannot reach the Ray cluster at {address}: {one_line(error)}"


class RayExecutor:
    """One Ray task per run; the driver gets each finished run back as an archive."""

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        slots: int | None = None,
        setup: WorkerSetup | None = None,
        num_cpus: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as e:
            raise ConfigError(
                "--executor ray needs Ray, which is not installed: pip install 'reportgen[ray]'"
            ) from e
        import logging

        self._ray = ray
        self.setup = setup
        self.address = ray_address(address, os.environ)
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if self.address == "local":
                options.update(include_dashboard=False, num_cpus=num_cpus)
            else:
                check_reachable(self.address)
            previous = signal.getsignal(signal.SIGTERM)
            try:
                with captured_stderr() as written:
                    try:
                        ray.init(address=self.address, **options)
                    except (
                        ConnectionError,
                        ValueError,
                        RuntimeError,
                        ray.exceptions.RayError,
                    ) as e:
                        raise ConfigError(connection_error(self.address, e, written())) from e
            finally:
                signal.signal(signal.SIGTERM, previous)  # ray.init replaces the CLI's handler
            self._started = True
        self.slots = slots or 1_000_000  # Ray schedules by resources; None: submit everything
        self._running: dict[Any, RunTask] = {}
        self._function = ray.remote(remote_run)

    def submit(self, task: RunTask) -> str:
        options = {"num_cpus": task.threads, "num_gpus": 1 if task.gpu else 0, "max_retries": 0}
        variables = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        ref = self._function.options(**options).remote(task, self.setup, variables)
        self._running[ref] = task
        return "a Ray task"

    def wait(self) -> Outcome:
        ray = self._ray
        if not self._running:
            raise RuntimeError("nothing is running")
        ready, _ = ray.wait(list(self._running), num_returns=1)
        ref = ready[0]
        task = self._running.pop(ref)
        try:
            archive = ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            return Outcome(task, False, one_line(cause, typed=True), "Ray")
        except ray.exceptions.RayError as e:
            return Outcome(task, False, f"Ray: {one_line(e, typed=True)[:300]}", "Ray")
        return Outcome(task, True, "", "Ray", archive=archive)

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running = {}
        if self._started:
            self._ray.shutdown()
            self._started = False
