"""Trained models' predictions -> the :class:`~reportgen.metrics.Metrics` of a run.

Everything ``metrics.json`` holds is computed here, from the test labels and
each model's predicted probabilities and training history, and built
through the types of :mod:`reportgen.metrics`, so a number that does not fit
the contract stops the run before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reportgen import datasets, diagnosis, evaluate, layers, rundir, stats
from reportgen.config import Config, ReportSection
from reportgen.figures import figure_name, kinds
from reportgen.metrics import (
    AccuracyInterval,
    ComparisonRow,
    CurveDiagnosis,
    DataFingerprint,
    DatasetInfo,
    DifferenceInterval,
    Divergence,
    McNemarTest,
    Metrics,
    ModelMetrics,
    RunInfo,
    Significance,
)
from reportgen.seeding import derive_seed

if TYPE_CHECKING:
    from reportgen.data import Dataset
    from reportgen.pipeline import ModelOutcome


def views(config: Config, outcome: ModelOutcome, dataset: Dataset) -> layers.LayerViews:
    """Return what one model's weights and activations figures show."""
    sample = config.report.sample_index
    return layers.layer_views(
        outcome.model, outcome.spec.kind, dataset.test.inputs(slice(sample, sample + 1)),
        image_shape=dataset.info.image_shape, layer=config.layer(outcome.name), name=outcome.name,
    )  # fmt: skip


def model_metrics(
    outcome: ModelOutcome,
    y_test: np.ndarray,
    *,
    report: ReportSection,
    seed: int,
    num_classes: int,
    pairs: Sequence[tuple[int, int]],
    shown: layers.LayerViews | None = None,
) -> ModelMetrics:
    """Return every number the report shows about one model, and what its figures show.

    ``pairs`` are the configured confused pairs, as class indices; ``shown``
    what the weights and activations figures show (the modules they are drawn
    from, and the sentences shown instead of a figure that cannot apply).
    """
    y_pred = outcome.predictions
    matrix = evaluate.confusion(y_test, y_pred, num_classes=num_classes)
    errors = evaluate.class_errors(matrix)
    final = outcome.history[-1] if outcome.history else None
    test_accuracy = evaluate.accuracy(y_test, y_pred)
    interval = stats.accuracy_interval(
        y_pred == y_test, resamples=report.bootstrap_resamples, seed=derive_seed(seed, "bootstrap")
    )
    divergence = outcome.divergence
    curves = diagnosis.diagnose(
        [vars(record) for record in outcome.history],
        diverged_epoch=divergence["epoch"] if divergence else None,
    )
    return ModelMetrics(
        parameters=outcome.parameters,
        epochs=len(outcome.history),
        train_accuracy=outcome.train_accuracy,
        val_accuracy=final.val_accuracy if final else None,
        test_accuracy=test_accuracy,
        train_test_gap=outcome.train_accuracy - test_accuracy,
        test_loss=evaluate.mean_log_loss(y_test, outcome.proba),
        classification_report=evaluate.classification_report(
            y_test, y_pred, num_classes=num_classes
        ),
        confusion_matrix=matrix.tolist(),
        class_errors=errors,
        worst_classes=evaluate.worst_classes(errors),
        confused_pairs=evaluate.most_confused_pairs(matrix, count=report.auto_pairs),
        divergence=Divergence(**divergence) if divergence else None,
        accuracy_ci=AccuracyInterval(
            level=interval.level, resamples=interval.resamples, low=interval.low, high=interval.high
        ),
        diagnosis=CurveDiagnosis.model_validate(asdict(curves)),
        sample_index=report.sample_index,
        misclassified=evaluate.misclassified_indices(y_test, y_pred, limit=report.n_misclassified),
        pair_galleries=evaluate.pair_galleries(
            matrix,
            y_test,
            y_pred,
            configured=pairs,
            auto=report.auto_pairs,
            limit=report.n_pair_examples,
            figure=lambda true, pred: figure_name("pair", outcome.name, true=true, pred=pred),
        ),
        figure_layers=dict(shown.layers) if shown else {},
        figure_notes=dict(shown.notes) if shown else {},
        figures={kind.kind: figure_name(kind.kind, outcome.name) for kind in kinds("model")},
    )


def significance(
    first: ModelOutcome, second: ModelOutcome, y_test: np.ndarray, *, resamples: int, seed: int
) -> Significance:
    """Return the paired comparison of two models (McNemar, bootstrap interval, verdict)."""
    result = stats.compare(
        first.predictions == y_test, second.predictions == y_test, names=(first.name, second.name),
        resamples=resamples, seed=derive_seed(seed, "bootstrap"),
    )  # fmt: skip
    return Significance(
        models=result.models,
        mcnemar=McNemarTest(**asdict(result.mcnemar)),
        difference=DifferenceInterval(**asdict(result.difference)),
        alpha=result.alpha,
        significant=result.significant,
        verdict=result.verdict,
    )


def comparison_rows(models: Mapping[str, ModelMetrics]) -> list[ComparisonRow]:
    """Return one comparison-table row per model (no wall-clock times: they break byte identity)."""
    return [
        ComparisonRow(
            model=name,
            train_accuracy=m.train_accuracy,
            val_accuracy=m.val_accuracy,
            test_accuracy=m.test_accuracy,
            train_test_gap=m.train_test_gap,
            parameters=m.parameters,
            epochs=m.epochs,
        )
        for name, m in models.items()
    ]


def figure_paths(models: Mapping[str, ModelMetrics]) -> dict[str, str]:
    """Return ``{figure name: path in the run}`` for every figure of the run."""
    names = [kind.kind for kind in kinds("run")]
    for model in models.values():
        names += [*model.figures.values(), *(gallery.figure for gallery in model.pair_galleries)]
    return {name: rundir.RunPaths(Path()).figure(name).as_posix() for name in names}


def dataset_info(dataset: Dataset, y_test: np.ndarray) -> DatasetInfo:
    """Return ``metrics.json``'s description of the data the run used."""
    info = dataset.info
    return DatasetInfo(
        name=info.name,
        kind=info.kind,  # type: ignore[arg-type]  # DatasetKind, checked by the contract
        classes=list(info.classes),
        image_shape=info.image_shape,
        mean=list(info.mean),
        std=list(info.std),
        fingerprint=DataFingerprint(
            method=info.fingerprint_method,  # type: ignore[arg-type]
            sha256=dict(info.fingerprint),
        ),
        train_size=len(dataset.train),
        val_size=len(dataset.val),
        test_size=len(dataset.test),
        test_support=np.bincount(y_test, minlength=info.num_classes).tolist(),
    )


def build_metrics(
    config: Config, outcomes: Sequence[ModelOutcome], dataset: Dataset, y_test: np.ndarray
) -> Metrics:
    """Return the whole ``metrics.json`` document of a run."""
    pairs = datasets.confused_pairs(config, dataset.info)
    models = {
        o.name: model_metrics(o, y_test, report=config.report, seed=config.seed,
                              num_classes=dataset.info.num_classes, pairs=pairs,
                              shown=views(config, o, dataset))
        for o in outcomes
    }  # fmt: skip
    paired = None
    if len(outcomes) >= 2:
        paired = significance(
            outcomes[0], outcomes[1], y_test,
            resamples=config.report.bootstrap_resamples, seed=config.seed,
        )  # fmt: skip
    return Metrics(
        schema=1,
        run=RunInfo(name=config.run.name, seed=config.seed),
        dataset=dataset_info(dataset, y_test),
        models=models,
        comparison=comparison_rows(models),
        significance=paired,
        figures=figure_paths(models),
    )
