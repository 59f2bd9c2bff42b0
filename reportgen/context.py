"""A finished run -> the plain data and sentences its report shows.

:func:`build_context` reads a run directory (``config.toml``,
``metrics.json``, ``manifest.json``, ``figures/*.png``), checking each file
against the manifest, and returns what the templates display: the run's
:class:`~reportgen.metrics.Metrics` objects, its figures as ``data:`` URIs
with the alt text and captions of :data:`reportgen.figures.FIGURES`, and the
summary sentences written from the metrics.  Nothing here renders or reads
the clock: the report date is ``run.date`` (which every run since dates were
recorded has), else ``SOURCE_DATE_EPOCH``, else 1970-01-01, so the same run
gives the same context.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from reportgen import __version__, rundir
from reportgen.config import (
    Config,
    ModelSection,
    parse_toml,
    source_date_epoch,
    validate,
)
from reportgen.errors import ConfigError, RenderError, ReportgenError, RunDirError
from reportgen.figures import FIGURES, figure_name, kinds
from reportgen.formatting import count, level, num, pct
from reportgen.metrics import (
    AttributionGallery,
    ClassRanking,
    ClassRecallDifference,
    ClassScores,
    DatasetInfo,
    Divergence,
    EvidenceRegion,
    Metrics,
    ModelMetrics,
    Significance,
    read_metrics,
)

GENERATOR = f"reportgen {__version__}"
REPRODUCE_COMMAND = "reportgen run --config config.toml"
RERENDER_COMMAND = "reportgen render RUN_DIR"
# The report cannot list its own hashes; the manifest is what lists the others.
NOT_LISTED = frozenset({"report.html", "report.pdf", rundir.MANIFEST})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PROMISE = (
    "The same configuration and seed, run on the same machine type with the same library "
    "versions and the same thread count, produce the same models, metrics, figures and "
    "report files, byte for byte. Different hardware, library versions or thread counts can "
    "change floating-point results in the last digits and therefore the bytes. The report’s "
    "date is run.date, which a run sets to the day it is made (or SOURCE_DATE_EPOCH’s) and "
    "records in config.toml, so rendering the report again never reads the clock."
)
TIMINGS_NOTE = (
    "Training times are recorded in manifest.json (timings_s) but deliberately left out "
    "of this report: wall-clock times differ between otherwise identical runs."
)


# --------------------------------------------------------------------------- context types


@dataclass(frozen=True)
class Figure:
    """One PNG figure, ready to embed."""

    name: str
    path: str  # relative to the run directory
    src: str  # data:image/png;base64,…
    alt: str
    caption: str


@dataclass(frozen=True)
class ModelView:
    """Everything the report shows about one model."""

    name: str
    anchor: str
    description: str
    metrics: ModelMetrics
    figures: Mapping[str, Figure]  # by kind: every per-model kind of figures.FIGURES
    pair_figures: tuple[Figure, ...]  # one per confused-pair gallery, in metrics order
    warning: str | None  # set when training diverged
    # The deeper evaluation: classes worst first, and the attribution figures (none when off).
    interval_rows: tuple[ClassScores, ...] = ()  # lowest F1 first
    ranking_rows: tuple[ClassRanking, ...] = ()  # lowest AUC first
    attribution_figures: tuple[Figure, ...] = ()

    @property
    def diverged(self) -> bool:
        return self.warning is not None


@dataclass(frozen=True)
class ReportDate:
    """The date a report shows, fixed by the inputs and never by the clock."""

    day: str  # YYYY-MM-DD
    timestamp: str  # W3C date-time for the PDF metadata
    epoch: int  # seconds since 1970, for SOURCE_DATE_EPOCH

    @classmethod
    def from_epoch(cls, epoch: int) -> ReportDate:
        moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        return cls(moment.date().isoformat(), moment.strftime("%Y-%m-%dT%H:%M:%SZ"), epoch)


# --------------------------------------------------------------------------- reading a run


def read_config(root: Path, manifest: Mapping[str, Any]) -> tuple[Config, str]:
    """Return the run's resolved config, validated, and its TOML text."""
    rel = rundir.RunPaths(Path()).config.as_posix()
    data = rundir.read_artifact(root, rel, manifest)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RenderError(f"{root / rel}: not UTF-8 text: {e}") from e
    try:
        return validate(parse_toml(text, source=rel), source=rel), text
    except ReportgenError as e:
        raise RenderError(f"{root}: {e}") from e


