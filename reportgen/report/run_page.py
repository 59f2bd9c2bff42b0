"""A finished run -> the typed context its report displays.

:func:`build_context` reads a run directory (``config.toml``, ``metrics.json``,
``manifest.json``, ``figures/*.png``), checking each file against the
manifest, and returns what the templates display (:class:`RunPage`): the
run's metrics, its figures as ``data:`` URIs with the alt text and captions
of the figure catalogue, and the sentences written from the metrics.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from reportgen.artifacts import layout
from reportgen.artifacts.catalogue import FIGURES, MANY_CLASSES, figure_name, kinds, run_kinds
from reportgen.artifacts.manifest import RunManifest, read_artifact, read_manifest
from reportgen.artifacts.metrics import (
    DatasetInfo,
    Metrics,
    read_metrics,
)
from reportgen.artifacts.model_metrics import (
    ClassError,
    ClassRanking,
    ClassScores,
    ModelMetrics,
)
from reportgen.artifacts.runconfig import read_config
from reportgen.artifacts.significance import (
    ClassRecallDifference,
    Significance,
)
from reportgen.config.schema import Config
from reportgen.core.errors import RenderError, RunDirError
from reportgen.core.fontfile import FONT_KEY
from reportgen.core.text import count
from reportgen.data.sources import source_for
from reportgen.evaluate import attribution
from reportgen.evaluate.confusion import most_confused_classes
from reportgen.report import class_tables
from reportgen.report.class_tables import ClassTable, TableOptions
from reportgen.report.data_checks import (
    ClassBalanceView,
    DuplicatesView,
    class_balance_view,
    duplicates_view,
)
from reportgen.report.label_section import LabelIssuesView, gallery_text, label_issues_view
from reportgen.report.page import PNG_SIGNATURE, Figure, Page, embed_png, report_date
from reportgen.report.robustness_page import RobustnessView, robustness_view
from reportgen.report.sentences import (
    attribution_scope_sentence,
    describe_model,
    divergence_sentence,
    evidence_sentence,
    not_measured_sentence,
    ranking_sentence,
    summary_paragraphs,
    summary_warnings,
)

REPRODUCE_COMMAND = "reportgen run --config config.toml"
RERENDER_COMMAND = "reportgen render RUN_DIR"
# The report cannot list its own hashes; the manifest is what lists the others.
NOT_LISTED = frozenset({"report.html", "report.pdf", layout.MANIFEST})

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


@dataclass(frozen=True)
class ConfusedPairRow:
    """One row of the most confused pairs table: the pair by name, its count and two rates."""

    true: str
    pred: str
    count: int
    of_true: float  # share of the true class's test images predicted as `pred`
    of_errors: float  # share of the model's misclassified test images


def confused_pair_rows(model: ModelMetrics, classes: list[str]) -> tuple[ConfusedPairRow, ...]:
    """Return the rows of the most confused pairs table: with many classes only, else none.

    With few classes the confusion matrix writes every count in its cells.
    """
    if len(classes) <= MANY_CLASSES:
        return ()
    support = {row.label: row.support for row in model.class_errors}
    errors = sum(row.errors for row in model.class_errors)
    return tuple(
        ConfusedPairRow(true=classes[pair.true], pred=classes[pair.pred], count=pair.count,
                        of_true=pair.count / support[pair.true], of_errors=pair.count / errors)
        for pair in model.confused_pairs
    )  # fmt: skip


@dataclass(frozen=True)
class ModelView:
    """Everything the report shows about one model."""

    name: str
    anchor: str
    description: str
    metrics: ModelMetrics
    figures: Mapping[str, Figure]  # by kind: every per-model kind of the catalogue that applies
    pair_figures: tuple[Figure, ...]  # one per confused-pair gallery, in metrics order
    warning: str | None  # set when training diverged
    # The per-class tables (see report.class_tables): the classification report and the
    # errors in class order when they fit, else worst first; the others always worst first.
    class_rows: ClassTable[ClassScores]
    interval_rows: ClassTable[ClassScores]  # lowest F1 first
    error_rows: ClassTable[ClassError]  # highest error rate first when cut
    ranking_rows: ClassTable[ClassRanking]  # lowest AUC first
    # The attribution figures (none when off).
    attribution_figures: tuple[Figure, ...] = ()
    # What larger images cut from the attributions (steps, images), else None.
    attribution_scope: str | None = None
    confused_pair_rows: tuple[ConfusedPairRow, ...] = ()  # with many classes: largest first
    # Why calibration and ranking are left out (the logits are not finite), else None.
    not_measured: str | None = None

    @property
    def diverged(self) -> bool:
        return self.warning is not None


def read_figure(
    root: Path, name: str, metrics: Metrics, manifest: RunManifest, *, alt: str, caption: str
) -> Figure:
    """Return figure ``name`` of the run as an embeddable PNG; refuse a missing or foreign file."""
    rel = metrics.figures.get(name)
    if rel is None:  # a run's own figures; those the models name are checked by Metrics
        where = layout.RunPaths(root).metrics
        raise RunDirError(f"{where}: figures: no {name!r} figure")
    data = read_artifact(root, rel, manifest, what="figure ")
    if not data.startswith(PNG_SIGNATURE):
        raise RenderError(f"{root / rel}: not a PNG image")
    return embed_png(name, rel, data, alt=alt, caption=caption)


def _attribution_figures(
    root: Path, name: str, metrics: Metrics, manifest: RunManifest
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


def _attribution_scope(model: ModelMetrics, metrics: Metrics, config: Config) -> str | None:
    """Return what the image size cut from the model's attributions, if it cut anything."""
    shape = metrics.dataset.image_shape
    chosen = attribution.plan(config.report.attribution_steps, shape)
    if model.attributions is None or model.attributions.steps != chosen.steps:
        return None  # none, or made by a version that did not cut them
    return attribution_scope_sentence(
        chosen, configured_steps=config.report.attribution_steps, image_shape=shape
    )


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _full_table(manifest: RunManifest) -> str:
    """Return the file a cut table points to: per_class.csv, metrics.json in older runs."""
    per_class = layout.RUN_FILES.per_class.as_posix()
    return per_class if per_class in manifest.artifacts else layout.RUN_FILES.metrics.as_posix()


