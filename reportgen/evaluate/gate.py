"""CI gate: metric thresholds and the short summary a CI job shows.

Pure functions over a run's :class:`~reportgen.artifacts.metrics.Metrics`:
which thresholds held, and the ``summary.md`` / ``summary.json`` every run
writes for a job summary; over a sweep's table of runs, whether each point's
mean over seeds reaches its thresholds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    ModelMetrics,
)
from reportgen.artifacts.summary import ModelSummary, PairedSummary, Summary, ThresholdResult
from reportgen.config.schema import GATE_METRICS
from reportgen.core.text import MISSING, level, pct

# How each metric a threshold may name (reportgen.config.schema.GATE_METRICS) is read.
METRIC_VALUES: dict[str, Callable[[ModelMetrics], float | None]] = {
    "test_accuracy": lambda m: m.test_accuracy,
    "val_accuracy": lambda m: m.val_accuracy,
    "train_accuracy": lambda m: m.train_accuracy,
    "macro_f1": lambda m: m.classification_report.macro_avg.f1,
    "weighted_f1": lambda m: m.classification_report.weighted_avg.f1,
    "macro_precision": lambda m: m.classification_report.macro_avg.precision,
    "macro_recall": lambda m: m.classification_report.macro_avg.recall,
    "top_k_accuracy": lambda m: m.top_k_accuracy.value if m.top_k_accuracy else None,
}
assert tuple(METRIC_VALUES) == GATE_METRICS, "a gate metric without a reader, or the reverse"


def check_thresholds(metrics: Metrics, minimums: Mapping[str, float]) -> list[ThresholdResult]:
    """Return each threshold's outcome, in key order; a value not measured fails."""
    results = []
    for key in sorted(minimums):
        model, metric = key.split(".", 1)
        value = METRIC_VALUES[metric](metrics.models[model])
        passed = value is not None and value >= minimums[key]
        results.append(ThresholdResult(key=key, minimum=minimums[key], value=value, passed=passed))
    return results


def summary(metrics: Metrics, thresholds: list[ThresholdResult]) -> Summary:
    """Return ``summary.json``: each model's accuracy and interval, the paired test, the gates."""
    significance = metrics.significance
    gated = significance.non_inferiority if significance is not None else None
    paired = None
    if significance is not None:
        paired = PairedSummary(p_value=significance.mcnemar.p_value,
                               significant=significance.significant,
                               verdict=significance.verdict)  # fmt: skip
    return Summary(
        run=metrics.run.name,
        models={
            name: ModelSummary(
                test_accuracy=m.test_accuracy,
                ci_low=m.accuracy_ci.low,
                ci_high=m.accuracy_ci.high,
                diverged=m.divergence is not None,
                diagnosis=list(m.diagnosis.labels),
            )
            for name, m in metrics.models.items()
        },
        significance=paired,
        thresholds=list(thresholds),
        non_inferiority=gated,
        passed=all(t.passed for t in thresholds) and (gated is None or gated.passed),
    )


def summary_markdown(metrics: Metrics, thresholds: list[ThresholdResult]) -> str:
    """Return ``summary.md``: a short Markdown table fit for a CI job summary."""
    ci_level = level(next(iter(metrics.models.values())).accuracy_ci.level)
    lines = [
        f"### reportgen: {metrics.run.name}",
        "",
        f"| model | test accuracy | {ci_level} CI | diagnosis |",
        "| --- | ---: | --- | --- |",
    ]
    for name, m in metrics.models.items():
        ci = f"{pct(m.accuracy_ci.low)} – {pct(m.accuracy_ci.high)}"
        diagnosis = "diverged" if m.divergence else (", ".join(m.diagnosis.labels) or MISSING)
        lines.append(f"| {name} | {pct(m.test_accuracy)} | {ci} | {diagnosis} |")
    if metrics.significance is not None:
        lines += ["", metrics.significance.verdict]
        if (gated := metrics.significance.non_inferiority) is not None:
            lines += ["", f"{'✅' if gated.passed else '❌'} {gated.sentence}"]
    if thresholds:
        lines += ["", "| threshold | minimum | value | result |", "| --- | ---: | ---: | --- |"]
        for t in thresholds:
            mark = "✅ passed" if t.passed else "❌ failed"
            value = MISSING if t.value is None else f"{t.value:.4f}"
            lines.append(f"| {t.key} | {t.minimum:.4f} | {value} | {mark} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MeanThreshold:
    """One ``MODEL.METRIC >= minimum`` check on one point's mean over seeds."""

    key: str
    point: str
    minimum: float
    value: float | None
    passed: bool


def check_mean_thresholds(
    table: pd.DataFrame, minimums: Mapping[str, float]
) -> list[MeanThreshold]:
    """Return, per threshold and point, whether the mean over seeds reaches the minimum."""
    results = []
    for key in sorted(minimums):
        model, metric = key.split(".", 1)
        for point in dict.fromkeys(table["point"]):
            values = table[(table["point"] == point) & (table["model"] == model)][metric]
            values = values.to_numpy(dtype=np.float64)
            mean = float(values.mean()) if values.size and np.isfinite(values).all() else None
            passed = mean is not None and mean >= minimums[key]
            results.append(MeanThreshold(key, point, minimums[key], mean, passed))
    return results
