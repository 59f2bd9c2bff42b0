"""The progress display: rich bars on a terminal, one plain line per stage elsewhere."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from reportgen.core.events import Event

if TYPE_CHECKING:
    from rich.progress import TaskID


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

    def event(self, event: Event) -> None:
        """Show one pipeline event."""
        if self.quiet:
            return
        if self._progress is not None:
            self._rich(event)
        elif event.kind == "stage_done":
            self.info(f"{event.stage}: done in {event.seconds:.1f} s")
        elif event.kind == "epoch" and self.verbose:
            self.info(f"{event.model}: {event.message}")
        elif event.kind == "runs":
            self.info(f"sweep: {event.message}")
        elif event.kind == "info":
            self.info(event.message)

    def _rich(self, event: Event) -> None:
        assert self._progress is not None
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
            self._progress.update(self._tasks[key], completed=event.done)
        elif event.kind == "stage_done":
            self._progress.console.print(f"{event.stage}: done in {event.seconds:.1f} s")
        elif event.kind == "runs":
            failed = event.failed
            description = f"runs ({failed} failed)" if failed else "runs"
            if "runs" not in self._tasks:
                self._tasks["runs"] = self._progress.add_task(description, total=event.total)
            self._progress.update(self._tasks["runs"], completed=event.done,
                                  description=description)  # fmt: skip
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


def make_display(args: argparse.Namespace) -> Display:
    """Return the display the global options ask for."""
    return Display(quiet=args.quiet, verbose=args.verbose)
