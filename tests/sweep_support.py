"""Helpers for the sweep tests: workers that accept the generated MNIST files, sweep files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from reportgen.data import idx
from reportgen.data.idx import FileSpec

from .conftest import quick_overrides


def accept_files(specs: Mapping[str, tuple[int, str]]) -> None:
    """Worker setup: accept the generated MNIST files (``name -> (size, sha256)``)."""
    idx.MNIST_FILES = {name: FileSpec(size, sha) for name, (size, sha) in specs.items()}


def plain_specs(specs: Mapping[str, FileSpec]) -> dict[str, tuple[int, str]]:
    return {name: (spec.size, spec.sha256) for name, spec in specs.items()}


def quick_settings(root: Path, *extra: str) -> dict[str, object]:
    """Return ``[overrides]`` for fast runs on the generated data at ``root``."""
    items = [*quick_overrides(root), "train.epochs=1", "runtime.threads=1", "report.pdf=false",
             *extra]  # fmt: skip
    settings: dict[str, object] = {}
    for item in items:
        key, _, raw = item.partition("=")
        settings[key] = json.loads(raw) if raw[:1] in '"[' or raw[:1].isdigit() else raw
        if raw in ("true", "false"):
            settings[key] = raw == "true"
    return settings


def write_sweep(
    path: Path,
    *,
    seeds: Sequence[int],
    overrides: Mapping[str, object],
    grid: Mapping[str, Sequence[object]] | None = None,
    extra: str = "",
    run_reports: str | None = None,
) -> Path:
    """Write a sweep file; values are written as JSON, which TOML reads the same."""
    lines = [f"seeds = {json.dumps(list(seeds))}"]
    if run_reports is not None:
        lines.append(f"run_reports = {json.dumps(run_reports)}")
    lines += [extra, "[overrides]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in overrides.items()]
    if grid:
        lines.append("[grid]")
        lines += [f"{json.dumps(k)} = {json.dumps(list(v))}" for k, v in grid.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Ray replaces a loopback address by this machine's network address unless
# this is off; with it off, the head and the drivers use 127.0.0.1 only.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports of 127.0.0.1 that nothing listens on now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@contextlib.contextmanager
def ray_head(env: Mapping[str, str], *, timeout: float = 120) -> Iterator[str]:
    """Start a Ray head with ``ray start --head`` on 127.0.0.1 only; yield its address.

    Every port is chosen free on loopback, without the dashboard, with 2 CPUs.
    The head runs in a process group of its own, which is ended afterwards by
    its id (``ray stop`` would stop every Ray instance of the machine).
    """
    gcs, node_manager, object_manager, agent, agent_grpc, runtime_env, metrics, *workers = (
        free_ports(11)
    )
    # Ray's sockets live in its temp dir, whose path must stay short (sun_path).
    folder = tempfile.mkdtemp(prefix="rg-ray-")
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}", f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}", f"--worker-port-list={','.join(map(str, workers))}",
        "--include-dashboard=false", "--num-cpus=2", "--disable-usage-stats",
        f"--temp-dir={folder}",
    ]  # fmt: skip
    log = Path(folder) / "start.log"
    with open(log, "wb") as output:
        head = subprocess.Popen(command, env={**env, **LOOPBACK_ONLY}, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start --head failed:\n{log.read_text(errors='replace')}")
            time.sleep(0.5)
        yield f"127.0.0.1:{gcs}"
    finally:
        _end_group(head)
        shutil.rmtree(folder, ignore_errors=True)


def _end_group(head: subprocess.Popen[bytes]) -> None:
    """End every process of the head's process group: politely, then for good."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)  # what SIGTERM left (Ray's own daemons)
    head.wait()
