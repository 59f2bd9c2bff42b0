"""Trained models' predictions -> the :class:`~reportgen.artifacts.metrics.Metrics` of a run.

Everything ``metrics.json`` holds is computed here, from the test labels and
each model's logits, probabilities and training history, and built through
the types of :mod:`reportgen.artifacts.metrics`, so a number that does not
fit the contract stops the run before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from reportgen.artifacts.catalogue import FIGURES, figure_name, kinds, run_kinds
from reportgen.artifacts.label_issues import LabelIssues
from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.metrics import (
    SCHEMA,
    DataFingerprint,
    DatasetInfo,
    Metrics,
    RunInfo,
)
from reportgen.artifacts.model_metrics import (
    AccuracyInterval,
    AttributedImage,
    AttributionGallery,
    Attributions,
    Calibration,
    ClassRanking,
    CurveDiagnosis,
    Divergence,
    ModelMetrics,
    OneVsRest,
    PairGallery,
    ReliabilityBin,
    TopKAccuracy,
)
from reportgen.artifacts.robustness import Robustness
from reportgen.artifacts.significance import (
    ClassRecallComparison,
    ClassRecallDifference,
    ComparisonRow,
    DifferenceInterval,
    McNemarTest,
    Significance,
)
from reportgen.config.schema import Config, ReportSection
from reportgen.core.seeding import derive_seed
from reportgen.data import sources
from reportgen.data.tensors import Dataset
from reportgen.evaluate import (
    attribution,
    calibration,
    classification,
    confusion,
    data_checks,
    diagnosis,
    duplicates,
    noninferiority,
    per_class,
    statistics,
)
from reportgen.evaluate.outcome import ModelOutcome
from reportgen.evaluate.ranking import Rankings


def model_metrics(
    outcome: ModelOutcome,
    y_test: np.ndarray,
    *,
    report: ReportSection,
    seed: int,
    y_val: np.ndarray,
    class_names: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    top_k: int | None = None,
) -> ModelMetrics:
    """Return every number the report shows about one model, and what its figures show.

    ``class_names`` are the classes in index order; ``pairs`` the configured
    confused pairs, as class indices; ``top_k``
    the k of the top-k accuracy (None: none).  What the
    weights and activations figures show (the modules they are drawn from, and
    the sentences shown instead of a figure that cannot apply) is the
    outcome's ``views``.
    """
    y_pred = outcome.predictions
    num_classes = len(class_names)
    matrix = classification.confusion(y_test, y_pred, num_classes=num_classes)
    errors = classification.class_errors(matrix)
    final = outcome.history[-1] if outcome.history else None
    test_accuracy = classification.accuracy(y_test, y_pred)
    interval = statistics.accuracy_interval(
        y_pred == y_test, resamples=report.bootstrap_resamples, seed=derive_seed(seed, "bootstrap")
    )
    top_k_accuracy = None
    if top_k is not None:
        top = statistics.accuracy_interval(
            classification.top_k_correct(outcome.proba, y_test, k=top_k),
            resamples=report.bootstrap_resamples, seed=derive_seed(seed, "bootstrap"),
        )  # fmt: skip
        top_k_accuracy = TopKAccuracy(k=top_k, value=top.estimate, low=top.low, high=top.high)
    misclassified = classification.misclassified_indices(
        y_test, y_pred, limit=report.n_misclassified
    )
    galleries = classification.pair_galleries(
        matrix,
        y_test,
        y_pred,
        configured=pairs,
        auto=report.auto_pairs,
        limit=report.n_pair_examples,
        figure=lambda true, pred: figure_name("pair", outcome.name, true=true, pred=pred),
    )
    divergence = outcome.divergence
    curves = diagnosis.diagnose(
        [asdict(record) for record in outcome.history],
        diverged_epoch=divergence.epoch if divergence else None,
    )
    if outcome.source.kind != "trained":
        curves = diagnosis.Diagnosis(labels=[], summary=untrained_sentence(outcome), evidence=[])
    finite = outcome.finite_logits
    calibrated = model_calibration(outcome, y_test, y_val) if finite else None
    shown = outcome.views
    train_accuracy = outcome.train_accuracy
    return ModelMetrics(
        source=outcome.source,
        parameters=outcome.parameters,
        epochs=len(outcome.history),
        train_accuracy=train_accuracy,
        val_accuracy=final.val_accuracy if final else outcome.val_accuracy,
        test_accuracy=test_accuracy,
        train_test_gap=None if train_accuracy is None else train_accuracy - test_accuracy,
        test_loss=calibrated.nll if calibrated else None,
        classification_report=classification.classification_report(
            y_test,
            y_pred,
            num_classes=num_classes,
            resamples=report.bootstrap_resamples,
            seed=derive_seed(seed, "bootstrap"),
        ),
        confusion_matrix=matrix.tolist(),
        class_errors=errors,
        worst_classes=classification.worst_classes(errors, names=class_names),
        confused_pairs=classification.most_confused_pairs(
            matrix, count=confusion.listed_pairs(num_classes, report.auto_pairs)
        ),
        divergence=divergence_metrics(outcome),
        accuracy_ci=AccuracyInterval(
            level=interval.level, resamples=interval.resamples, low=interval.low, high=interval.high
        ),
        top_k_accuracy=top_k_accuracy,
        diagnosis=CurveDiagnosis.model_validate(asdict(curves)),
        sample_index=report.sample_index,
        misclassified=misclassified,
        pair_galleries=galleries,
        figure_layers=dict(shown.layers),
        figure_notes={
            **shown.notes,
            **untrained_notes(outcome),
            **({} if finite else non_finite_notes(outcome.name)),
            **confusion_notes(outcome.name, matrix),
        },
        figures={
            kind.kind: figure_name(kind.kind, outcome.name)
            for kind in kinds("model")
            if kind.applies(num_classes)
        },
        calibration=calibration_metrics(outcome.name, calibrated) if calibrated else None,
        one_vs_rest=one_vs_rest(outcome.one_vs_rest(y_test).rankings) if finite else None,
        attributions=attribution_metrics(outcome, y_test, misclassified, galleries),
    )


def model_calibration(
    outcome: ModelOutcome, y_test: np.ndarray, y_val: np.ndarray
) -> calibration.Calibration:
    """Return a model's calibration, from the float32 probabilities ``predictions.csv`` holds.

    With validation logits (a network), a temperature is fitted on them;
    without (a predictions file), nothing is scaled, and the test loss is the
    NLL of the logits if the file has them, else of the probabilities
    (:func:`~reportgen.evaluate.calibration.probability_nll`).
    """
    if outcome.test_logits is not None and outcome.val_logits is not None:
        return calibration.calibrate(outcome.test_logits, y_test, outcome.val_logits, y_val,
                                     proba=outcome.proba)  # fmt: skip
    nll = (calibration.probability_nll(outcome.proba, y_test) if outcome.test_logits is None
           else calibration.negative_log_likelihood(outcome.test_logits, y_test))  # fmt: skip
    return calibration.calibrate_probabilities(outcome.proba, y_test, nll=nll)


# What a model the run did not train lacks, by the figure that shows it.
NETWORK_FIGURES = {"weights": "weights figure", "activations": "activations figure"}


def source_phrase(outcome: ModelOutcome) -> str:
    """Return an untrained model's origin: "its checkpoint x.pt", "its predictions file …"."""
    what = "checkpoint" if outcome.source.kind == "checkpoint" else "predictions file"
    return f"its {what} {outcome.source.file}"


