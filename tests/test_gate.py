from __future__ import annotations

from typing import Any

import pytest

from reportgen.config import load_config
from reportgen.errors import ConfigError
from reportgen.gate import check_thresholds, metric_value, summary_json, summary_markdown


def _metrics() -> dict[str, Any]:
    def model(acc: float, f1: float) -> dict[str, Any]:
        return {
            "test_accuracy": acc, "val_accuracy": acc, "train_accuracy": 0.99,
            "classification_report": {"macro_avg": {"f1": f1, "precision": f1, "recall": f1},
                                      "weighted_avg": {"f1": f1}},
            "accuracy_ci": {"low": acc - 0.003, "high": acc + 0.003},
            "divergence": None, "diagnosis": {"labels": ["good fit"]},
        }  # fmt: skip

    return {
        "run": {"name": "demo"},
        "models": {"baseline": model(0.9796, 0.9794), "regularized": model(0.9838, 0.9837)},
        "significance": {
            "mcnemar": {"p_value": 0.001},
            "significant": True,
            "verdict": "The regularized model is more accurate.",
        },
    }


def test_metric_value_paths() -> None:
    model = _metrics()["models"]["baseline"]
    assert metric_value(model, "test_accuracy") == 0.9796
    assert metric_value(model, "macro_f1") == 0.9794
    assert metric_value({"test_accuracy": None}, "test_accuracy") is None


@pytest.mark.parametrize(
    ("minimums", "passed"),
    [
        ({"regularized.test_accuracy": 0.98}, [True]),
        ({"regularized.test_accuracy": 0.99}, [False]),
        ({"baseline.macro_f1": 0.9794, "regularized.test_accuracy": 0.99}, [True, False]),
    ],
)
def test_check_thresholds(minimums: dict[str, float], passed: list[bool]) -> None:
    results = check_thresholds(_metrics(), minimums)
    assert [r.passed for r in results] == passed
    assert [r.key for r in results] == sorted(minimums)


def test_summary_markdown_table() -> None:
    thresholds = check_thresholds(_metrics(), {"baseline.test_accuracy": 0.98})
    summary = summary_json(_metrics(), thresholds)
    assert summary["passed"] is False
    text = summary_markdown(summary)
    assert "| baseline | 97.96% | 97.66% – 98.26% | good fit |" in text
    assert "| baseline.test_accuracy | 0.9800 | 0.9796 | ❌ failed |" in text
    assert "The regularized model is more accurate." in text


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("nope.test_accuracy=0.9", "MODEL one of baseline, regularized"),
        ("baseline.loss=0.9", "METRIC one of test_accuracy"),
        ("baseline.test_accuracy=1.5", "less than or equal to 1"),
        ("baseline.test_accuracy=high", "valid number"),
        ("baseline.test_accuracy", "expected MODEL.METRIC=VALUE"),
    ],
)
def test_fail_under_validation(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(None, fail_under=[item])
