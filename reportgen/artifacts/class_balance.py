"""``metrics.json``'s ``class_balance``: images per class in the train, validation and test splits.

A class is under-represented in a split when it holds fewer than half the
mean number of images per class there (:data:`UNDER_SHARE`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reportgen.artifacts.contract import Contract, Count, Label

UNDER_SHARE = 0.5  # under-represented: fewer images than this share of the split's mean per class

BalanceSplit = Literal["train", "val", "test"]


class UnderRepresented(Contract):
    split: BalanceSplit = Field(description="the split")
    label: Label = Field(description="the class")
    images: Count = Field(description="its images in the split")
    mean: float = Field(ge=0, description="the split's mean images per class")


class ClassBalance(Contract):
    train: list[Count] = Field(description="training images per class, class 0 first")
    val: list[Count] = Field(description="validation images per class, class 0 first")
    test: list[Count] = Field(description="test images per class, class 0 first")
    under_share: float = Field(
        gt=0, le=1, description="a class is under-represented in a split when it holds fewer "
        "than this share (0.5) of the split's mean images per class"
    )  # fmt: skip
    under_represented: list[UnderRepresented] = Field(
        description="every (split, class) below that, split by split (train, val, test), "
        "fewest images first, then the lowest class"
    )
    figure: str = Field(description="name of the class balance figure")

    @model_validator(mode="after")
    def _one_count_per_class(self) -> ClassBalance:
        if not len(self.train) == len(self.val) == len(self.test):
            raise ValueError("train, val and test need one count per class each")
        return self
