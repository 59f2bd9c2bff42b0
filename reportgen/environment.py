"""What a run depends on besides its config: versions, hardware, threads, project commit."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import __config__ as torch_config  # a public module: its parallel_info() is documented

PACKAGES = (
    "torch", "torchvision", "numpy", "scikit-learn", "scipy", "matplotlib", "seaborn",
    "pandas", "jinja2", "weasyprint", "pydantic",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Return the installed version of Python and of every package the results depend on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    """Return the CPU model name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """Return the project's git commit (with ``-dirty`` for local changes), or None."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, fixed arguments
            cwd=here, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607 cwd=here,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def describe(device: str, threads: int) -> dict[str, Any]:
    """Return the environment facts a reader needs to reproduce a run bit for bit."""
    hardware: dict[str, Any] = {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        hardware["gpu"] = torch.cuda.get_device_name(torch.device(device))
        hardware["cuda"] = torch.version.cuda
    return {
        "versions": package_versions(),
        "hardware": hardware,
        "threads": threads,
        "parallel_info": torch_config.parallel_info(),
        "git_commit": git_commit(),
    }
