"""The report's sentences, written from the metrics.

The executive summary, the curve diagnosis, the worst classes and confused
pairs, the evidence of the attribution maps and a model's architecture:
each a pure function of ``metrics.json``'s types and the config, so the
same run always reads the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import get_args

from reportgen.artifacts.metrics import (
    DatasetInfo,
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    AttributionGallery,
    Divergence,
    EvidenceRegion,
    ModelMetrics,
)
from reportgen.artifacts.significance import (
    Significance,
)
from reportgen.config.schema import ModelSection
from reportgen.core.text import count, join, join_some, level, num, pct
from reportgen.data.sources import source_for
from reportgen.evaluate.attribution import MAX_IMAGES, REFERENCE_PIXELS, AttributionPlan
from reportgen.report.class_tables import ranking_table


def accuracy_sentence(models: Mapping[str, ModelMetrics], test_size: int) -> str:
    """Return the sentence giving every model's test accuracy with its confidence interval."""
    parts = [
        f"{pct(m.test_accuracy)} for the {name} model ({level(m.accuracy_ci.level)} CI "
        f"{pct(m.accuracy_ci.low)}–{pct(m.accuracy_ci.high)})"
        for name, m in models.items()
    ]
    return f"Test accuracy on the {num(test_size)} test images: {join(parts)}."


def significance_sentence(significance: Significance) -> str:
    """Return the verdict of the paired test with the counts it rests on."""
    first, second = significance.models
    mcnemar = significance.mcnemar
    return (
        f"{significance.verdict} Of the test images, {num(mcnemar.b)} are classified "
        f"correctly only by the {first} model and {num(mcnemar.c)} only by the {second} model."
    )


def diagnosis_sentence(name: str, model: ModelMetrics) -> str:
    """Return the curve diagnosis of one model as a sentence."""
    return f"Curve diagnosis for the {name} model — {model.diagnosis.summary}"


def class_phrase(dataset: DatasetInfo, label: int) -> str:
    """Return how a sentence names a class, as the data's source words it: "digit 4", “Shirt”."""
    return source_for(dataset.kind).class_phrase(dataset.classes[label])


PAIRS_NAMED = 5  # confused pairs a sentence names; it counts the rest


def errors_sentence(name: str, model: ModelMetrics, dataset: DatasetInfo) -> str:
    """Return the worst classes and most confused pairs of one model as a sentence."""
    classes = dataset.classes
    rates = {row.label: row.error_rate for row in model.class_errors}
    worst = [
        f"{class_phrase(dataset, label)} ({pct(rates[label], 1)} wrong)"
        for label in model.worst_classes
    ]
    # With many classes the report's table lists every pair; the sentence names a few.
    pairs = [
        f"{classes[p.true]} → {classes[p.pred]} ({count(p.count, 'image')})"
        for p in model.confused_pairs
    ]
    if not worst:
        return f"The {name} model misclassifies none of the test images."
    sentence = f"The {name} model errs most on {join(worst)}"
    if pairs:
        named = join_some(pairs, PAIRS_NAMED)
        sentence += f"; its most confused pairs (true → predicted) are {named}"
    return sentence + "."


def divergence_sentence(name: str, divergence: Divergence) -> str:
    """Return the warning that a model diverged: its training loss or its logits not finite."""
    if divergence.epoch is None:  # the loss stayed finite, the logits in eval mode did not
        return (
            f"The {name} model's logits on the test, validation or training images are not all "
            "finite (NaN or infinite) in eval mode, although its training loss was; its results "
            "are not meaningful, and what is measured from its probabilities is left out. "
            "Check the network's forward pass in eval mode, or lower train.lr and run again."
        )
    sentence = (
        f"Training of the {name} model diverged in epoch {divergence.epoch} "
        f"(step {num(divergence.step)}; last finite loss "
        f"{num(divergence.last_finite_loss)}); its results are not meaningful. "
    )
    if not divergence.finite_logits:
        return sentence + (
            "Even with the weights restored, its logits are not finite, so what is measured "
            "from its probabilities is left out. Check the network's forward pass, or lower "
            "train.lr and run again."
        )
    return sentence + "Lower train.lr and run again."


