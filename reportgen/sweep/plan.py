"""A sweep's plan: every point × seed as one run, its place in the sweep directory, its config.

The sweep directory::

    OUT/
      points/<label>/config.toml     the point's resolved config (seed: the first seed)
      points/<label>/seed-<n>/       a complete run, published atomically when it ends
      sweep.html, sweep.pdf          the report over every run
      sweep.csv, sweep.json          one row per run; every number the report shows
      figures/*.png                  the report's figures
      timings.json, sweep.log        wall times and the log (they differ between executions)
      manifest.json                  written last, once every run has succeeded
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.artifacts import layout
from reportgen.config.dates import with_date
from reportgen.config.schema import Config
from reportgen.config.sweepspec import SweepSpec
from reportgen.config.toml import to_toml

MARKER = ".reportgen-sweep"
POINTS = "points"


POINT_CONFIG = "config.toml"
FIGURES = "figures"


LOG_NAME = "sweep.log"
TIMINGS = "timings.json"


REPORT_FILES = ("sweep.html", "sweep.pdf", "sweep.csv", "sweep.json")


# Files that record this execution (wall times, the log, hashes of the runs'
# manifests, which hold their wall times): the only ones that differ between
# two executions of the same sweep.
TIMING_FILES = (TIMINGS, LOG_NAME, layout.MANIFEST)


@dataclass(frozen=True)
class PlannedRun:
    """One point × seed: where its run goes and the exact config it runs with."""

    point: str  # the point's label
    seed: int
    key: str  # points/<label>/seed-<n>
    config: Config

    @property
    def toml(self) -> str:
        return to_toml(self.config)


def run_key(label: str, seed: int) -> str:
    """Return a run's folder in the sweep: ``points/<label>/seed-<n>``."""
    return f"{POINTS}/{label}/seed-{seed}"


def plan_runs(spec: SweepSpec, day: str) -> list[PlannedRun]:
    """Return every point × seed, points first, each config dated ``day`` (unless it has a date)."""
    runs = []
    for point in spec.points:
        dated = with_date(point.config, day)
        for seed in spec.seeds:
            config = dated.model_copy(update={"seed": seed})
            runs.append(PlannedRun(point.label, seed, run_key(point.label, seed), config))
    return runs


def point_config(spec: SweepSpec, label: str, day: str) -> str:
    """Return the text of ``points/<label>/config.toml``: the point's config, dated."""
    point = next(p for p in spec.points if p.label == label)
    return to_toml(with_date(point.config, day))
