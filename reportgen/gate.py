"""CI gate: metric thresholds and the short summary a CI job shows.

Pure functions over a run's :class:`~reportgen.metrics.Metrics`: which
thresholds held, and the ``summary.md`` / ``summary.json`` every run writes
for a job summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from reportgen.formatting import MISSING, level, pct

if TYPE_CHECKING:
    from reportgen.metrics import Metrics, ModelMetrics

# Metrics a threshold may name: higher is better for every one of them.
GATE_METRICS: dict[str, Callable[[ModelMetrics], float | None]] = {
    "test_accuracy": lambda m: m.test_accuracy,
    "val_accuracy": lambda m: m.val_accuracy,
    "train_accuracy": lambda m: m.train_accuracy,
    "macro_f1": lambda m: m.classification_report.macro_avg.f1,
    "weighted_f1": lambda m: m.classification_report.weighted_avg.f1,
    "macro_precision": lambda m: m.classification_report.macro_avg.precision,
    "macro_recall": lambda m: m.classification_report.macro_avg.recall,
}


@dataclass(frozen=True)
class Threshold:
    """One ``MODEL.METRIC >= minimum`` check and its outcome."""

    key: str
    minimum: float
    value: float | None
    passed: bool


def check_thresholds(metrics: Metrics, minimums: Mapping[str, float]) -> list[Threshold]:
    """Return each threshold's outcome, in key order; a value not measured fails."""
    results = []
    for key in sorted(minimums):
        model, metric = key.split(".", 1)
        value = GATE_METRICS[metric](metrics.models[model])
        passed = value is not None and value >= minimums[key]
        results.append(Threshold(key, minimums[key], value, passed))
    return results


def summary_json(metrics: Metrics, thresholds: list[Threshold]) -> dict[str, Any]:
    """Return the machine-readable job summary."""
    models = {
        name: {
            "test_accuracy": m.test_accuracy,
            "ci_low": m.accuracy_ci.low,
            "ci_high": m.accuracy_ci.high,
            "diverged": m.divergence is not None,
            "diagnosis": list(m.diagnosis.labels),
        }
        for name, m in metrics.models.items()
    }
    significance = metrics.significance
    return {
        "run": metrics.run.name,
        "models": models,
        "significance": None
        if significance is None
        else {
            "p_value": significance.mcnemar.p_value,
            "significant": significance.significant,
            "verdict": significance.verdict,
        },
        "thresholds": [asdict(t) for t in thresholds],
        "passed": all(t.passed for t in thresholds),
    }


def summary_markdown(metrics: Metrics, thresholds: list[Threshold]) -> str:
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
    if thresholds:
        lines += ["", "| threshold | minimum | value | result |", "| --- | ---: | ---: | --- |"]
        for t in thresholds:
            mark = "✅ passed" if t.passed else "❌ failed"
            value = MISSING if t.value is None else f"{t.value:.4f}"
            lines.append(f"| {t.key} | {t.minimum:.4f} | {value} | {mark} |")
    return "\n".join(lines) + "\n"