def _model_view(
    root: Path, name: str, metrics: Metrics, manifest: RunManifest, config: Config
) -> ModelView:
    model = metrics.models[name]
    spec = dict(config.model_items()).get(name)
    network = spec.kind if spec is not None else "mlp"
    classes = metrics.dataset.classes
    reordered = len(classes) > MANY_CLASSES
    order = (
        " Classes are ordered so that those confused with each other sit together; the "
        "table below lists the largest confusions."
        if reordered
        else ""
    )
    limit, total = config.report.table_rows, len(classes)
    cut = (
        f": the {limit:,} of {total:,} classes of highest error rate, ranked as the per-class "
        f"errors table; every class in {_full_table(manifest)}"
        if total > limit
        else ""
    )
    slots = {"model": name, "index": model.sample_index, "order": order, "cut": cut}
    counts = {
        "misclassified": len(model.misclassified),
        "weights": config.report.n_weights,
        "confused_classes": len(most_confused_classes(model.confusion_matrix)) if reordered else 0,
    }
    figures = {}
    for kind in kinds("model"):
        figure = model.figures.get(kind.kind)
        if figure is None and not kind.applies(len(classes)):
            continue
        if figure is None:
            where = layout.RunPaths(root).metrics
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
    names = metrics.dataset.classes
    table = TableOptions(limit=config.report.table_rows, full_table=_full_table(manifest))
    pair_figures = []
    for gallery in model.pair_galleries:
        why = "configured pair" if gallery.source == "config" else "found automatically"
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
        class_rows=class_tables.scores_table(model, names, keep_order=True, **table),
        interval_rows=class_tables.scores_table(model, names, keep_order=False, **table),
        error_rows=class_tables.errors_table(model, names, **table),
        ranking_rows=class_tables.ranking_table(model, names, **table),
        attribution_figures=_attribution_figures(root, name, metrics, manifest),
        attribution_scope=_attribution_scope(model, metrics, config),
        confused_pair_rows=confused_pair_rows(model, classes),
        not_measured=None if model.finite_logits else not_measured_sentence(name),
    )


def default_title(dataset: DatasetInfo) -> str:
    """Return the report title of a config that sets no ``run.title``: "MNIST classifier report"."""
    return f"{source_for(dataset.kind).title} classifier report"


def _artifact_rows(manifest: RunManifest) -> list[dict[str, Any]]:
    return [
        {"path": rel, "sha256": entry.sha256, "size": entry.size}
        for rel, entry in sorted(manifest.artifacts.items())
        if rel not in NOT_LISTED
    ]


def _font_row(manifest: RunManifest) -> str | None:
    """Return ``report.font`` as the report names it: path, size and SHA-256; None without one."""
    if (font := manifest.inputs.get(FONT_KEY)) is None:
        return None
    return f"{font.path} ({count(font.size, 'byte')}, SHA-256 {font.sha256})"


@dataclass(frozen=True)
class Reproducibility:
    """The report's last section: what reproducing the run takes, and what it was made with."""

    promise: str
    command: str
    rerender_command: str
    config_toml: str
    seed: int
    threads: int
    device: str
    git_commit: str | None
    versions: list[tuple[str, str]]
    hardware: list[tuple[str, str | None]]
    parallel_info: str
    data_files: list[tuple[str, str]]
    artifacts: list[dict[str, Any]]
    font: str | None = None  # report.font: its path, size and SHA-256


