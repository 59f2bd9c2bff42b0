"""What a run depends on besides its config: versions, hardware, threads, project commit."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import __config__ as torch_config  # a public module: its parallel_info() is documented

DISTRIBUTION = "reportgen"


def requirements() -> list[str]:
    """Return the names of the packages reportgen requires (not its extras), as it declares them.

    Read from reportgen's own metadata, so the list in a manifest is the list
    in ``pyproject.toml``: a dependency added there is recorded without a
    second list to keep in step.
    """
    names = []
    for line in metadata.requires(DISTRIBUTION) or []:
        requirement, _, marker = line.partition(";")
        if "extra" in marker:
            continue
        name = re.split(r"[\s<>=!~\[(]", requirement.strip(), maxsplit=1)[0]
        names.append(name.lower())
    return sorted(set(names))


def package_versions() -> dict[str, str]:
    """Return the installed version of Python and of every package reportgen requires."""
    versions = {"python": platform.python_version()}
    for name in requirements():
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
    """Return the project's git commit (with ``-dirty`` for local changes), or None.

    git runs in the package's own directory, whatever the caller's: a run
    started elsewhere, or inside another repository, records reportgen's commit.
    """
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, fixed arguments
            cwd=here, capture_output=True, text=True, timeout=10,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _c_library(name: str) -> ctypes.CDLL | None:
    found = ctypes.util.find_library(name)
    if found is None:
        return None
    try:
        return ctypes.CDLL(found)
    except OSError:
        return None


def _version_string(library: str, function: str) -> str | None:
    lib = _c_library(library)
    if lib is None:
        return None
    call = getattr(lib, function, None)
    if call is None:
        return None
    call.restype = ctypes.c_char_p
    value = call()
    return value.decode("ascii", "replace") if value else None


def _fontconfig_version() -> str | None:
    lib = _c_library("fontconfig")
    if lib is None or not hasattr(lib, "FcGetVersion"):
        return None
    number = int(lib.FcGetVersion())  # e.g. 21401 for 2.14.1
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def _freetype_version() -> str | None:
    lib = _c_library("freetype")
    if lib is None or not hasattr(lib, "FT_Init_FreeType"):
        return None
    handle = ctypes.c_void_p()
    if lib.FT_Init_FreeType(ctypes.byref(handle)) != 0:
        return None
    major, minor, patch = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    lib.FT_Library_Version(handle, ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
    lib.FT_Done_FreeType(handle)
    return f"{major.value}.{minor.value}.{patch.value}"


def text_libraries() -> dict[str, str]:
    """Return the versions of the native libraries that lay out and shape the PDF's text.

    Pango and HarfBuzz place every glyph, FreeType reads the fonts and
    fontconfig finds them: a different version can move text, and so change
    ``report.pdf``'s bytes.  ``verify`` names them when the PDF differs.
    """
    found = {
        "pango": _version_string("pango-1.0", "pango_version_string"),
        "harfbuzz": _version_string("harfbuzz", "hb_version_string"),
        "freetype": _freetype_version(),
        "fontconfig": _fontconfig_version(),
    }
    return {name: version or "not found" for name, version in found.items()}


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
        "versions": {**package_versions(), **text_libraries()},
        "hardware": hardware,
        "threads": threads,
        "parallel_info": torch_config.parallel_info(),
        "git_commit": git_commit(),
    }