def untrained_sentence(outcome: ModelOutcome) -> str:
    """Return the one sentence shown instead of the training curves of a model not trained here."""
    return (
        f"The {outcome.name} model was not trained by this run (it comes from "
        f"{source_phrase(outcome)}), so it has no training curves."
    )


def untrained_notes(outcome: ModelOutcome) -> dict[str, str]:
    """Return the sentences shown instead of the figures a model not trained here lacks."""
    if outcome.source.kind == "trained":
        return {}
    notes = {"curves": untrained_sentence(outcome)}
    if outcome.source.kind == "predictions":
        notes |= {
            kind: f"The {what} needs a network; the {outcome.name} model is evaluated from "
            f"{source_phrase(outcome)}."
            for kind, what in NETWORK_FIGURES.items()
        }
    return notes


def divergence_metrics(outcome: ModelOutcome) -> Divergence | None:
    """Return where a model diverged: a non-finite training loss, logits, or both; else None."""
    if outcome.divergence is None and outcome.finite_logits:
        return None
    where = (asdict(outcome.divergence) if outcome.divergence
             else {"epoch": None, "step": None, "last_finite_loss": None})  # fmt: skip
    return Divergence(**where, finite_logits=outcome.finite_logits)


# What a figure drawn from the probabilities is called in the sentence that replaces it.
PROBABILITY_FIGURES = {
    "reliability": "reliability diagram",
    "roc": "ROC curves",
    "pr": "precision–recall curves",
}


def non_finite_notes(name: str) -> dict[str, str]:
    """Return the sentences shown instead of the figures a model without finite logits lacks."""
    return {
        kind: f"The {what} of the {name} model cannot be drawn: its logits are not finite."
        for kind, what in PROBABILITY_FIGURES.items()
    }


def confusion_notes(name: str, matrix: np.ndarray) -> dict[str, str]:
    """Return the sentence shown instead of the confused classes figure when nothing is confused."""
    drawn = FIGURES["confused_classes"].applies(len(matrix))
    if not drawn or confusion.most_confused_classes(matrix):
        return {}
    return {"confused_classes": f"The {name} model confuses no two classes on the test set."}