@dataclass(frozen=True, kw_only=True)
class RunPage(Page):
    """Everything the run report displays."""

    kicker: str
    classes: list[str]
    run_name: str
    seed: int
    dataset: DatasetInfo
    warnings: list[str]
    summary: list[str]
    significance: Significance | None
    class_recall_rows: ClassTable[ClassRecallDifference] | None  # None: one model only
    ranking_sentences: dict[str, str]
    ci_level: float
    top_k: int | None  # the k of the models' top-k accuracy; None: not measured
    training: dict[str, Any]
    shared_figures: list[Figure]
    models: list[ModelView]
    timings_note: str
    reproducibility: Reproducibility
    label_issues: LabelIssuesView | None = None  # None: a page made without the section
    robustness: RobustnessView | None = None  # None: report.robustness.enabled = false
    duplicates: DuplicatesView | None = None  # None: not looked for (report.duplicates off)
    class_balance: ClassBalanceView | None = None  # None: a run written before it existed


def _top_k(metrics: Metrics) -> int | None:
    """Return the k of the run's top-k accuracy, None when no model has one."""
    found = [m.top_k_accuracy.k for m in metrics.models.values() if m.top_k_accuracy is not None]
    return found[0] if found else None


def build_context(
    run_dir: Path | str,
    *,
    manifest: RunManifest | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunPage:
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
        from the manifest, ``metrics.json`` does not fit its schema, or the run was
        written without its report (``report.render = false``).
    RenderError
        ``config.toml`` is malformed, or a figure is not a PNG.
    """
    root = Path(run_dir)
    if manifest is None:
        manifest = read_manifest(root, RunManifest)
    elif not root.is_dir():
        raise RunDirError(f"{root}: no such run directory")
    config, config_text = read_config(root, manifest)
    if not config.report.render:
        raise RunDirError(
            f"{root}: the run was written without its report (report.render = false) and has "
            "no figures to render; run it again with --set report.render=true for one"
        )
    metrics = read_metrics(root, manifest)
    date = report_date(config, os.environ if environ is None else environ)
    models = [_model_view(root, name, metrics, manifest, config) for name in metrics.models]
    shared = []
    for kind in run_kinds(len(metrics.models)):
        alt, caption = kind.describe()
        name = figure_name(kind.kind)
        shared.append(read_figure(root, name, metrics, manifest, alt=alt, caption=caption))
    label_figure = None
    if metrics.label_issues is not None and metrics.label_issues.figure is not None:
        alt, caption = gallery_text(metrics.label_issues)
        label_figure = read_figure(root, metrics.label_issues.figure, metrics, manifest,
                                   alt=alt, caption=caption)  # fmt: skip

    def read(name: str, alt: str, caption: str) -> Figure:
        return read_figure(root, name, metrics, manifest, alt=alt, caption=caption)

    environment = manifest.environment
    source = source_for(metrics.dataset.kind)
    class_recall = None
    if metrics.significance is not None:
        class_recall = class_tables.recall_table(
            metrics.significance, metrics.dataset.classes, limit=config.report.table_rows,
            full_table=_full_table(manifest),
        )  # fmt: skip
    return RunPage(
        title=config.run.title or default_title(metrics.dataset),
        author=config.run.author,
        **Page.dated(date),
        kicker=f"{source.title} classifier evaluation",
        classes=metrics.dataset.classes,
        run_name=config.run.name,
        seed=config.seed,
        dataset=metrics.dataset,
        warnings=summary_warnings(metrics),
        summary=summary_paragraphs(metrics),
        significance=metrics.significance,
        class_recall_rows=class_recall,
        ranking_sentences={
            name: ranking_sentence(name, m, metrics.dataset.classes)
            for name, m in metrics.models.items()
        },
        ci_level=models[0].metrics.accuracy_ci.level,
        top_k=_top_k(metrics),
        training={
            "optimizer": config.train.optimizer,
            "lr": config.train.lr,
            "epochs": config.train.epochs,
            "batch_size": config.data.batch_size,
        },
        shared_figures=shared,
        models=models,
        timings_note=TIMINGS_NOTE,
        label_issues=label_issues_view(metrics, label_figure),
        reproducibility=Reproducibility(
            promise=PROMISE,
            command=REPRODUCE_COMMAND,
            rerender_command=RERENDER_COMMAND,
            config_toml=config_text,
            seed=config.seed,
            threads=environment.threads,
            device=environment.hardware.get("device") or "cpu",
            git_commit=environment.git_commit,
            versions=sorted(environment.versions.items()),
            hardware=sorted(environment.hardware.items()),
            parallel_info=environment.parallel_info.rstrip("\n"),
            data_files=sorted(manifest.data_files.items()),
            artifacts=_artifact_rows(manifest),
            font=_font_row(manifest),
        ),
        robustness=robustness_view(
            metrics.robustness,
            partial(_read_figure, root, metrics, manifest),
            image_shape=metrics.dataset.image_shape,
        ),
        duplicates=duplicates_view(metrics, read),
        class_balance=class_balance_view(metrics, read),
    )


def _read_figure(
    root: Path, metrics: Metrics, manifest: RunManifest, name: str, alt: str, caption: str
) -> Figure:
    return read_figure(root, name, metrics, manifest, alt=alt, caption=caption)
