"""CI gate: metric thresholds and the short summary a CI job shows.

Pure functions over ``metrics.json``: which thresholds held, and the
``summary.md`` / ``summary.json`` every run writes for a job summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from reportgen.formatting import MISSING, pct

# Metrics a threshold may name: higher is better for every one of them.
GATE_METRICS: dict[str, tuple[str, ...]] = {
    "test_accuracy": ("test_accuracy",),
    "val_accuracy": ("val_accuracy",),
    "train_accuracy": ("train_accuracy",),
    "macro_f1": ("classification_report", "macro_avg", "f1"),
    "weighted_f1": ("classification_report", "weighted_avg", "f1"),
    "macro_precision": ("classification_report", "macro_avg", "precision"),
    "macro_recall": ("classification_report", "macro_avg", "recall"),
}


@dataclass(frozen=True)
class Threshold:
    """One ``MODEL.METRIC >= minimum`` check and its outcome."""

    key: str
    minimum: float
    value: float | None
    passed: bool


def metric_value(model: Mapping[str, Any], metric: str) -> float | None:
    """Return one gate metric of a model's metrics, or None when it was not measured."""
    node: Any = model
    for part in GATE_METRICS[metric]:
        if not isinstance(node, Mapping) or node.get(part) is None:
            return None
        node = node[part]
    return float(node)


def check_thresholds(metrics: Mapping[str, Any], minimums: Mapping[str, float]) -> list[Threshold]:
    """Return each threshold's outcome, in key order; a missing value fails."""
    results = []
    for key in sorted(minimums):
        model, metric = key.split(".", 1)
        value = metric_value(metrics["models"][model], metric)
        passed = value is not None and value >= minimums[key]
        results.append(Threshold(key, minimums[key], value, passed))
    return results


def summary_json(metrics: Mapping[str, Any], thresholds: list[Threshold]) -> dict[str, Any]:
    """Return the machine-readable job summary."""
    models = {
        name: {
            "test_accuracy": m["test_accuracy"],
            "ci_low": m.get("accuracy_ci", {}).get("low"),
            "ci_high": m.get("accuracy_ci", {}).get("high"),
            "diverged": bool(m.get("divergence")),
            "diagnosis": m.get("diagnosis", {}).get("labels", []),
        }
        for name, m in metrics["models"].items()
    }
    significance = metrics.get("significance")
    return {
        "run": metrics["run"]["name"],
        "models": models,
        "significance": None
        if significance is None
        else {
            "p_value": significance["mcnemar"]["p_value"],
            "significant": significance["significant"],
            "verdict": significance["verdict"],
        },
        "thresholds": [asdict(t) for t in thresholds],
        "passed": all(t.passed for t in thresholds),
    }


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """Return ``summary.md``: a short Markdown table fit for a CI job summary."""
    lines = [
        f"### reportgen: {summary['run']}",
        "",
        "| model | test accuracy | 95% CI | diagnosis |",
        "| --- | ---: | --- | --- |",
    ]
    for name, m in summary["models"].items():
        ci = f"{pct(m['ci_low'])} – {pct(m['ci_high'])}" if m["ci_low"] is not None else MISSING
        diagnosis = "diverged" if m["diverged"] else (", ".join(m["diagnosis"]) or MISSING)
        lines.append(f"| {name} | {pct(m['test_accuracy'])} | {ci} | {diagnosis} |")
    if summary["significance"] is not None:
        lines += ["", summary["significance"]["verdict"]]
    if summary["thresholds"]:
        lines += ["", "| threshold | minimum | value | result |", "| --- | ---: | ---: | --- |"]
        for t in summary["thresholds"]:
            mark = "✅ passed" if t["passed"] else "❌ failed"
            value = MISSING if t["value"] is None else f"{t['value']:.4f}"
            lines.append(f"| {t['key']} | {t['minimum']:.4f} | {value} | {mark} |")
    return "\n".join(lines) + "\n"
