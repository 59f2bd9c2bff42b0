"""The progress display: rich bars on a terminal, plain lines elsewhere.

Off a terminal (a CI log, a pipe) it prints one line per stage and one per
epoch of each model, with the time that model's training has taken and an
estimate of what is left; ``--quiet`` prints none of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from reportgen.core.events import Event

if TYPE_CHECKING:
    from rich.progress import TaskID


def duration(seconds: float) -> str:
    """Return ``seconds`` as a display shows it: ``8.4 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = round(seconds) // 60
    if minutes < 60:
        return f"{minutes} min {round(seconds) % 60:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Display:
    """Shows pipeline events: rich progress bars on a terminal, plain lines otherwise."""

    def __init__(
        self,
        *,
        quiet: bool,
        verbose: bool,
        stream: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet, self.verbose, self.stream, self.clock = quiet, verbose, stream, clock
        self._progress = None
        self._tasks: dict[str, TaskID] = {}
        # Per model: when its first progress arrived, and the epochs it has finished since.
        self._started: dict[str, float] = {}
        self._epochs: dict[str, int] = {}
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
        if event.kind in ("step", "epoch") and event.model not in self._started:
            self._started[event.model] = self.clock()
        if self._progress is not None:
            self._rich(event)
        elif event.kind == "stage_done":
            self.info(f"{event.stage}: done in {event.seconds:.1f} s")
        elif event.kind == "epoch":
            self.info(self._epoch_line(event))
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
            line = self._epoch_line(event)
            if self.verbose:
                self._progress.console.print(line)
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

    def _epoch_line(self, event: Event) -> str:
        """Return ``model: epoch …: losses and accuracies · elapsed, ETA`` for an epoch event.

        The estimate assumes the remaining epochs take as long as those finished
        since this display first heard of the model (a resumed run's earlier
        epochs are not counted).
        """
        self._epochs[event.model] = self._epochs.get(event.model, 0) + 1
        elapsed = self.clock() - self._started[event.model]
        left = max(event.total - event.done, 0)
        eta = elapsed / self._epochs[event.model] * left
        timing = f"{duration(elapsed)} elapsed, " + (f"ETA {duration(eta)}" if left else "done")
        return f"{event.model}: {event.message} · {timing}"

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