def embed_png(name: str, rel: str, data: bytes, *, alt: str, caption: str) -> Figure:
    """Return PNG bytes as a :class:`Figure` whose ``src`` is a ``data:`` URI."""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return Figure(name, rel, src, alt, caption)


def read_figure(
    root: Path, name: str, metrics: Metrics, manifest: Mapping[str, Any], *, alt: str, caption: str
) -> Figure:
    """Return figure ``name`` of the run as an embeddable PNG; refuse a missing or foreign file."""
    rel = metrics.figures.get(name)
    if rel is None:  # a run's own figures; those the models name are checked by Metrics
        where = rundir.RunPaths(root).metrics
        raise RunDirError(f"{where}: figures: no {name!r} figure")
    data = rundir.read_artifact(root, rel, manifest, what="figure ")
    if not data.startswith(PNG_SIGNATURE):
        raise RenderError(f"{root / rel}: not a PNG image")
    return embed_png(name, rel, data, alt=alt, caption=caption)


def report_date(config: Config, environ: Mapping[str, str]) -> ReportDate:
    """Return the date to show: ``run.date``, else ``SOURCE_DATE_EPOCH``, else 1970-01-01."""
    if config.run.date is not None:
        day = dt.date.fromisoformat(config.run.date)
        epoch = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        return ReportDate.from_epoch(epoch)
    try:
        from_environment = source_date_epoch(environ)
    except ConfigError as e:
        raise RenderError(str(e)) from e
    return ReportDate.from_epoch(from_environment or 0)  # runs made before dates were set


# --------------------------------------------------------------------------- sentences


def _join(items: Sequence[str]) -> str:
    """Return ``a``, ``a and b`` or ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def accuracy_sentence(models: Mapping[str, ModelMetrics], test_size: int) -> str:
    """Return the sentence giving every model's test accuracy with its confidence interval."""
    parts = [
        f"{pct(m.test_accuracy)} for the {name} model ({level(m.accuracy_ci.level)} CI "
        f"{pct(m.accuracy_ci.low)}–{pct(m.accuracy_ci.high)})"
        for name, m in models.items()
    ]
    return f"Test accuracy on the {num(test_size)} test images: {_join(parts)}."


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


def class_phrase(classes: Sequence[str], label: int) -> str:
    """Return how a sentence names a class: "digit 4" on MNIST-like names, else its name."""
    name = classes[label]
    return f"digit {name}" if classes == DIGITS else f"“{name}”"


DIGITS = [str(digit) for digit in range(10)]


def errors_sentence(name: str, model: ModelMetrics, classes: Sequence[str]) -> str:
    """Return the worst classes and most confused pairs of one model as a sentence."""
    rates = {row.label: row.error_rate for row in model.class_errors}
    worst = [
        f"{class_phrase(classes, label)} ({pct(rates[label], 1)} wrong)"
        for label in model.worst_classes
    ]
    pairs = [
        f"{classes[p.true]} → {classes[p.pred]} ({count(p.count, 'image')})"
        for p in model.confused_pairs
    ]
    if not worst:
        return f"The {name} model misclassifies none of the test images."
    sentence = f"The {name} model errs most on {_join(worst)}"
    if pairs:
        sentence += f"; its most confused pairs (true → predicted) are {_join(pairs)}"
    return sentence + "."


def divergence_sentence(name: str, divergence: Divergence) -> str:
    """Return the warning that a model's training diverged."""
    return (
        f"Training of the {name} model diverged in epoch {divergence.epoch} "
        f"(step {num(divergence.step)}; last finite loss "
        f"{num(divergence.last_finite_loss)}); its results are not meaningful. "
        "Lower train.lr and run again."
    )


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
    paragraphs += [diagnosis_sentence(name, m) for name, m in models.items()]
    classes = metrics.dataset.classes
    paragraphs += [errors_sentence(name, m, classes) for name, m in models.items()]
    paragraphs += deeper_paragraphs(metrics)
    return paragraphs


# --------------------------------------------------------------------------- deeper evaluation


def deeper_paragraphs(metrics: Metrics) -> list[str]:
    """Return the summary's sentences on calibration and per-class differences."""
    paragraphs = [m.calibration.verdict for m in metrics.models.values()]
    if metrics.significance is not None:
        paragraphs.append(metrics.significance.class_recall.verdict)
    return paragraphs


