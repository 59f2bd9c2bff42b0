"""Every scalar a run's report shows, under one flat name: ``MODEL.NAME``, ``significance.NAME``.

The same names are the keys of ``scalars.json`` (DVC's metrics file) and the
metric names ``reportgen export mlflow`` logs, so a number is found under one
name in every tool.  A value ``metrics.json`` holds as null (not measured,
e.g. for a model whose training diverged) is left out rather than written as
a number it is not.
"""

from __future__ import annotations

from collections.abc import Callable

from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    ModelMetrics,
)

ModelValue = Callable[[ModelMetrics], float | int | None]

# name → how it is read from one model's metrics; docs/export.md lists the same names.
MODEL_SCALARS: dict[str, ModelValue] = {
    "test_accuracy": lambda m: m.test_accuracy,
    "test_accuracy_ci_low": lambda m: m.accuracy_ci.low if m.accuracy_ci else None,
    "test_accuracy_ci_high": lambda m: m.accuracy_ci.high if m.accuracy_ci else None,
    "train_accuracy": lambda m: m.train_accuracy,
    "val_accuracy": lambda m: m.val_accuracy,
    "train_test_gap": lambda m: m.train_test_gap,
    "test_loss": lambda m: m.test_loss,
    "top_k": lambda m: m.top_k_accuracy.k if m.top_k_accuracy else None,
    "top_k_accuracy": lambda m: m.top_k_accuracy.value if m.top_k_accuracy else None,
    "top_k_accuracy_ci_low": lambda m: m.top_k_accuracy.low if m.top_k_accuracy else None,
    "top_k_accuracy_ci_high": lambda m: m.top_k_accuracy.high if m.top_k_accuracy else None,
    "macro_precision": lambda m: _report(m, lambda r: r.macro_avg.precision),
    "macro_recall": lambda m: _report(m, lambda r: r.macro_avg.recall),
    "macro_f1": lambda m: _report(m, lambda r: r.macro_avg.f1),
    "weighted_f1": lambda m: _report(m, lambda r: r.weighted_avg.f1),
    "ece": lambda m: m.calibration.ece if m.calibration else None,
    "ece_scaled": lambda m: m.calibration.ece_scaled if m.calibration else None,
    "adaptive_ece": lambda m: m.calibration.adaptive_ece if m.calibration else None,
    "adaptive_ece_scaled": lambda m: m.calibration.adaptive_ece_scaled if m.calibration else None,
    "mce": lambda m: m.calibration.mce if m.calibration else None,
    "brier": lambda m: m.calibration.brier if m.calibration else None,
    "nll_scaled": lambda m: m.calibration.nll_scaled if m.calibration else None,
    "temperature": lambda m: m.calibration.temperature if m.calibration else None,
    "mean_confidence": lambda m: m.calibration.mean_confidence if m.calibration else None,
    "macro_auc": lambda m: m.one_vs_rest.macro_auc if m.one_vs_rest else None,
    "micro_auc": lambda m: m.one_vs_rest.micro_auc if m.one_vs_rest else None,
    "macro_average_precision": lambda m: (
        m.one_vs_rest.macro_average_precision if m.one_vs_rest else None
    ),
    "micro_average_precision": lambda m: (
        m.one_vs_rest.micro_average_precision if m.one_vs_rest else None
    ),
    "parameters": lambda m: m.parameters,
    "epochs": lambda m: m.epochs,
}

# The paired comparison (the other model against the reference), under "significance.NAME".
SIGNIFICANCE_SCALARS = (
    "p_value", "mcnemar_b", "mcnemar_c", "difference", "difference_low", "difference_high",
)  # fmt: skip


def _report(model: ModelMetrics, read: Callable[..., float]) -> float | None:
    report = model.classification_report
    return None if report is None else read(report)


def scalars(metrics: Metrics) -> dict[str, float | int]:
    """Return every scalar of ``metrics`` by its flat name, models in training order."""
    values: dict[str, float | int | None] = {}
    for name, model in metrics.models.items():
        for key, read in MODEL_SCALARS.items():
            values[f"{name}.{key}"] = read(model)
    paired = metrics.significance
    if paired is not None:
        found = (
            paired.mcnemar.p_value,
            paired.mcnemar.b,
            paired.mcnemar.c,
            paired.difference.estimate,
            paired.difference.low,
            paired.difference.high,
        )
        for key, value in zip(SIGNIFICANCE_SCALARS, found, strict=True):
            values[f"significance.{key}"] = value
    return {key: value for key, value in values.items() if value is not None}
