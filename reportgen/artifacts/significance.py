"""``metrics.json``'s comparison of the models: the table of all, and the paired tests of two."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reportgen.artifacts.contract import Contract, Count, Fraction, Label
from reportgen.artifacts.noninferiority import NonInferiority


class ComparisonRow(Contract):
    model: str = Field(description="model name")
    train_accuracy: Fraction | None = Field(description="as under `models.*`")
    val_accuracy: Fraction | None = Field(description="as under `models.*`")
    test_accuracy: Fraction = Field(description="as under `models.*`")
    train_test_gap: float | None = Field(ge=-1, le=1, description="as under `models.*`")
    parameters: Count | None = Field(description="as under `models.*`")
    epochs: Count = Field(description="as under `models.*`")


class McNemarTest(Contract):
    b: Count = Field(description="test images only the first model classifies correctly")
    c: Count = Field(description="test images only the second model classifies correctly")
    p_value: Fraction = Field(description="exact two-sided binomial test of b against c")


class DifferenceInterval(Contract):
    estimate: float = Field(ge=-1, le=1, description="second − first test accuracy")
    low: float = Field(ge=-1, le=1, description="lower bound (paired bootstrap)")
    high: float = Field(ge=-1, le=1, description="upper bound (paired bootstrap)")
    level: Fraction = Field(description="coverage, 0.95")
    resamples: Count = Field(description="bootstrap resamples, the same as the accuracies'")


class ClassRecallDifference(Contract):
    label: Label = Field(description="the class")
    support: Count = Field(description="its test images")
    first_recall: Fraction = Field(description="the first model's recall of the class")
    second_recall: Fraction = Field(description="the second model's recall of the class")
    estimate: float = Field(ge=-1, le=1, description="second − first recall")
    low: float = Field(ge=-1, le=1, description="lower bound (paired bootstrap, same resamples)")
    high: float = Field(ge=-1, le=1, description="upper bound (paired bootstrap, same resamples)")
    b: Count = Field(description="images of the class only the first model classifies correctly")
    c: Count = Field(description="images of the class only the second model classifies correctly")
    p_value: Fraction = Field(description="exact McNemar test on the class's images")
    p_adjusted: Fraction = Field(description="Holm-adjusted over all classes")
    significant: bool = Field(description="p_adjusted < alpha")


class ClassRecallComparison(Contract):
    correction: Literal["holm"] = Field(
        description="how the p-values are adjusted for testing every class: Holm's step-down"
    )
    level: Fraction = Field(description="coverage of the intervals, 0.95")
    resamples: Count = Field(description="bootstrap resamples, the same as the accuracies'")
    alpha: Fraction = Field(description="family-wise significance level, 0.05")
    classes: list[ClassRecallDifference] = Field(description="one row per class, class 0 first")
    verdict: str = Field(
        description="plain sentences: on which classes the second model's recall is "
        "significantly higher or lower, or that no class difference is clear"
    )


class Significance(Contract):
    models: tuple[str, str] = Field(
        description="[reference, other]: the config's reference (unset: the first model) and "
        'the model compared against it, e.g. ["baseline", "regularized"]'
    )
    mcnemar: McNemarTest = Field(description="McNemar's exact test on the paired predictions")
    difference: DifferenceInterval = Field(description="interval of the accuracy difference")
    alpha: Fraction = Field(description="significance level, 0.05")
    significant: bool = Field(description="p_value < alpha")
    verdict: str = Field(
        description="one plain sentence: which model is more accurate, and whether significantly"
    )
    class_recall: ClassRecallComparison = Field(
        description="per-class recall differences, second − first, with Holm-adjusted p-values"
    )
    non_inferiority: NonInferiority | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="the gate's verdict: is the second model not worse than the first by more "
        "than `gate.fail_if_worse` pp; absent unless that key is set",
    )
