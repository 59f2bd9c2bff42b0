from __future__ import annotations

from typing import Any

import pytest

from reportgen.artifacts.metrics import Metrics
from reportgen.artifacts.summary import parse_summary
from reportgen.config.loading import load_config
from reportgen.config.schema import GATE_METRICS
from reportgen.core.errors import ConfigError
from reportgen.evaluate.gate import METRIC_VALUES, check_thresholds, summary, summary_markdown
from tests import synthetic


def _metrics() -> Metrics:
    """The synthetic run's metrics with known accuracies and F1 scores."""

    def edit(data: dict[str, Any]) -> None:
        data["run"]["name"] = "demo"
        for name, accuracy, f1 in (("baseline", 0.9796, 0.9794), ("regularized", 0.9838, 0.9837)):
            model = data["models"][name]
            model["test_accuracy"] = accuracy
            model["accuracy_ci"].update(low=accuracy - 0.003, high=accuracy + 0.003)
            model["classification_report"]["macro_avg"]["f1"] = f1
        data["significance"]["verdict"] = "The regularized model is more accurate."

    return synthetic.edited(edit)


def _with_top_k(data: dict[str, Any]) -> None:
    for model in data["models"].values():
        model["top_k_accuracy"] = {"k": 5, "value": 0.9981, "low": 0.9972, "high": 0.9989}


@pytest.mark.parametrize("metric", list(GATE_METRICS))
def test_every_gate_metric_reads_a_fraction(metric: str) -> None:
    value = METRIC_VALUES[metric](synthetic.edited(_with_top_k, _metrics()).models["baseline"])
    assert value is not None and 0 <= value <= 1


def test_top_k_accuracy_is_a_gate_metric_only_where_it_was_measured() -> None:
    measured = synthetic.edited(_with_top_k, _metrics())
    assert METRIC_VALUES["top_k_accuracy"](measured.models["baseline"]) == 0.9981
    threshold = {"baseline.top_k_accuracy": 0.99}
    passed, missed = check_thresholds(measured, threshold), check_thresholds(_metrics(), threshold)
    assert [t.passed for t in passed] == [True]
    assert [(t.passed, t.value) for t in missed] == [(False, None)]  # 10 classes: none measured
    # Not measured, it is not written at all: metrics.json of such a run keeps its bytes.
    assert "top_k_accuracy" not in _metrics().dump()["models"]["baseline"]


def test_gate_metric_values() -> None:
    model = _metrics().models["baseline"]
    assert METRIC_VALUES["test_accuracy"](model) == 0.9796
    assert METRIC_VALUES["macro_f1"](model) == 0.9794
    assert METRIC_VALUES["val_accuracy"](model.model_copy(update={"val_accuracy": None})) is None


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
    document = summary(_metrics(), thresholds)
    assert document.passed is False
    assert parse_summary(document.model_dump_json()) == document
    text = summary_markdown(_metrics(), thresholds)
    assert "| model | test accuracy | 95% CI | diagnosis |" in text
    assert "| baseline | 97.96% | 97.66% – 98.26% | good fit |" in text
    assert "| baseline.test_accuracy | 0.9800 | 0.9796 | ❌ failed |" in text
    assert "The regularized model is more accurate." in text


def test_a_missing_value_fails_its_threshold() -> None:
    document = synthetic.edited(lambda m: m["models"]["baseline"].update(val_accuracy=None))
    (result,) = check_thresholds(document, {"baseline.val_accuracy": 0.5})
    assert result.value is None and not result.passed
    text = summary_markdown(document, [result])
    assert "| baseline.val_accuracy | 0.5000 | — | ❌ failed |" in text


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (
            "nope.test_accuracy=0.9",
            r"gate\.fail_under: no model 'nope' \(models: baseline, regularized\)$",
        ),
        ("baseline.loss=0.9", "METRIC one of test_accuracy"),
        ("baseline.test_accuracy=1.5", "less than or equal to 1"),
        ("baseline.test_accuracy=high", "valid number"),
        ("baseline.test_accuracy", "expected MODEL.METRIC=VALUE"),
    ],
)
def test_fail_under_validation(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(None, fail_under=[item])
