"""``metrics.json``'s robustness: accuracy under corrupted test images, and the comparison."""

from __future__ import annotations

from pydantic import Field, model_validator

from reportgen.artifacts.contract import Contract, Count, Fraction, Label
from reportgen.config.robustness import CorruptionName


class SeverityAccuracy(Contract):
    severity: Count = Field(description="1 (mild) to 5 (severe)")
    accuracy: Fraction = Field(description="accuracy on the corrupted images")
    low: Fraction = Field(description="lower bound (percentile bootstrap, the run's resamples)")
    high: Fraction = Field(description="upper bound (percentile bootstrap, the run's resamples)")


class CorruptionAccuracy(Contract):
    corruption: CorruptionName = Field(description="the corruption")
    severities: list[SeverityAccuracy] = Field(description="one row per severity, mildest first")
    corruption_error: float | None = Field(
        ge=0,
        description="CE: this model's errors summed over the severities, over the reference "
        "model's (Hendrycks & Dietterich); 1 for the reference; null when the reference "
        "makes no error",
    )
    relative_corruption_error: float | None = Field(
        description="relative CE: the same sums of (error − clean error), over the reference "
        "model's; null when the reference loses no accuracy",
    )


class ModelRobustness(Contract):
    clean_accuracy: Fraction = Field(
        description="accuracy on the same test images uncorrupted (severity 0)"
    )
    corruptions: list[CorruptionAccuracy] = Field(description="one row per corruption, in order")
    mce: float | None = Field(
        ge=0,
        description="mean corruption error: the mean of corruption_error over the "
        "corruptions that have one (the reference model's is 1); null when none has",
    )
    relative_mce: float | None = Field(
        description="mean of relative_corruption_error over the corruptions that have one"
    )


class CorruptionTest(Contract):
    corruption: CorruptionName = Field(description="the corruption")
    severity: Count = Field(description="the severity compared: the middle one configured")
    b: Count = Field(description="corrupted images only the first model classifies correctly")
    c: Count = Field(description="corrupted images only the second model classifies correctly")
    p_value: Fraction = Field(description="exact McNemar test of b against c")
    p_adjusted: Fraction = Field(description="Holm-adjusted over the corruptions")
    significant: bool = Field(description="p_adjusted < alpha")


class Robustness(Contract):
    corruptions: list[CorruptionName] = Field(
        min_length=1, description="`report.robustness.corruptions`, in order"
    )
    severities: list[Count] = Field(
        min_length=1, description="`report.robustness.severities`, mildest first"
    )
    test_images: Count = Field(description="test images of the run")
    images: Count = Field(
        description="test images corrupted and classified: all of them, or a subsample of "
        "`report.robustness.images` drawn by the seed"
    )
    example: Label = Field(description="the test image the corruptions figure shows")
    level: Fraction = Field(description="coverage of the intervals, 0.95")
    resamples: Count = Field(description="bootstrap resamples, `report.bootstrap_resamples`")
    reference: str | None = Field(
        description="the model the corruption errors are relative to: the first with a "
        "network (null when no model has one)"
    )
    models: dict[str, ModelRobustness] = Field(
        description="model name → its accuracy under each corruption (models with a network)"
    )
    skipped: dict[str, str] = Field(
        description="model name → why it is not measured (no network to run)"
    )
    tests: list[CorruptionTest] = Field(
        description="per corruption, McNemar's test of the first two measured models at the "
        "middle severity (empty with fewer than two)"
    )
    compared: tuple[str, str] | None = Field(
        description="[first, second] models of the tests; null with fewer than two"
    )
    alpha: Fraction = Field(description="family-wise significance level of the tests, 0.05")
    verdict: str = Field(
        description="plain sentences: which model is more robust, and under which corruptions"
    )
    figures: list[str] = Field(
        description="the figures of the section: accuracy against severity, the corrupted "
        "example (none when no model is measured)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Robustness:
        if self.images > self.test_images:
            raise ValueError(
                f"images: {self.images} is more than the {self.test_images} test images"
            )
        for name, model in self.models.items():
            rows = [row.corruption for row in model.corruptions]
            if rows != self.corruptions:
                raise ValueError(
                    f"models.{name}.corruptions: need one row per corruption, in order"
                )
            for row in model.corruptions:
                if [s.severity for s in row.severities] != self.severities:
                    raise ValueError(
                        f"models.{name}.corruptions ({row.corruption}): need one row per severity"
                    )
        if self.compared is not None and any(m not in self.models for m in self.compared):
            raise ValueError("compared: names a model that is not measured")
        return self
