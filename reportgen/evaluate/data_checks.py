"""What the data say besides the models: duplicates across splits and class balance, as
``metrics.json``'s types (:mod:`reportgen.artifacts.duplicates`,
:mod:`reportgen.artifacts.class_balance`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from reportgen.artifacts.class_balance import UNDER_SHARE, ClassBalance, UnderRepresented
from reportgen.artifacts.duplicates import (
    LISTED_PAIRS,
    AccuracyWithout,
    DuplicatePair,
    Duplicates,
    SplitDuplicates,
)
from reportgen.artifacts.model_metrics import (
    ModelMetrics,
)
from reportgen.core.seeding import derive_seed
from reportgen.data.tensors import Dataset
from reportgen.evaluate import class_balance, duplicates, statistics
from reportgen.evaluate.outcome import ModelOutcome

DUPLICATES_FIGURE = "duplicates"
CLASS_BALANCE_FIGURE = "class_balance"


def find(dataset: Dataset) -> duplicates.Found:
    """Return the test images' duplicates in the training and validation splits."""
    return duplicates.find_duplicates(
        dataset.test.x.cpu(), {"train": dataset.train.x.cpu(), "val": dataset.val.x.cpu()}
    )


def accuracy_without(
    correct: np.ndarray, keep: np.ndarray, *, resamples: int, seed: int
) -> AccuracyWithout:
    """Return the accuracy on the test images ``keep`` marks, with its bootstrap interval."""
    kept = correct[keep]
    if len(kept) == 0:
        return AccuracyWithout(images=0, accuracy=None, low=None, high=None)
    interval = statistics.accuracy_interval(kept, resamples=resamples, seed=seed)
    return AccuracyWithout(images=len(kept), accuracy=interval.estimate, low=interval.low,
                           high=interval.high)  # fmt: skip


def whole_test_set(model: ModelMetrics, images: int) -> AccuracyWithout:
    """Return a model's test accuracy and interval, for a test set without duplicates."""
    interval = model.accuracy_ci
    return AccuracyWithout(images=images, accuracy=model.test_accuracy, low=interval.low,
                           high=interval.high)  # fmt: skip


def duplicates_metrics(
    found: duplicates.Found,
    dataset: Dataset,
    outcomes: Sequence[ModelOutcome],
    models: Mapping[str, ModelMetrics],
    *,
    resamples: int,
    seed: int,
) -> Duplicates:
    """Return ``metrics.json``'s ``duplicates``: counts, the first pairs, accuracy without them.

    Without a duplicate in training, the accuracy on the rest is each model's
    test accuracy with its interval (``models``), not drawn again.
    """
    y_test = dataset.test.y.cpu().numpy()
    keep = ~found.in_training()
    sources = {"train": dataset.train.index, "val": dataset.val.index}
    pairs = [
        DuplicatePair(test=m.test, split=m.split, match=m.match,
                      source_index=int(sources[m.split][m.match]), kind=m.kind,
                      distance=m.distance)
        for m in found.matches[:LISTED_PAIRS]
    ]  # fmt: skip
    return Duplicates(
        method="aligned-cosine",
        grid=duplicates.GRID,
        threshold=duplicates.THRESHOLD,
        train=SplitDuplicates(exact=found.count("train", "exact"),
                              near=found.count("train", "near")),
        val=SplitDuplicates(exact=found.count("val", "exact"), near=found.count("val", "near")),
        pairs_total=len(found.matches),
        pairs=pairs,
        figure=DUPLICATES_FIGURE if found.matches else None,
        accuracy_without={
            o.name: accuracy_without(o.predictions == y_test, keep, resamples=resamples,
                                     seed=derive_seed(seed, "duplicates"))
            if not keep.all() else whole_test_set(models[o.name], len(keep))
            for o in outcomes
        },
    )  # fmt: skip


def class_balance_metrics(dataset: Dataset) -> ClassBalance:
    """Return ``metrics.json``'s ``class_balance``: images per class of each split."""
    k = dataset.info.num_classes
    counts = {
        split: class_balance.class_counts(part.y.cpu().numpy(), num_classes=k)
        for split, part in (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))
    }
    scarce = class_balance.under_represented(counts, share=UNDER_SHARE)
    return ClassBalance(
        train=counts["train"],
        val=counts["val"],
        test=counts["test"],
        under_share=UNDER_SHARE,
        under_represented=[
            UnderRepresented(split=s.split, label=s.label, images=s.images, mean=s.mean)  # type: ignore[arg-type]
            for s in scarce
        ],
        figure=CLASS_BALANCE_FIGURE,
    )
