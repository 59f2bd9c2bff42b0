"""Argument parsing, progress display and exit codes — the only module that prints.

Exit statuses: 0 success; 1 failure (data, rendering, I/O); 2 usage or
configuration error; 3 a ``--fail-under`` threshold was missed; 4 a model's
training diverged; 130 interrupted (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from reportgen import __version__
from reportgen.config import Config, load_config, to_toml
from reportgen.errors import ReportgenError

if TYPE_CHECKING:
    from rich.progress import TaskID

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_THRESHOLD, EXIT_DIVERGED, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    130,
)
DEFAULT_CONFIG = Path("config.toml")


class _Interrupted(Exception):
    """SIGTERM arrived: unwind like Ctrl-C so nothing half-written is published."""


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", type=Path, default=None,
        help="run configuration (TOML); default: ./config.toml if present, else built-in defaults",
    )  # fmt: skip
    parser.add_argument(
        "--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key, value parsed as TOML (repeatable), e.g. train.epochs=2",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="reportgen",
        description="Train, evaluate and report on MNIST classifiers, reproducibly.",
    )
    parser.add_argument("--version", action="version", version=f"reportgen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    verbosity.add_argument("--verbose", "-v", action="store_true", help="print every epoch")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="train both models and write a complete run directory")
    _add_config_options(run)
    run.add_argument("--out", "-o", type=Path, help="run directory (default: reports/<run.name>)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    run.add_argument(
        "--templates", type=Path, help="directory of templates overriding the packaged ones"
    )

    data = commands.add_parser("data", help="obtain and verify the MNIST files")
    _add_config_options(data)

    show = commands.add_parser("config", help="validate a configuration and print it resolved")
    _add_config_options(show)
    return parser


def _config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _load(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args.config), args.overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:  # argparse has printed its message
        return EXIT_USAGE if e.code else EXIT_OK
    display = _make_display(args)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return _dispatch(args, args_list, display)
    except ReportgenError as e:
        _error(str(e), args.debug)
        return e.exit_status
    except (KeyboardInterrupt, _Interrupted):
        display.close()
        print("reportgen: interrupted; the previous run (if any) is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        _error(f"internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
               args.debug)  # fmt: skip
        return EXIT_FAILURE
    finally:
        display.close()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


def _error(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(f"reportgen: error: {message}", file=sys.stderr)


def _dispatch(args: argparse.Namespace, argv: list[str], display: Display) -> int:
    from reportgen import pipeline
    from reportgen.data import ensure_mnist

    if args.command == "data":
        config = _load(args)
        files = ensure_mnist(config.data.root, download=config.data.download,
                             progress=lambda m: display.info(m))  # fmt: skip
        for name, digest in files.sha256.items():
            display.out(f"{digest}  {files.directory / name}")
        display.out(f"MNIST verified in {files.directory} (source: {files.source})")
        return EXIT_OK
    if args.command == "config":
        display.out(to_toml(_load(args)).rstrip("\n"))
        return EXIT_OK
    if args.command == "run":
        config = _load(args)
        result = pipeline.run(config, out=args.out, resume=args.resume, argv=["reportgen", *argv],
                              templates=args.templates, progress=display.event)  # fmt: skip
        display.close()
        status = EXIT_OK
        for name in result.diverged:
            display.err(f"reportgen: model {name!r} diverged (see the report); lower train.lr")
            status = EXIT_DIVERGED
        display.out(str(result.path))
        return status
    raise AssertionError(f"unhandled command {args.command}")


# --------------------------------------------------------------------------- display


class Display:
    """Shows pipeline events: rich progress bars on a terminal, one line per stage otherwise."""

    def __init__(self, *, quiet: bool, verbose: bool, stream: TextIO = sys.stderr) -> None:
        self.quiet, self.verbose, self.stream = quiet, verbose, stream
        self._progress = None
        self._tasks: dict[str, TaskID] = {}
        if not quiet and stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(file=stream), transient=False,
            )  # fmt: skip
            self._progress.start()

    def event(self, event: object) -> None:
        """Show one pipeline event."""
        from reportgen.pipeline import Event

        assert isinstance(event, Event)
        if self.quiet:
            return
        if self._progress is not None:
            self._rich(event)
        elif event.kind == "stage_done":
            self.info(f"{event.stage}: done in {event.seconds:.1f} s")
        elif event.kind == "epoch" and self.verbose:
            self.info(f"{event.model}: {event.message}")
        elif event.kind == "info":
            self.info(event.message)

    def _rich(self, event: object) -> None:
        from reportgen.pipeline import Event

        assert isinstance(event, Event) and self._progress is not None
        if event.kind == "epoch":
            key = f"epochs:{event.model}"
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(
                    f"{event.model} epochs", total=event.total
                )
            self._progress.update(self._tasks[key], completed=event.done)
            if self.verbose:
                self._progress.console.print(f"{event.model}: {event.message}")
        elif event.kind == "step":
            key = f"steps:{event.model}"
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(
                    f"{event.model} batches", total=event.total
                )
            if event.done % 25 == 0 or event.done == event.total:
                self._progress.update(self._tasks[key], completed=event.done)
        elif event.kind == "stage_done":
            self._progress.console.print(f"{event.stage}: done in {event.seconds:.1f} s")
        elif event.kind == "info":
            self._progress.console.print(event.message)

    def info(self, message: str) -> None:
        if not self.quiet:
            if self._progress is not None:
                self._progress.console.print(message)
            else:
                print(message, file=self.stream, flush=True)

    def out(self, message: str) -> None:
        print(message, flush=True)

    def err(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _make_display(args: argparse.Namespace) -> Display:
    return Display(quiet=args.quiet, verbose=args.verbose)
