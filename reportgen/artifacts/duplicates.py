"""``metrics.json``'s ``duplicates``: test images that also sit in the training or validation split.

Written from :func:`reportgen.evaluate.duplicates.find_duplicates` by
:mod:`reportgen.evaluate.assemble`; the report's duplicates section and its
gallery of pairs are drawn from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reportgen.artifacts.contract import Contract, Count, Fraction

# Pairs listed in metrics.json (lowest test position first); `pairs_total` counts them all.
LISTED_PAIRS = 100
# Pairs shown in the report's gallery: the first of the listed ones.
SHOWN_PAIRS = 12


class DuplicatePair(Contract):
    test: Count = Field(description="position of the test image in the test split")
    split: Literal["train", "val"] = Field(
        description='where its duplicate is: "train" (the training split) or "val"'
    )
    match: Count = Field(description="position of the duplicate in that split")
    source_index: Count = Field(
        description="position of the duplicate in the data's own training set (the IDX file, "
        "or the image folder's sorted training list)"
    )
    kind: Literal["exact", "near"] = Field(
        description='"exact": the same pixels; "near": within `threshold` but not identical'
    )
    distance: float = Field(
        ge=0, le=2, description="1 − cosine similarity of the two aligned grids (0 when exact)"
    )


class SplitDuplicates(Contract):
    exact: Count = Field(description="test images with an identical image in the split")
    near: Count = Field(
        description="test images without an identical image but with one within `threshold`"
    )


class AccuracyWithout(Contract):
    images: Count = Field(description="test images without a duplicate in the training split")
    accuracy: Fraction | None = Field(
        description="the model's accuracy on them, null when there are none"
    )
    low: Fraction | None = Field(
        description="lower bound of its percentile-bootstrap interval at `accuracy_ci.level` "
        '(seed derived from `seed` and "duplicates"; `accuracy_ci` when no test image has a '
        "duplicate in training), null likewise"
    )
    high: Fraction | None = Field(description="upper bound, null likewise")


class Duplicates(Contract):
    method: Literal["aligned-cosine"] = Field(
        description="exact: the same decoded pixels (BLAKE2b digests, confirmed byte for byte); "
        "near: each image made grey, less its median, translated so the centroid of its "
        "absolute values is the centre (sub-pixel), averaged down to `grid` × `grid`, made "
        "zero-mean and unit-norm; the distance is 1 − cosine similarity"
    )
    grid: Count = Field(description="side of the compared grid, 16")
    threshold: float = Field(
        ge=0, le=2, description="a near duplicate is at most this far, 0.001 whatever the data"
    )
    train: SplitDuplicates = Field(description="test images with a duplicate in the training split")
    val: SplitDuplicates = Field(description="test images with a duplicate in the validation split")
    pairs_total: Count = Field(
        description="(test image, split) pairs found: a test image with a duplicate in both "
        "splits counts twice"
    )
    pairs: list[DuplicatePair] = Field(
        description=f"the first {LISTED_PAIRS} pairs, lowest test position first, train before "
        "val; in each split a test image's identical image, else its nearest (lowest position "
        "on ties)"
    )
    figure: str | None = Field(
        description="name of the gallery figure of the first pairs, null when none was found"
    )
    accuracy_without: dict[str, AccuracyWithout] = Field(
        description="model name → its test accuracy on the test images without a duplicate in "
        "the training split, with its interval"
    )

    @model_validator(mode="after")
    def _counted(self) -> Duplicates:
        if len(self.pairs) > self.pairs_total:
            raise ValueError(f"{len(self.pairs)} pairs listed of pairs_total {self.pairs_total}")
        if (self.figure is None) != (self.pairs_total == 0):
            raise ValueError("figure is null exactly when no pair was found")
        return self
