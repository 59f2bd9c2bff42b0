"""``metrics.json``'s suspected label errors: how they were found, how many, the first ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reportgen.artifacts.contract import Contract, Count, Fraction

FIRST_LISTED = 50  # test positions listed in metrics.json; label_issues.csv has them all
GALLERY_IMAGES = 24  # the first suspected images the report's gallery shows


class ModelLabelCheck(Contract):
    thresholds: list[Fraction | None] = Field(
        description="per class, class 0 first: t_j, the mean probability the model gives class "
        "j over the test images labelled j (null for a class without test images, which is "
        "then never confidently predicted)"
    )
    flagged: Count = Field(
        description="test images whose confident class (the most probable class at or above "
        "its threshold) is not their label: this model's off-diagonal of the confident joint"
    )
    errors: Count = Field(description="the model's misclassified test images")
    errors_on_suspected: Count = Field(
        description="of them, how many are suspected label errors (flagged by any model)"
    )

    @model_validator(mode="after")
    def _within(self) -> ModelLabelCheck:
        if self.errors_on_suspected > self.errors:
            raise ValueError("errors_on_suspected exceeds errors")
        return self


class LabelIssues(Contract):
    method: Literal["confident-joint-off-diagonal"] = Field(
        description="confident learning (Northcutt, Jiang & Chuang, JAIR 2021) on each model's "
        "test probabilities: an image is flagged when its confident class differs from its "
        "label"
    )
    ranking: Literal["normalized-margin"] = Field(
        description="the evidence ranked: p_label − max over the other classes of p_k, "
        "averaged over the models, lowest first"
    )
    combination: Literal["any-model"] = Field(
        description="an image is suspected when any model flags it; images flagged by more "
        "models rank first, then by the mean margin, then by test position"
    )
    models: dict[str, ModelLabelCheck] = Field(
        description="model name → its check, for every model with finite logits, in training "
        "order (empty when none has: nothing is suspected)"
    )
    count: Count = Field(description="suspected test images: the rows of label_issues.csv")
    flagged_by_all: Count = Field(description="of them, how many every model flags")
    first: list[Count] = Field(
        max_length=FIRST_LISTED,
        description=f"test positions of the first {FIRST_LISTED} suspected images, by rank",
    )
    figure: str | None = Field(
        description="name of the gallery of the first suspected images, null when none is"
    )

    @model_validator(mode="after")
    def _counts(self) -> LabelIssues:
        if len(self.first) != min(self.count, FIRST_LISTED):
            raise ValueError(f"first: need the first {min(self.count, FIRST_LISTED)} positions")
        if len(set(self.first)) != len(self.first):
            raise ValueError("first: a test position is listed twice")
        if self.flagged_by_all > self.count:
            raise ValueError("flagged_by_all exceeds count")
        for name, check in self.models.items():
            if check.flagged > self.count:
                raise ValueError(f"models.{name}.flagged exceeds count")
        if (self.figure is None) != (self.count == 0):
            raise ValueError("figure: set exactly when an image is suspected")
        return self
