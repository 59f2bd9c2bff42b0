"""Drawing many figures at once: jobs on plain data, drawn in forked worker processes."""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from reportgen.figures.builders import draw
from reportgen.figures.style import render_png


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: builder ``builder`` on plain data (NumPy, pandas, numbers)."""

    name: str  # the figure's name in the run: figures/<name>.png
    builder: str  # a key of reportgen.figures.builders.BUILDERS
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def draw_png(job: FigureJob) -> bytes:
    """Return ``job``'s figure as PNG bytes (see :func:`render_png`)."""
    # The figure is dropped, not cleared: Figure.clear() resets every Axes
    # (new ticks, spines, text), which cost a fifth of drawing a grid of images.
    return render_png(draw(job.builder, *job.args, **job.kwargs))


def draw_all(jobs: Sequence[FigureJob], *, workers: int) -> list[bytes]:
    """Return every job's PNG bytes, in order, drawn by up to ``workers`` forked processes.

    Drawing is CPU-bound Python (text layout, Agg rasterising), so a second
    core nearly halves it.  Forked workers inherit the loaded fonts and
    matplotlib state, so their bytes equal an in-process draw; jobs hold
    plain data only, so a worker never runs torch (whose thread pool does not
    survive a fork).  Without ``fork`` (or with one worker) jobs draw here.
    """
    workers = min(workers, len(jobs))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [draw_png(job) for job in jobs]
    with warnings.catch_warnings():
        # Python >= 3.12 warns on any fork of a threaded process; the workers
        # only draw figures, which needs none of the parent's threads.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(draw_png, jobs))