def not_measured_sentence(name: str) -> str:
    """Return why a model's probabilities were not measured: its logits are not finite."""
    return f"Not measured: the {name} model's logits are not finite."


def summary_warnings(metrics: Metrics) -> list[str]:
    """Return one warning per model whose training diverged."""
    return [
        divergence_sentence(name, m.divergence)
        for name, m in metrics.models.items()
        if m.divergence is not None
    ]


def summary_paragraphs(metrics: Metrics) -> list[str]:
    """Return the executive summary: plain sentences generated from the metrics."""
    models = metrics.models
    paragraphs = [accuracy_sentence(models, metrics.dataset.test_size)]
    if metrics.significance is not None:
        paragraphs.append(significance_sentence(metrics.significance))
        if metrics.significance.non_inferiority is not None:
            paragraphs.append(metrics.significance.non_inferiority.sentence)
    paragraphs += [diagnosis_sentence(name, m) for name, m in models.items()]
    paragraphs += [errors_sentence(name, m, metrics.dataset) for name, m in models.items()]
    paragraphs += deeper_paragraphs(metrics)
    return paragraphs


def deeper_paragraphs(metrics: Metrics) -> list[str]:
    """Return the summary's sentences on calibration and per-class differences."""
    paragraphs = [m.calibration.verdict for m in metrics.models.values() if m.calibration]
    if metrics.significance is not None:
        paragraphs.append(class_recall_sentence(metrics.significance, metrics.dataset))
    return paragraphs


def class_recall_sentence(significance: Significance, dataset: DatasetInfo) -> str:
    """Return the summary's word on per-class recall: on which classes it differs, by name.

    The model comparison gives each class's difference with its interval and
    p-value (the verdict of ``metrics.json``); the summary names the classes
    once, at most a few of each kind, clearest first.
    """
    first, second = significance.models
    recall = significance.class_recall
    correction = f"Holm’s correction for {len(recall.classes):,} classes, α = {recall.alpha:g}"
    ranked = sorted(
        (row for row in recall.classes if row.significant),
        key=lambda row: (-abs(row.estimate), -row.support, dataset.classes[row.label]),
    )
    higher = [class_phrase(dataset, row.label) for row in ranked if row.estimate > 0]
    lower = [class_phrase(dataset, row.label) for row in ranked if row.estimate < 0]
    if not higher and not lower:
        return (
            f"Per class, no recall difference between the {first} and {second} models is "
            f"significant ({correction})."
        )
    claims = []
    if higher:
        claims.append(f"higher on {join_some(higher)}")
    if lower:
        claims.append(f"lower on {join_some(lower)}")
    return (
        f"Per class, the {second} model’s recall is significantly {' and '.join(claims)} than "
        f"the {first} model’s ({correction})."
    )


def ranking_sentence(name: str, model: ModelMetrics, classes: Sequence[str]) -> str:
    """Return the averaged ROC and precision–recall areas and the class ranked worst."""
    ranked = model.one_vs_rest
    if ranked is None:
        return not_measured_sentence(name)
    sentence = (
        f"One class against the rest, the {name} model reaches a macro-averaged ROC AUC of "
        f"{num(ranked.macro_auc)} (micro {num(ranked.micro_auc)}) and a macro-averaged average "
        f"precision of {num(ranked.macro_average_precision)} "
        f"(micro {num(ranked.micro_average_precision)})"
    )
    worst = ranking_table(model, classes, limit=1, full_table="").rows
    if worst and worst[0].auc is not None:
        sentence += f"; its probabilities rank class {classes[worst[0].label]} worst"
        sentence += f" (AUC {num(worst[0].auc)})"
    return sentence + "."