def ranking_sentence(name: str, model: ModelMetrics, classes: Sequence[str]) -> str:
    """Return the averaged ROC and precision–recall areas and the class ranked worst."""
    ranked = model.one_vs_rest
    sentence = (
        f"One class against the rest, the {name} model reaches a macro-averaged ROC AUC of "
        f"{num(ranked.macro_auc)} (micro {num(ranked.micro_auc)}) and a macro-averaged average "
        f"precision of {num(ranked.macro_average_precision)} "
        f"(micro {num(ranked.micro_average_precision)})"
    )
    worst = worst_ranked(model)
    if worst and worst[0].auc is not None:
        sentence += f"; its probabilities rank class {classes[worst[0].label]} worst"
        sentence += f" (AUC {num(worst[0].auc)})"
    return sentence + "."


def worst_ranked(model: ModelMetrics) -> list[ClassRanking]:
    """Return the one-vs-rest rows, lowest AUC first (undefined last, then by class)."""
    return sorted(
        model.one_vs_rest.classes,
        key=lambda row: (row.auc is None, row.auc or 0.0, row.label),
    )


def worst_scored(model: ModelMetrics) -> list[ClassScores]:
    """Return the classification report's rows, lowest F1 first (then by class)."""
    return sorted(model.classification_report.classes, key=lambda row: (row.f1, row.label))


