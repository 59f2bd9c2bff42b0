"""Progress events and the run log: what a run reports while it works.

The pipeline never prints: it hands :class:`Event` objects to a
:data:`Progress` callable (the CLI's display, or :func:`silent`), and
:class:`RunLog` keeps them as the text of ``run.log``.  Nothing here imports
the libraries a run needs, so the CLI can show events without loading them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Something a progress display may show; the pipeline itself never prints."""

    kind: str  # "stage", "stage_done", "epoch", "step", "info", "runs" (a sweep's)
    stage: str = ""
    model: str = ""
    message: str = ""
    done: int = 0
    total: int = 0
    seconds: float = 0.0
    failed: int = 0  # "runs": how many of a sweep's runs failed


Progress = Callable[[Event], None]


def silent(event: Event) -> None:
    """Default progress sink: ignore every event."""


def info(stage: str, message: str) -> Event:
    """Return a line of information from ``stage`` for the display and the log."""
    return Event("info", stage=stage, message=message)


class RunLog:
    """Forwards events to a progress sink and keeps a plain-text log of them for ``run.log``."""

    def __init__(self, sink: Progress) -> None:
        self.sink = sink
        self.lines: list[str] = []

    def event(self, event: Event) -> None:
        self.sink(event)
        who = f"{event.model}: " if event.model else ""
        if event.kind == "stage":
            self.lines.append(f"[{event.stage}] started")
        elif event.kind == "stage_done":
            self.lines.append(f"[{event.stage}] done in {event.seconds:.2f} s")
        elif event.kind in ("epoch", "info"):
            self.lines.append(f"[{event.stage}] {who}{event.message}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
