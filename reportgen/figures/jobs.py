"""A run's figures as jobs: what each figure of the catalogue is drawn from, for every model.

Jobs hold plain data (NumPy arrays, DataFrames, numbers) taken from the
trained models, the data and ``metrics.json``, so the drawing pool never
runs torch; the pipeline draws them and writes the PNGs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from reportgen.artifacts import catalogue
from reportgen.artifacts.label_issues import GALLERY_IMAGES
from reportgen.artifacts.label_table import LabelIssueRow
from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    ModelMetrics,
    ReliabilityBin,
)
from reportgen.config.schema import Config
from reportgen.data.tensors import Dataset
from reportgen.evaluate.calibration import Bins
from reportgen.evaluate.outcome import ModelOutcome, history_table
from reportgen.figures import style
from reportgen.figures.data_jobs import data_figure_jobs
from reportgen.figures.pool import FigureJob
from reportgen.figures.robustness_jobs import robustness_jobs


def model_figures(
    config: Config,
    position: int,
    outcome: ModelOutcome,
    model: ModelMetrics,
    dataset: Dataset,
) -> Iterator[FigureJob]:
    """Yield the figures of one model, as jobs on plain data (torch stays in this process)."""
    name = outcome.name
    images = dataset.test_images  # [N, H, W] or [N, H, W, 3] uint8
    y_test = dataset.test.y.cpu().numpy()
    y_pred = outcome.predictions
    sample = model.sample_index
    seen = outcome.views
    wrong = np.asarray(model.misclassified, dtype=np.int64)
    classes = list(dataset.info.classes)
    # What each kind of figure of the catalogue is drawn from: (args, keyword args).
    inputs: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "weights": (
            (seen.weights,),
            {"model": name, "count": config.report.n_weights, "unit": seen.unit,
             "image_shape": dataset.info.image_shape},
        ),
        "activations": (
            (images[sample], *(seen.activations or ())),
            {"model": name, "index": sample, "label": int(y_test[sample]),
             "prediction": int(y_pred[sample]), "classes": classes,
             **({"layer": model.figure_layers["activations"]}
                if "activations" in model.figure_layers else {})},
        ),
        "misclassified": (
            (images[wrong], y_test[wrong], y_pred[wrong], outcome.proba[wrong, y_pred[wrong]]),
            {"model": name, "total": int(np.count_nonzero(y_pred != y_test)),
             "classes": classes},
        ),
        "curves": (
            (history_table([outcome]),), {"model": name, "color": style.model_color(position)}
        ),
        "confusion": ((model.confusion_matrix,), {"model": name, "classes": classes}),
        "confused_classes": ((model.confusion_matrix,), {"model": name, "classes": classes}),
        "class_errors": (
            ([row.error_rate for row in model.class_errors],),
            {"model": name, "worst": model.worst_classes, "classes": classes,
             "support": [row.support for row in model.class_errors],
             "limit": config.report.table_rows},
        ),
    }  # fmt: skip
    inputs.update(evaluation_inputs(outcome, model, y_test, dataset.info.classes))
    for kind in catalogue.kinds("model"):
        if kind.kind not in model.figures:  # a kind this run does not draw (too few classes)
            continue
        if kind.kind in model.figure_notes:  # the figure cannot apply: its sentence instead
            title = f"{name}: {kind.kind} figure not drawn"
            yield FigureJob(model.figures[kind.kind], "notice",
                            (model.figure_notes[kind.kind],), {"title": title})  # fmt: skip
            continue
        args, kwargs = inputs[kind.kind]
        variant = kind.for_network(seen.variant.get(kind.kind, outcome.spec.kind))
        yield FigureJob(model.figures[kind.kind], variant.builder, args, kwargs)
    pair = catalogue.FIGURES["pair"]
    for gallery in model.pair_galleries:
        shown = np.asarray(gallery.indices, dtype=np.int64)
        yield FigureJob(gallery.figure, pair.builder,
                        (images[shown], shown, outcome.proba[shown, gallery.pred]),
                        {"model": name, "true": gallery.true, "pred": gallery.pred,
                         "total": gallery.count, "classes": classes})  # fmt: skip
    yield from attribution_jobs(outcome, model, dataset)


def _bins(rows: list[ReliabilityBin]) -> Bins:
    """Return ``metrics.json``'s bins as arrays to draw (an empty bin's values as NaN)."""
    value = lambda v: np.nan if v is None else v  # noqa: E731
    return Bins(
        low=np.array([value(b.low) for b in rows], dtype=np.float64),
        high=np.array([value(b.high) for b in rows], dtype=np.float64),
        count=np.array([b.count for b in rows], dtype=np.int64),
        confidence=np.array([value(b.confidence) for b in rows], dtype=np.float64),
        accuracy=np.array([value(b.accuracy) for b in rows], dtype=np.float64),
    )


def evaluation_inputs(
    outcome: ModelOutcome, model: ModelMetrics, y_test: np.ndarray, classes: Sequence[str]
) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """Return what the calibration, ROC and precision–recall figures are drawn from.

    A model without finite logits has none of them (their figure notes say so).
    """
    name, calibrated, ranked = outcome.name, model.calibration, model.one_vs_rest
    if calibrated is None or ranked is None:
        return {}
    drawn = outcome.one_vs_rest(y_test).curves
    roc, roc_micro, pr, pr_micro = drawn.roc, drawn.roc_micro, drawn.pr, drawn.pr_micro
    scaled = calibrated.equal_mass_scaled
    bins = (_bins(calibrated.reliability), _bins(calibrated.equal_mass),
            None if scaled is None else _bins(scaled))  # fmt: skip
    return {
        "reliability": (bins, {"model": name, "temperature": calibrated.temperature}),
        "roc": ((roc, roc_micro, [row.auc for row in ranked.classes]),
                {"model": name, "classes": list(classes)}),
        "pr": ((pr, pr_micro, [row.average_precision for row in ranked.classes]),
               {"model": name, "classes": list(classes)}),
    }  # fmt: skip


def attribution_jobs(
    outcome: ModelOutcome, model: ModelMetrics, dataset: Dataset
) -> Iterator[FigureJob]:
    """Yield the attribution figures: the misclassified grid's, then each confused pair's."""
    if model.attributions is None or outcome.attributions is None:
        return
    classes = dataset.info.classes
    totals = [len(model.misclassified)] + [g.count for g in model.pair_galleries]
    for shown, total in zip(model.attributions.galleries, totals, strict=True):
        indices = np.asarray([image.index for image in shown.images], dtype=np.int64)
        toward_pred, toward_true = outcome.attributions.select(indices)
        if shown.source == "misclassified":
            kind, title = "misclassified_attributions", "misclassified test images"
        else:
            assert shown.true is not None and shown.pred is not None
            kind = "pair_attributions"
            title = f"true {classes[shown.true]} predicted as {classes[shown.pred]}"
        yield FigureJob(
            shown.figure, catalogue.FIGURES[kind].builder,
            (dataset.test_images[indices], toward_pred, toward_true, indices,
             [classes[image.true] for image in shown.images],
             [classes[image.pred] for image in shown.images]),
            {"model": outcome.name, "title": title, "total": total},
        )  # fmt: skip


def label_issues_jobs(
    metrics: Metrics, rows: Sequence[LabelIssueRow], dataset: Dataset
) -> Iterator[FigureJob]:
    """Yield the gallery of the first suspected label errors, when any image is suspected."""
    found = metrics.label_issues
    if found is None or found.figure is None:
        return
    shown = rows[:GALLERY_IMAGES]
    models = list(found.models)
    indices = np.asarray([row.index for row in shown], dtype=np.int64)
    evidence = [[row.evidence[model] for model in models] for row in shown]
    yield FigureJob(
        found.figure, catalogue.FIGURES["label_issues"].builder,
        (dataset.test_images[indices], indices,
         np.asarray([row.label for row in shown], dtype=np.int64),
         np.asarray([row.suggested for row in shown], dtype=np.int64),
         np.asarray([[e.p_label for e in row] for row in evidence], dtype=np.float64),
         np.asarray([[e.p_suggested for e in row] for row in evidence], dtype=np.float64)),
        {"models": models, "classes": list(dataset.info.classes), "total": found.count},
    )  # fmt: skip


def run_figure_jobs(
    config: Config,
    outcomes: Sequence[ModelOutcome],
    dataset: Dataset,
    metrics: Metrics,
    label_rows: Sequence[LabelIssueRow] = (),
) -> list[FigureJob]:
    """Return a job for every figure that ``metrics.figures`` lists, in a fixed order.

    ``label_rows`` are ``label_issues.csv``'s rows, which its gallery shows the first of.
    """
    history = history_table(outcomes)
    jobs = [FigureJob(kind.kind, kind.builder, (history,))
            for kind in catalogue.run_kinds(len(outcomes))]  # fmt: skip
    jobs += label_issues_jobs(metrics, label_rows, dataset)
    for position, outcome in enumerate(outcomes):
        jobs += model_figures(config, position, outcome, metrics.models[outcome.name], dataset)
    jobs += robustness_jobs(metrics.robustness, dataset, seed=config.seed)
    jobs += data_figure_jobs(metrics, dataset)
    drawn = sorted(job.name for job in jobs)
    if drawn != sorted(metrics.figures):  # a bug, not a user error
        raise RuntimeError(f"figures drawn {drawn} differ from metrics.json's list")
    return jobs