def recall_rows(significance: Significance) -> list[ClassRecallDifference]:
    """Return the per-class recall differences, clearest first: adjusted p, then size."""
    return sorted(
        significance.class_recall.classes,
        key=lambda row: (row.p_adjusted, -abs(row.estimate), row.label),
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
        sentence += "; then " + _join([f"the {region} ({n})" for region, n in rest[:2]])
    return sentence + "."


def _attribution_figures(
    root: Path, name: str, metrics: Metrics, manifest: Mapping[str, Any]
) -> tuple[Figure, ...]:
    shown = metrics.models[name].attributions
    if shown is None:
        return ()
    classes = metrics.dataset.classes
    result = []
    for gallery in shown.galleries:
        slots = {"model": name, "steps": shown.steps,
                 "evidence": evidence_sentence(gallery, classes)}  # fmt: skip
        if gallery.source == "pair" and gallery.true is not None and gallery.pred is not None:
            kind = FIGURES["pair_attributions"]
            slots |= {"true": classes[gallery.true], "pred": classes[gallery.pred]}
        else:
            kind = FIGURES["misclassified_attributions"]
        alt, caption = kind.describe(**slots)
        figure = read_figure(root, gallery.figure, metrics, manifest, alt=alt, caption=caption)
        result.append(figure)
    return tuple(result)


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


# --------------------------------------------------------------------------- the context


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _model_view(
    root: Path, name: str, metrics: Metrics, manifest: Mapping[str, Any], config: Config
) -> ModelView:
    model = metrics.models[name]
    spec = dict(config.model_items()).get(name)
    network = spec.kind if spec is not None else "mlp"
    slots = {"model": name, "index": model.sample_index}
    counts = {"misclassified": len(model.misclassified), "weights": config.report.n_weights}
    figures = {}
    for kind in kinds("model"):
        figure = model.figures.get(kind.kind)
        if figure is None:
            where = rundir.RunPaths(root).metrics
            raise RunDirError(f"{where}: models.{name}.figures: no {kind.kind!r} figure")
        if kind.kind in model.figure_notes:  # the figure cannot apply: its sentence instead
            alt = caption = model.figure_notes[kind.kind]
        else:
            layer = model.figure_layers.get(kind.kind)
            variant = "python" if layer is not None else network
            alt, caption = kind.for_network(variant).describe(
                **slots, n=counts.get(kind.kind, 0), layer=layer
            )
        figures[kind.kind] = read_figure(root, figure, metrics, manifest, alt=alt, caption=caption)
    pair_figures = []
    for gallery in model.pair_galleries:
        why = "configured pair" if gallery.source == "config" else "found automatically"
        classes = metrics.dataset.classes
        alt, caption = FIGURES["pair"].describe(
            **slots, true=classes[gallery.true], pred=classes[gallery.pred], why=why,
            shown=len(gallery.indices),
            images=count(gallery.count, "test image"),
        )  # fmt: skip
        pair_figures.append(
            read_figure(root, gallery.figure, metrics, manifest, alt=alt, caption=caption)
        )
    return ModelView(
        name=name,
        anchor=f"model-{_anchor(name)}",
        description=describe_model(spec, metrics.dataset) if spec is not None else "",
        metrics=model,
        figures=figures,
        pair_figures=tuple(pair_figures),
        warning=divergence_sentence(name, model.divergence) if model.divergence else None,
        interval_rows=tuple(worst_scored(model)),
        ranking_rows=tuple(worst_ranked(model)),
        attribution_figures=_attribution_figures(root, name, metrics, manifest),
    )


def dataset_title(dataset: DatasetInfo) -> str:
    """Return the data's short name: "MNIST", "Fashion-MNIST" or "Image-folder"."""
    return {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(dataset.kind, "Image-folder")


def default_title(dataset: DatasetInfo) -> str:
    """Return the report title of a config that sets no ``run.title``."""
    return f"{dataset_title(dataset)} classifier report"


def _artifact_rows(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"path": rel, "sha256": entry["sha256"], "size": entry["size"]}
        for rel, entry in sorted(manifest["artifacts"].items())
        if rel not in NOT_LISTED
    ]


def build_context(
    run_dir: Path | str,
    *,
    manifest: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return everything the templates display, read from a run directory.

    Parameters
    ----------
    run_dir
        A run directory holding ``config.toml``, ``metrics.json``, ``manifest.json``
        and ``figures/``.
    manifest
        The manifest to use instead of reading ``manifest.json``: the pipeline
        renders before it writes the manifest (whose hashes include the report).
    environ
        Where ``SOURCE_DATE_EPOCH`` is read from; default ``os.environ``.

    Raises
    ------
    RunDirError
        ``run_dir`` is not a run, lacks an artifact, an artifact's bytes differ
        from the manifest, or ``metrics.json`` does not fit its schema.
    RenderError
        ``config.toml`` is malformed, or a figure is not a PNG.
    """
    root = Path(run_dir)
    if manifest is None:
        manifest = rundir.read_manifest(root)
    elif not root.is_dir():
        raise RunDirError(f"{root}: no such run directory")
    else:
        rundir.validate_manifest(manifest)
    config, config_text = read_config(root, manifest)
    metrics = read_metrics(root, manifest)
    date = report_date(config, os.environ if environ is None else environ)
    models = [_model_view(root, name, metrics, manifest, config) for name in metrics.models]
    shared = []
    for kind in kinds("run"):
        alt, caption = kind.describe()
        name = figure_name(kind.kind)
        shared.append(read_figure(root, name, metrics, manifest, alt=alt, caption=caption))
    environment = manifest["environment"]
    return {
        "pdf": False,
        "fonts": [],
        "lang": "en",
        "generator": GENERATOR,
        "title": config.run.title or default_title(metrics.dataset),
        "kicker": f"{dataset_title(metrics.dataset)} classifier evaluation",
        "classes": metrics.dataset.classes,
        "author": config.run.author,
        "run_name": config.run.name,
        "seed": config.seed,
        "date": date.day,
        "timestamp": date.timestamp,
        "epoch": date.epoch,
        "dataset": metrics.dataset,
        "warnings": summary_warnings(metrics),
        "summary": summary_paragraphs(metrics),
        "significance": metrics.significance,
        "class_recall_rows": recall_rows(metrics.significance) if metrics.significance else [],
        "ranking_sentences": {
            name: ranking_sentence(name, m, metrics.dataset.classes)
            for name, m in metrics.models.items()
        },
        "ci_level": models[0].metrics.accuracy_ci.level,
        "training": {
            "optimizer": config.train.optimizer,
            "lr": config.train.lr,
            "epochs": config.train.epochs,
            "batch_size": config.data.batch_size,
        },
        "shared_figures": shared,
        "models": models,
        "timings_note": TIMINGS_NOTE,
        "reproducibility": {
            "promise": PROMISE,
            "command": REPRODUCE_COMMAND,
            "rerender_command": RERENDER_COMMAND,
            "config_toml": config_text,
            "seed": manifest["seed"],
            "threads": environment["threads"],
            "device": environment["hardware"].get("device", "cpu"),
            "git_commit": environment.get("git_commit"),
            "versions": sorted(environment["versions"].items()),
            "hardware": sorted(environment["hardware"].items()),
            "parallel_info": environment["parallel_info"].rstrip("\n"),
            "data_files": sorted(manifest["data_files"].items()),
            "artifacts": _artifact_rows(manifest),
        },
    }
