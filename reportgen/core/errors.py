"""The one exception family reportgen raises for problems a user can fix.

`cli.main` turns each of these into a single line on stderr and the exit
status named here; anything else is a bug and keeps its traceback under
``--debug``.
"""

from __future__ import annotations


class ReportgenError(Exception):
    """Base class: a problem with a clear message and an exit status."""

    exit_status = 1


class ConfigError(ReportgenError):
    """The configuration or the command line is invalid."""

    exit_status = 2


class DataError(ReportgenError):
    """The data could not be obtained, read or verified (MNIST files, an image folder)."""

    exit_status = 1


class RunDirError(ReportgenError):
    """A run directory is missing, not a run, tampered with or unwritable."""

    exit_status = 2


class OutputError(ReportgenError):
    """An output could not be written (a full disk, a vanished directory)."""

    exit_status = 1


class RenderError(ReportgenError):
    """A report could not be rendered from a run's artifacts."""

    exit_status = 1


class TemplateError(RenderError):
    """A template cannot be rendered: syntax, an undefined name, an unsafe access, recursion."""

    exit_status = 2


def exit_call(error: SystemExit) -> str:
    """Return how user code ended the process, as a person would have written it."""
    return "sys.exit()" if error.code is None else f"sys.exit({error.code!r})"