def _fraction(value: float) -> float | None:
    """Return a NumPy float as a plain float, NaN (an empty bin) as None."""
    return None if np.isnan(value) else float(value)


def _bins(bins: calibration.Bins) -> list[ReliabilityBin]:
    return [
        ReliabilityBin(low=_fraction(low), high=_fraction(high), count=int(count),
                       confidence=_fraction(conf), accuracy=_fraction(acc))
        for low, high, count, conf, acc in zip(
            bins.low, bins.high, bins.count, bins.confidence, bins.accuracy, strict=True
        )
    ]  # fmt: skip


def calibration_metrics(name: str, result: calibration.Calibration) -> Calibration:
    """Return a model's test calibration, and after a temperature fitted on the validation split.

    The NLL before scaling is the model's ``test_loss``, so it is not repeated here.
    """
    return Calibration(
        bins=len(result.bins.count),
        ece=result.ece,
        mce=result.mce,
        adaptive_ece=result.adaptive_ece,
        brier=result.brier,
        mean_confidence=result.mean_confidence,
        temperature=result.temperature,
        ece_scaled=result.ece_scaled,
        adaptive_ece_scaled=result.adaptive_ece_scaled,
        nll_scaled=result.nll_scaled,
        reliability=_bins(result.bins),
        equal_mass=_bins(result.equal_mass),
        equal_mass_scaled=(
            None if result.equal_mass_scaled is None else _bins(result.equal_mass_scaled)
        ),
        verdict=calibration.confidence_verdict(name, result),
    )


def one_vs_rest(result: Rankings) -> OneVsRest:
    """Return ``metrics.json``'s one-vs-rest ROC and precision–recall areas of a model."""
    return OneVsRest(
        classes=[ClassRanking(**asdict(row)) for row in result.classes],
        macro_auc=result.macro_auc,
        micro_auc=result.micro_auc,
        macro_average_precision=result.macro_average_precision,
        micro_average_precision=result.micro_average_precision,
    )


def attribution_metrics(
    outcome: ModelOutcome,
    y_test: np.ndarray,
    misclassified: Sequence[int],
    galleries: Sequence[PairGallery],
) -> Attributions | None:
    """Return where the evidence for the wrong class lies in each attributed image, if any."""
    maps = outcome.attributions
    if maps is None:
        return None
    y_pred = outcome.predictions

    def images(indices: Sequence[int]) -> list[AttributedImage]:
        toward_pred, toward_true = maps.select(indices)
        rows = []
        for index, pred_map, true_map in zip(indices, toward_pred, toward_true, strict=True):
            region, share = attribution.evidence_region(pred_map, true_map)
            rows.append(AttributedImage(index=index, true=int(y_test[index]),
                                        pred=int(y_pred[index]), region=region,  # type: ignore[arg-type]
                                        region_share=share))  # fmt: skip
        return rows

    shown = [
        AttributionGallery(source="misclassified", true=None, pred=None,
                           figure=figure_name("misclassified_attributions", outcome.name),
                           images=images(attribution.attributed(misclassified, maps.images)))
    ]  # fmt: skip
    shown += [
        AttributionGallery(source="pair", true=g.true, pred=g.pred,
                           figure=figure_name("pair_attributions", outcome.name, true=g.true,
                                              pred=g.pred),
                           images=images(attribution.attributed(g.indices, maps.images)))
        for g in galleries
    ]  # fmt: skip
    return Attributions(
        method="integrated-gradients", baseline="black", steps=maps.steps, galleries=shown
    )


def significance(
    first: ModelOutcome,
    second: ModelOutcome,
    y_test: np.ndarray,
    *,
    resamples: int,
    seed: int,
    class_names: Sequence[str],
    margin_pp: float | None = None,
) -> Significance:
    """Return the paired comparison of two models (McNemar, bootstrap interval, verdict).

    With ``margin_pp`` (``gate.fail_if_worse``), also whether the second model is not
    worse than the first by more than that many percentage points, from the same
    interval and test.
    """
    result = statistics.compare(
        first.predictions == y_test, second.predictions == y_test, names=(first.name, second.name),
        resamples=resamples, seed=derive_seed(seed, "bootstrap"),
    )  # fmt: skip
    by_class = per_class.recall_differences(
        y_test, first.predictions, second.predictions, names=(first.name, second.name),
        class_names=class_names, resamples=resamples, seed=derive_seed(seed, "bootstrap"),
    )  # fmt: skip
    return Significance(
        models=result.models,
        mcnemar=McNemarTest(**asdict(result.mcnemar)),
        difference=DifferenceInterval(**asdict(result.difference)),
        alpha=result.alpha,
        significant=result.significant,
        verdict=result.verdict,
        class_recall=class_recall(by_class),
        non_inferiority=None if margin_pp is None else noninferiority.judge(
            result.difference, result.mcnemar, names=result.models, margin_pp=margin_pp,
            alpha=result.alpha,
        ),
    )  # fmt: skip


