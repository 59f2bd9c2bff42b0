"""The figures drawn from the data rather than the models, as jobs: duplicates and class balance."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from reportgen.artifacts import catalogue
from reportgen.artifacts.duplicates import SHOWN_PAIRS
from reportgen.artifacts.metrics import Metrics
from reportgen.data.tensors import Dataset, display_images
from reportgen.figures.pool import FigureJob


def data_figure_jobs(metrics: Metrics, dataset: Dataset) -> Iterator[FigureJob]:
    """Yield the jobs of the data's figures that ``metrics`` names."""
    balance = metrics.class_balance
    if balance is not None:
        yield FigureJob(
            balance.figure, catalogue.FIGURES["class_balance"].builder,
            (balance.train, balance.val, balance.test),
            {"classes": list(dataset.info.classes), "under_share": balance.under_share},
        )  # fmt: skip
    found = metrics.duplicates
    if found is not None and found.figure is not None:
        shown = found.pairs[:SHOWN_PAIRS]
        splits = {"train": dataset.train, "val": dataset.val}
        test_at = np.asarray([p.test for p in shown], dtype=np.int64)
        matched = np.concatenate([
            display_images(splits[p.split].x[p.match : p.match + 1]) for p in shown
        ])  # fmt: skip
        yield FigureJob(
            found.figure, catalogue.FIGURES["duplicates"].builder,
            (display_images(dataset.test.x[test_at]), matched, test_at,
             np.asarray([p.match for p in shown], dtype=np.int64),
             np.asarray([p.distance for p in shown], dtype=np.float64)),
            {"splits": [p.split for p in shown], "total": found.pairs_total},
        )  # fmt: skip
