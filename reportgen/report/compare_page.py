"""Several runs side by side -> the typed context of the comparison page.

The settings that differ between the runs (all settings below them), every
run's metrics in one table, and the validation curves of every run and model
overlaid.  Runs are labelled by their directory names (with parent
directories added where two names clash).  Nothing here reads the clock: the
date shown is the latest of the runs' report dates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from reportgen.artifacts import catalogue
from reportgen.artifacts.layout import ComparePaths
from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.significance import (
    Significance,
)
from reportgen.config.schema import Config
from reportgen.config.toml import flatten, setting_text
from reportgen.core import text
from reportgen.report.page import Figure, Page, embed_png, report_date

NBSP = "\u00a0"


@dataclass(frozen=True)
class RunInput:
    """What the comparison needs from one run directory."""

    label: str
    config: Config
    metrics: Metrics
    history: pd.DataFrame  # history.csv as written: one row per model and epoch
    manifest_sha256: str = ""  # of the run's manifest.json: which run exactly was compared


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Return a label per run: its directory name, or the fewest trailing parts that are unique.

    ``a/x``, ``b/y`` give ``x``, ``y``; ``a/x``, ``b/x``, ``c/y`` give ``a/x``, ``b/x``, ``c/y``.
    """
    parts = [Path(os.path.abspath(path)).parts[1:] for path in run_dirs]
    deepest = max((len(p) for p in parts), default=1)
    for depth in range(1, deepest + 1):
        labels = ["/".join(p[-depth:]) or "/" for p in parts]
        if len(set(labels)) == len(labels):
            break
    return labels


@dataclass(frozen=True)
class SettingRow:
    """One configuration key across the runs."""

    key: str
    values: tuple[str, ...]  # per run, as TOML writes it
    changed: tuple[bool, ...]  # per run: differs from the first run
    differs: bool  # not the same in every run


def setting_rows(configs: Sequence[Mapping[str, Any]]) -> list[SettingRow]:
    """Return a row per key of any of the flattened ``configs``, in the order they first appear."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    rows = []
    for key in keys:
        values = tuple(setting_text(c[key]) if key in c else text.MISSING for c in configs)
        changed = tuple(value != values[0] for value in values)
        rows.append(SettingRow(key, values, changed, any(changed)))
    return rows


def _paired_text(significance: Significance | None) -> str:
    """Return the McNemar result in a few words: ``"regularized better, p < 0.001"``."""
    if significance is None:
        return text.MISSING
    first, second = significance.models
    # No-break spaces keep "p < 0.001" on one line in a narrow table cell.
    p_text = text.p_equals(significance.mcnemar.p_value).replace(" ", NBSP)
    if not significance.significant:
        return f"no significant difference, {p_text}"
    better = second if significance.difference.estimate > 0 else first
    return f"{better} better, {p_text}"


def metric_rows(runs: Sequence[RunInput]) -> list[dict[str, Any]]:
    """Return one flat row per run and model: accuracies, CI, gap and the run's paired test."""
    rows = []
    for run in runs:
        significance = run.metrics.significance
        mcnemar = significance.mcnemar if significance is not None else None
        for name, model in run.metrics.models.items():
            ci = model.accuracy_ci
            rows.append(
                {
                    "run": run.label,
                    "model": name,
                    "test_accuracy": model.test_accuracy,
                    "ci_level": ci.level,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "train_accuracy": model.train_accuracy,
                    "val_accuracy": model.val_accuracy,
                    "train_test_gap": model.train_test_gap,
                    "epochs": model.epochs,
                    "diverged": model.divergence is not None,
                    "mcnemar_b": mcnemar.b if mcnemar else None,
                    "mcnemar_c": mcnemar.c if mcnemar else None,
                    "mcnemar_p_value": mcnemar.p_value if mcnemar else None,
                    "significant": significance.significant if significance else None,
                    "verdict": significance.verdict if significance else None,
                }
            )
    return rows


def _best_flags(rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Return, per row, whether it has the highest test accuracy of its model across runs."""
    best: dict[str, float] = {}
    for row in rows:
        if not row["diverged"]:
            best[row["model"]] = max(best.get(row["model"], -1.0), row["test_accuracy"])
    return [not row["diverged"] and row["test_accuracy"] == best[row["model"]] for row in rows]


@dataclass(frozen=True, kw_only=True)
class ComparePage(Page):
    """Everything the comparison page displays."""

    TEMPLATE: ClassVar[str] = "pages/compare.html.j2"
    labels: list[str]
    differences: list[SettingRow]  # the settings that differ between the runs
    settings: list[SettingRow]  # every setting
    metric_groups: list[dict[str, Any]]  # per run: its models' rows and its paired test
    ci_level: float
    history_figure: Figure
    paired: bool  # whether any run has two models and so a paired test
    matching_note: str  # which models not every run has ("" when all runs have the same)


def build_context(
    runs: Sequence[RunInput], figure_png: bytes, *, environ: Mapping[str, str] | None = None
) -> ComparePage:
    """Return everything the comparison templates display."""
    environ = os.environ if environ is None else environ
    date = max((report_date(run.config, environ) for run in runs), key=lambda d: d.epoch)
    settings = setting_rows([flatten(run.config.model_dump(mode="json")) for run in runs])
    plain_rows = metric_rows(runs)
    rows = [
        {**row, "best": best} for row, best in zip(plain_rows, _best_flags(plain_rows), strict=True)
    ]
    groups = []
    for run in runs:
        significance = run.metrics.significance
        groups.append(
            {
                "label": run.label,
                "models": [row for row in rows if row["run"] == run.label],
                "paired": _paired_text(significance),
                "verdict": significance.verdict if significance else None,
            }
        )
    authors = sorted({run.config.run.author for run in runs})
    alt, caption = catalogue.FIGURES["compare_history"].describe()
    figure = ComparePaths(Path()).figure.as_posix()
    return ComparePage(
        title=f"Comparison of {len(runs)} runs",
        author=", ".join(authors),
        **Page.dated(date),
        labels=[run.label for run in runs],
        differences=[row for row in settings if row.differs],
        settings=settings,
        metric_groups=groups,
        ci_level=rows[0]["ci_level"],
        history_figure=embed_png("compare_history", figure, figure_png, alt=alt, caption=caption),
        paired=any(run.metrics.significance is not None for run in runs),
        matching_note=matching_note(runs),
    )


def matching_note(runs: Sequence[RunInput]) -> str:
    """Return the sentence on the models that not every run has ("" when every run has all).

    Models are matched across runs by name: a model is set only against the
    runs that have a model of its name, and its settings read "—" in the others.
    """
    names = dict.fromkeys(name for run in runs for name in run.metrics.models)
    unmatched = [name for name in names if any(name not in run.metrics.models for run in runs)]
    if not unmatched:
        return ""
    one = len(unmatched) == 1
    return (
        f"Models are matched across runs by name; {text.join(unmatched)} "
        f"{'is' if one else 'are'} not in every run, so {'its' if one else 'their'} test "
        f"accuracy is set against the runs that have {'it' if one else 'them'} only, and "
        f"{'its' if one else 'their'} settings read {text.MISSING} in the others."
    )