def class_recall(comparison: per_class.RecallComparison) -> ClassRecallComparison:
    """Return the per-class recall comparison as ``metrics.json``'s type."""
    return ClassRecallComparison(
        correction="holm",
        level=comparison.level,
        resamples=comparison.resamples,
        alpha=comparison.alpha,
        classes=[ClassRecallDifference(**asdict(row)) for row in comparison.rows],
        verdict=comparison.verdict,
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


def figure_paths(
    models: Mapping[str, ModelMetrics], label_issues: LabelIssues | None = None
) -> dict[str, str]:
    """Return ``{figure name: path in the run}`` for every figure of the run."""
    names = [kind.kind for kind in run_kinds(len(models))]
    if label_issues is not None and label_issues.figure is not None:
        names.append(label_issues.figure)
    for model in models.values():
        names += [*model.figures.values(), *(gallery.figure for gallery in model.pair_galleries)]
        if model.attributions is not None:
            names += [shown.figure for shown in model.attributions.galleries]
    return {name: RUN_FILES.figure(name).as_posix() for name in names}


def dataset_info(dataset: Dataset, y_test: np.ndarray) -> DatasetInfo:
    """Return ``metrics.json``'s description of the data the run used."""
    info = dataset.info
    return DatasetInfo(
        name=info.name,
        kind=info.kind,
        classes=list(info.classes),
        image_shape=info.image_shape,
        mean=list(info.mean),
        std=list(info.std),
        fingerprint=DataFingerprint(
            method=info.fingerprint_method,
            sha256=dict(info.fingerprint),
        ),
        train_size=len(dataset.train),
        val_size=len(dataset.val),
        test_size=len(dataset.test),
        test_support=np.bincount(y_test, minlength=info.num_classes).tolist(),
    )


def build_metrics(
    config: Config,
    outcomes: Sequence[ModelOutcome],
    dataset: Dataset,
    label_issues: LabelIssues | None = None,
    *,
    robustness: Robustness | None = None,
    found: duplicates.Found | None = None,
) -> Metrics:
    """Return the whole ``metrics.json`` document of a run.

    ``label_issues`` are the suspected label errors (:mod:`reportgen.evaluate.label_summary`),
    None when ``report.label_issues`` is off; ``robustness`` is its own stage's;
    ``found``: the test images' duplicates (:func:`data_checks.find`), None
    when ``report.duplicates`` is off.
    """
    pairs = sources.confused_pairs(config, dataset.info.classes)
    y_test = dataset.test.y.cpu().numpy()
    y_val = dataset.val.y.cpu().numpy()
    top_k = sources.top_k(config, dataset.info.num_classes)
    models = {
        o.name: model_metrics(o, y_test, report=config.report, seed=config.seed, y_val=y_val,
                              class_names=dataset.info.classes, pairs=pairs, top_k=top_k)
        for o in outcomes
    }  # fmt: skip
    paired = None
    if (compared := config.compared()) is not None:  # the other model against the reference
        by_name = {o.name: o for o in outcomes}
        paired = significance(
            by_name[compared[0]], by_name[compared[1]], y_test,
            resamples=config.report.bootstrap_resamples, seed=config.seed,
            class_names=dataset.info.classes, margin_pp=config.gate.fail_if_worse,
        )  # fmt: skip
    duplicated = None
    if found is not None:
        duplicated = data_checks.duplicates_metrics(
            found, dataset, outcomes, models, resamples=config.report.bootstrap_resamples,
            seed=config.seed,
        )  # fmt: skip
    balance = data_checks.class_balance_metrics(dataset)
    data_figures = [balance.figure]
    if duplicated is not None and duplicated.figure is not None:
        data_figures.append(duplicated.figure)
    return Metrics(
        schema=SCHEMA,
        run=RunInfo(name=config.run.name, seed=config.seed),
        dataset=dataset_info(dataset, y_test),
        models=models,
        comparison=comparison_rows(models),
        significance=paired,
        figures={**figure_paths(models, label_issues), **robustness_figures(robustness)}
        | {n: RUN_FILES.figure(n).as_posix() for n in data_figures},
        label_issues=label_issues,
        robustness=robustness,
        duplicates=duplicated,
        class_balance=balance,
    )


def robustness_figures(robustness: Robustness | None) -> dict[str, str]:
    """Return ``{figure name: path in the run}`` of the robustness section's figures."""
    names = [] if robustness is None else robustness.figures
    return {name: RUN_FILES.figure(name).as_posix() for name in names}