def attribution_scope_sentence(
    chosen: AttributionPlan, *, configured_steps: int, image_shape: Sequence[int]
) -> str | None:
    """Return what larger images cut from the attributions (steps, images), or None if nothing.

    ``chosen`` is ``attribution.plan`` for ``configured_steps`` and images
    of ``image_shape`` (``[C, H, W]``).
    """
    if chosen.steps == configured_steps and not chosen.reduced:
        return None
    height, width = int(image_shape[-2]), int(image_shape[-1])
    cuts = []
    if chosen.reduced:
        cuts.append(f"the first {count(chosen.images, 'image')} of each grid and gallery "
                    f"rather than {MAX_IMAGES}")  # fmt: skip
    if chosen.steps != configured_steps:
        cuts.append(f"{chosen.steps} steps rather than the {configured_steps} of "
                    "report.attribution_steps")  # fmt: skip
    side = round(REFERENCE_PIXELS**0.5)
    return (
        f"At {height} × {width} pixels the maps are made for {join(cuts)}, so that they cost "
        f"about what they do for {side} × {side} images."
    )


def evidence_sentence(gallery: AttributionGallery, classes: Sequence[str]) -> str:
    """Return where the evidence for the wrong class lies across a gallery's images."""
    images = gallery.images
    if not images:
        return "No image to attribute."
    if gallery.true is not None and gallery.pred is not None:
        what = f"evidence for {classes[gallery.pred]} over {classes[gallery.true]}"
    else:
        what = "evidence for the predicted over the true class"
    regions = [image.region for image in images if image.region is not None]
    if not regions:
        return f"No pixel holds {what}."
    order = get_args(EvidenceRegion)
    tally = sorted(Counter(regions).items(), key=lambda item: (-item[1], order.index(item[0])))
    (top, times), rest = tally[0], tally[1:]
    sentence = (
        f"The cell of a 3 × 3 grid over the image that holds most {what} is the {top} in "
        f"{times} of {count(len(images), 'image')}"
    )
    if rest:
        sentence += "; then " + join([f"the {region} ({n})" for region, n in rest[:2]])
    return sentence + "."


def describe_model(spec: ModelSection, dataset: DatasetInfo) -> str:
    """Return a one-line description of a model's architecture and regularizers."""
    classes = len(dataset.classes)
    if spec.kind == "python":
        args = ", ".join(f"{k}={v!r}" for k, v in spec.args.items())
        parts = [f"the network made by {spec.factory}({args})"]
    elif spec.kind == "cnn":
        head = "→".join(str(w) for w in (*spec.hidden, classes))
        parts = [f"CNN: two 3×3 conv blocks (16, 32 channels) with max-pooling, head {head}"]
    else:
        inputs = dataset.image_shape[0] * dataset.image_shape[1] * dataset.image_shape[2]
        parts = ["MLP " + "→".join(str(w) for w in (inputs, *spec.hidden, classes))]
    if spec.kind != "python":
        parts.append("ReLU")
    if spec.batchnorm:
        parts.append("BatchNorm1d")
    if spec.dropout:
        parts.append(f"dropout p={spec.dropout:g}")
    if spec.weight_decay:
        parts.append(f"L2 weight decay {spec.weight_decay:g}")
    if spec.l1:
        parts.append(f"L1 λ={spec.l1:g}")
    schedules = {
        "none": "constant learning rate",
        "step": f"StepLR (every {spec.step_size} epochs × {spec.gamma:g})",
        "exponential": f"ExponentialLR (γ={spec.gamma:g})",
        "plateau": f"ReduceLROnPlateau (factor {spec.plateau_factor:g}, "
        f"patience {spec.plateau_patience})",
        "cosine": f"CosineAnnealingLR (min {spec.min_lr:g})",
        "onecycle": f"OneCycleLR (max {spec.max_lr:g})",
    }
    parts.append(schedules[spec.scheduler])
    return ", ".join(parts)
