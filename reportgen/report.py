"""Context -> HTML string -> PDF bytes: the report stage.

:func:`build_context` reads a finished run directory (``config.toml``,
``metrics.json``, ``manifest.json``, ``figures/*.png``) into plain data and
writes the summary sentences; :func:`render_html` fills the Jinja2 templates
(a user directory searched first, then the packaged ones) and returns one
self-contained HTML string; :func:`render_pdf` lays the same templates out
with WeasyPrint behind a URL fetcher that serves only ``data:`` URIs, files
inside the run directory and the DejaVu fonts; :func:`render_run` writes both
files atomically.  Nothing here reads the clock: the report date is
``run.date`` (which every run since dates were recorded has), else
``SOURCE_DATE_EPOCH``, else 1970-01-01, so two renders of the same run are
byte-identical.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import importlib.resources
import json
import logging
import math
import mimetypes
import os
import re
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from reportgen import __version__, rundir
from reportgen.config import (
    INPUT_SIZE,
    NUM_CLASSES,
    Config,
    ModelSection,
    parse_toml,
    source_date_epoch,
    validate,
)
from reportgen.errors import (
    ConfigError,
    RenderError,
    ReportgenError,
    RunDirError,
    TemplateError,
)
from reportgen.figures import FIGURES, figure_name, kinds
from reportgen.fonts import characters, dejavu_fonts, subset_faces
from reportgen.formatting import count, level, num, pct, pp, pvalue, sci, yesno

LOG = logging.getLogger(__name__)
LOG.addHandler(logging.NullHandler())  # refused fetches are logged; the CLI decides what to show

PACKAGED_TEMPLATES = "reportgen.templates"
ENTRY_TEMPLATE = "report.html.j2"
GENERATOR = f"reportgen {__version__}"
REPRODUCE_COMMAND = "reportgen run --config config.toml"
RERENDER_COMMAND = "reportgen render RUN_DIR"
# The report cannot list its own hashes; the manifest is what lists the others.
NOT_LISTED = frozenset({"report.html", "report.pdf", rundir.MANIFEST})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TITLES = {
    "contents": "Contents",
    "summary": "Executive summary",
    "comparison": "Model comparison",
    "curves": "Training curves and diagnosis",
    "reproducibility": "Reproducibility",
    "classification": "Classification report",
    "confusion": "Confusion matrix",
    "errors": "Per-class errors",
    "misclassified": "Misclassified test images",
    "pairs": "Confused pairs",
    "weights": "Learned weights",
    "activations": "Activations",
}
MODEL_SUBSECTIONS = (
    "classification", "confusion", "errors", "misclassified", "pairs", "weights", "activations",
)  # fmt: skip
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


FILTERS: dict[str, Callable[..., str]] = {
    "pct": pct, "pp": pp, "level": level, "num": num, "pvalue": pvalue, "sci": sci,
    "yesno": yesno,
}  # fmt: skip


# --------------------------------------------------------------------------- context types


@dataclass(frozen=True)
class Figure:
    """One PNG figure of the run, ready to embed."""

    name: str
    path: str  # relative to the run directory
    src: str  # data:image/png;base64,…
    alt: str
    caption: str


@dataclass(frozen=True)
class TocEntry:
    """A heading the table of contents links to."""

    anchor: str
    title: str
    children: tuple[TocEntry, ...] = ()


@dataclass(frozen=True)
class ModelView:
    """Everything the report shows about one model."""

    name: str
    title: str
    anchor: str
    description: str
    metrics: Mapping[str, Any]  # models.<name> of metrics.json, as written
    figures: Mapping[str, Figure]  # by kind: every per-model kind of figures.FIGURES
    pair_figures: tuple[Figure, ...]  # one per confused-pair gallery, in metrics order
    warning: str | None  # set when training diverged

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


def _read_input(root: Path, name: str, manifest: Mapping[str, Any]) -> str:
    """Return a text artifact of the run, refusing one missing or differing from the manifest."""
    data = rundir.read_artifact(root, name, manifest)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RenderError(f"{root / name}: not UTF-8 text: {e}") from e


def _require(document: Mapping[str, Any], dotted: str, source: str) -> Any:
    """Return ``document[a][b]…`` for ``"a.b…"``; a missing key is a RenderError naming it."""
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise RenderError(f"{source}: missing key {dotted!r}")
        node = node[part]
    return node


def read_config(root: Path, manifest: Mapping[str, Any]) -> tuple[Config, str]:
    """Return the run's resolved config, validated, and its TOML text."""
    text = _read_input(root, "config.toml", manifest)
    try:
        return validate(parse_toml(text, source="config.toml"), source="config.toml"), text
    except ReportgenError as e:
        raise RenderError(f"{root}: {e}") from e


def read_metrics(root: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run's ``metrics.json``; missing or malformed JSON is refused."""
    text = _read_input(root, "metrics.json", manifest)
    try:
        metrics = json.loads(text)
    except ValueError as e:
        raise RenderError(f"{root / 'metrics.json'}: invalid JSON: {e}") from e
    if not isinstance(metrics, dict) or metrics.get("schema") != 1:
        raise RenderError(f"{root / 'metrics.json'}: not a schema 1 metrics document")
    return metrics


def read_figure(
    root: Path, name: str, metrics: Mapping[str, Any], manifest: Mapping[str, Any],
    *, alt: str, caption: str,
) -> Figure:  # fmt: skip
    """Return figure ``name`` as an embeddable PNG, refusing a missing or foreign file."""
    rel = _require(metrics, "figures", "metrics.json").get(name)
    if not isinstance(rel, str):
        raise RenderError(f"metrics.json: figure {name!r} is not listed under 'figures'")
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise RenderError(f"metrics.json: figure {name!r} points outside the run ({rel})")
    data = rundir.read_artifact(root, rel, manifest, what="figure ")
    if not data.startswith(PNG_SIGNATURE):
        raise RenderError(f"{root / rel}: not a PNG image")
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return Figure(name, rel, src, alt, caption)


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


def _ci_text(ci: Mapping[str, Any]) -> str:
    return f"{level(ci['level'])} CI {pct(ci['low'])}–{pct(ci['high'])}"


def accuracy_sentence(models: Mapping[str, Mapping[str, Any]], test_size: int) -> str:
    """Return the sentence giving every model's test accuracy with its confidence interval."""
    parts = [
        f"{pct(m['test_accuracy'])} for the {name} model ({_ci_text(m['accuracy_ci'])})"
        for name, m in models.items()
    ]
    return f"Test accuracy on the {num(test_size)} test images: {_join(parts)}."


def significance_sentence(significance: Mapping[str, Any]) -> str:
    """Return the verdict of the paired test with the counts it rests on."""
    first, second = significance["models"]
    mcnemar = significance["mcnemar"]
    return (
        f"{significance['verdict']} Of the test images, {num(mcnemar['b'])} are classified "
        f"correctly only by the {first} model and {num(mcnemar['c'])} only by the {second} model."
    )


def diagnosis_sentence(name: str, diagnosis: Mapping[str, Any]) -> str:
    """Return the curve diagnosis of one model as a sentence."""
    return f"Curve diagnosis for the {name} model — {diagnosis['summary']}"


def errors_sentence(name: str, model: Mapping[str, Any]) -> str:
    """Return the worst classes and most confused pairs of one model as a sentence."""
    rates = {row["label"]: row["error_rate"] for row in model["class_errors"]}
    worst = [f"digit {label} ({pct(rates[label], 1)} wrong)" for label in model["worst_classes"]]
    pairs = [
        f"{p['true']} → {p['pred']} ({count(p['count'], 'image')})" for p in model["confused_pairs"]
    ]
    if not worst:
        return f"The {name} model misclassifies none of the test images."
    sentence = f"The {name} model errs most on {_join(worst)}"
    if pairs:
        sentence += f"; its most confused pairs (true → predicted) are {_join(pairs)}"
    return sentence + "."


def divergence_sentence(name: str, divergence: Mapping[str, Any]) -> str:
    """Return the warning that a model's training diverged."""
    return (
        f"Training of the {name} model diverged in epoch {divergence['epoch']} "
        f"(step {num(divergence['step'])}; last finite loss "
        f"{num(divergence['last_finite_loss'])}); its results are not meaningful. "
        "Lower train.lr and run again."
    )


def summary_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Return one warning per model whose training diverged."""
    return [
        divergence_sentence(name, m["divergence"])
        for name, m in metrics["models"].items()
        if m["divergence"]
    ]


def summary_paragraphs(metrics: Mapping[str, Any]) -> list[str]:
    """Return the executive summary: plain sentences generated from the metrics."""
    models = metrics["models"]
    paragraphs = [accuracy_sentence(models, metrics["dataset"]["test_size"])]
    if metrics.get("significance") is not None:
        paragraphs.append(significance_sentence(metrics["significance"]))
    paragraphs += [diagnosis_sentence(name, m["diagnosis"]) for name, m in models.items()]
    paragraphs += [errors_sentence(name, m) for name, m in models.items()]
    return paragraphs


def describe_model(spec: ModelSection) -> str:
    """Return a one-line description of a model's architecture and regularizers."""
    if spec.kind == "cnn":
        head = "→".join(str(w) for w in (*spec.hidden, NUM_CLASSES))
        parts = [f"CNN: two 3×3 conv blocks (16, 32 channels) with max-pooling, head {head}"]
    else:
        parts = ["MLP " + "→".join(str(w) for w in (INPUT_SIZE, *spec.hidden, NUM_CLASSES))]
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

REQUIRED_MODEL_KEYS = (
    "parameters", "epochs", "train_accuracy", "val_accuracy", "test_accuracy", "train_test_gap",
    "test_loss", "classification_report.classes", "classification_report.accuracy",
    "classification_report.macro_avg", "classification_report.weighted_avg",
    "classification_report.micro_avg", "confusion_matrix", "class_errors", "worst_classes",
    "confused_pairs", "divergence", "accuracy_ci.level", "accuracy_ci.low", "accuracy_ci.high",
    "diagnosis.labels", "diagnosis.summary", "diagnosis.evidence", "sample_index",
    "misclassified", "pair_galleries", "figures",
)  # fmt: skip
REQUIRED_SIGNIFICANCE_KEYS = (
    "models", "mcnemar.b", "mcnemar.c", "mcnemar.p_value", "difference.estimate",
    "difference.low", "difference.high", "difference.level", "alpha", "significant", "verdict",
)  # fmt: skip


def _validate_metrics(metrics: Mapping[str, Any]) -> None:
    for key in ("run.name", "run.seed", "dataset.name", "dataset.train_size", "dataset.val_size",
                "dataset.test_size", "models", "comparison", "figures"):  # fmt: skip
        _require(metrics, key, "metrics.json")
    if not metrics["models"]:
        raise RenderError("metrics.json: 'models' is empty")
    for name, model in metrics["models"].items():
        for key in REQUIRED_MODEL_KEYS:
            _require(model, key, f"metrics.json: models.{name}")
    if len(metrics["models"]) >= 2:
        significance = _require(metrics, "significance", "metrics.json")
        for key in REQUIRED_SIGNIFICANCE_KEYS:
            _require(significance, key, "metrics.json: significance")


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _model_view(
    root: Path, name: str, model: Mapping[str, Any], metrics: Mapping[str, Any],
    manifest: Mapping[str, Any], config: Config,
) -> ModelView:  # fmt: skip
    spec = dict(config.model_items()).get(name)
    network = spec.kind if spec is not None else "mlp"
    slots = {"model": name, "index": model["sample_index"]}
    counts = {"misclassified": len(model["misclassified"]), "weights": config.report.n_weights}
    figures = {}
    for kind in kinds("model"):
        figure = model["figures"].get(kind.kind)
        if figure is None:
            raise RenderError(f"metrics.json: models.{name}.figures has no {kind.kind!r} figure")
        alt, caption = kind.for_network(network).describe(**slots, n=counts.get(kind.kind, 0))
        figures[kind.kind] = read_figure(root, figure, metrics, manifest, alt=alt, caption=caption)
    pair_figures = []
    for gallery in model["pair_galleries"]:
        why = "configured pair" if gallery["source"] == "config" else "found automatically"
        alt, caption = FIGURES["pair"].describe(
            **slots, true=gallery["true"], pred=gallery["pred"], why=why,
            shown=len(gallery["indices"]), images=count(gallery["count"], "test image"),
        )  # fmt: skip
        pair_figures.append(
            read_figure(root, gallery["figure"], metrics, manifest, alt=alt, caption=caption)
        )
    return ModelView(
        name=name,
        title=f"Model: {name}",
        anchor=f"model-{_anchor(name)}",
        description=describe_model(spec) if spec is not None else "",
        metrics=model,
        figures=figures,
        pair_figures=tuple(pair_figures),
        warning=divergence_sentence(name, model["divergence"]) if model["divergence"] else None,
    )


def _toc(models: Sequence[ModelView]) -> tuple[TocEntry, ...]:
    entries = [TocEntry(key, TITLES[key]) for key in ("summary", "comparison", "curves")]
    for model in models:
        children = tuple(
            TocEntry(f"{model.anchor}-{key}", TITLES[key]) for key in MODEL_SUBSECTIONS
        )
        entries.append(TocEntry(model.anchor, model.title, children))
    entries.append(TocEntry("reproducibility", TITLES["reproducibility"]))
    return tuple(entries)


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
        ``run_dir`` is not a run, lacks an artifact, or an artifact's bytes
        differ from the manifest.
    RenderError
        An artifact is malformed (invalid TOML or JSON, a missing key, not a PNG).
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
    _validate_metrics(metrics)
    date = report_date(config, os.environ if environ is None else environ)
    try:
        return _assemble(root, manifest, config, config_text, metrics, date)
    except (KeyError, TypeError, ValueError) as e:
        # Every key was checked above: what is left is a value of the wrong type.
        raise RenderError(f"{root}: malformed metrics.json or manifest.json: {e!r}") from e


def _assemble(
    root: Path, manifest: Mapping[str, Any], config: Config, config_text: str,
    metrics: Mapping[str, Any], date: ReportDate,
) -> dict[str, Any]:  # fmt: skip
    """Return the template context from validated inputs."""
    models = [
        _model_view(root, name, model, metrics, manifest, config)
        for name, model in metrics["models"].items()
    ]
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
        "title": config.run.title,
        "author": config.run.author,
        "run_name": config.run.name,
        "seed": config.seed,
        "date": date.day,
        "timestamp": date.timestamp,
        "epoch": date.epoch,
        "titles": TITLES,
        "toc": _toc(models),
        "dataset": metrics["dataset"],
        "warnings": summary_warnings(metrics),
        "summary": summary_paragraphs(metrics),
        "significance": metrics.get("significance"),
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


# --------------------------------------------------------------------------- templates


def _packaged_source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Load a packaged template through importlib.resources (editable install or wheel)."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    resource = importlib.resources.files(PACKAGED_TEMPLATES).joinpath(name)
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8"), f"templates/{name}", lambda: True


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing arithmetic that would exhaust memory or time.

    ``9 ** 999999999`` or ``'x' * 10 ** 10`` would hang or fill memory before any
    output; a report never needs numbers or strings of that size.
    """

    intercepted_binops = frozenset({"**", "*"})
    MAX_RESULT = 1_000_000  # digits of a power, items of a repeated sequence

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and _is_int(left)
            and _is_int(right)
            and abs(left) > 1
            and right * math.log10(abs(left)) > self.MAX_RESULT
        ):
            raise SecurityError(f"{left} ** {right} is too large to compute")
        for sequence, times in ((left, right), (right, left)):
            if (
                operator == "*"
                and isinstance(sequence, str | bytes | list | tuple)
                and _is_int(times)
                and len(sequence) * times > self.MAX_RESULT
            ):
                raise SecurityError("a repeated sequence of over 1,000,000 items")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def environment(templates_dir: Path | str | None = None) -> jinja2.Environment:
    """Return the sandboxed Jinja2 environment: user templates first, then the packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        directory = Path(templates_dir)
        if not directory.is_dir():
            raise TemplateError(f"templates directory {directory} does not exist")
        loaders.append(jinja2.FileSystemLoader(directory))
    loaders.append(jinja2.FunctionLoader(_packaged_source))
    # Sandboxed: a template may display the context but not reach Python's
    # internals (attributes starting with "_", a function's globals, mutating
    # methods), so a template directory cannot run code.
    env = _Sandbox(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


def _template_location(error: BaseException) -> str:
    """Return ``"template X line N"`` for the innermost template frame of ``error``."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith((".j2", ".css", ".html")):
            return f"template {frame.filename} line {frame.lineno}"
    return "template"


def render_html(
    context: Mapping[str, Any],
    *,
    templates_dir: Path | str | None = None,
    entry: str = ENTRY_TEMPLATE,
) -> str:
    """Return the report as one self-contained HTML document; writes nothing.

    Raises
    ------
    RenderError
        A template is missing, has a syntax error or uses an undefined variable.
    """
    env = environment(templates_dir)
    try:
        return env.get_template(entry).render(context)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"template {e.filename or e.name} line {e.lineno}: {e.message}") from e
    except jinja2.TemplateNotFound as e:
        raise TemplateError(f"template {e.name!r} not found") from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"{_template_location(e)}: {e.message}") from e
    except (TypeError, ValueError) as e:  # a filter given a value it cannot format
        raise TemplateError(f"{_template_location(e)}: cannot display a value: {e}") from e
    except RecursionError as e:
        raise TemplateError(
            f"{_template_location(e)}: recursion too deep (a template that includes or "
            "extends itself, or a macro that calls itself without end)"
        ) from e


# --------------------------------------------------------------------------- PDF


class FetchRefused(ValueError):
    """The report's URL fetcher refused a resource."""


class RunFetcher(URLFetcher):
    """WeasyPrint URL fetcher confined to ``data:`` URIs, the run directory and the fonts.

    Everything else — other files, ``http(s)://``, ``../`` escapes, symlinks
    leading out of the run — raises :class:`FetchRefused` before any I/O.
    """

    def __init__(self, run_dir: Path, fonts: Sequence[Path]) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False, timeout=5)
        self.root = run_dir.resolve()
        self.fonts = frozenset(path.resolve() for path in fonts)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.partition(":")[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._allowed_path(url)
            if path is not None:
                media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    path.as_uri(), path.read_bytes(), {"Content-Type": media_type}
                )
        self.refused.append(url)
        LOG.warning("report: refused to fetch %s", url)
        raise FetchRefused(f"the report may only use data: URIs and files of its run: {url}")

    def _allowed_path(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(parts.path)).resolve()
        if path in self.fonts:
            return path
        if path.is_relative_to(self.root) and path.is_file():
            return path
        return None


@contextlib.contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    """Fix embedded font timestamps: fontTools reads SOURCE_DATE_EPOCH when subsetting."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        yield
        return
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)


def render_pdf(
    context: Mapping[str, Any],
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    entry: str = ENTRY_TEMPLATE,
) -> bytes:
    """Return the report as PDF bytes, laid out by WeasyPrint from the same templates.

    Resources resolve against ``run_dir``; the fetcher refuses anything but
    ``data:`` URIs, files inside ``run_dir`` and the DejaVu fonts.
    """
    root = Path(run_dir)
    faces = dejavu_fonts()
    # Two passes: the text decides the glyphs each font keeps (see reportgen.fonts).
    text = render_html({**context, "pdf": True, "fonts": []}, templates_dir=templates_dir,
                       entry=entry)  # fmt: skip
    fonts = subset_faces(faces, characters(text))
    html = render_html(
        {**context, "pdf": True, "fonts": fonts}, templates_dir=templates_dir, entry=entry
    )
    fetcher = RunFetcher(root, [face.path for face in faces])
    with _source_date_epoch(int(context["epoch"])):
        try:
            document = HTML(string=html, base_url=root.resolve().as_uri() + "/",
                            url_fetcher=fetcher)  # fmt: skip
            # The fonts are subset already: embed them as they are, whatever
            # subsetter this system's WeasyPrint would pick.
            return bytes(document.write_pdf(pdf_identifier=False, full_fonts=True))
        except ReportgenError:
            raise
        except Exception as e:  # any layout failure: one line
            raise RenderError(f"PDF rendering failed: {type(e).__name__}: {e}") from e


def render_run(
    run_dir: Path | str,
    *,
    templates_dir: Path | str | None = None,
    pdf: bool = True,
    manifest: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Render ``report.html`` (and ``report.pdf``) into ``run_dir``; return the paths written.

    Both documents are rendered in memory first, so a failure leaves the
    previous reports in place; each file is then written atomically.
    """
    root = Path(run_dir)
    context = build_context(root, manifest=manifest)
    paths = rundir.RunPaths(root)
    outputs = {paths.html: render_html(context, templates_dir=templates_dir).encode("utf-8")}
    if pdf:
        outputs[paths.pdf] = render_pdf(context, root, templates_dir=templates_dir)
    for path, data in outputs.items():
        rundir.write_atomic(path, data)
    return list(outputs)


def rerender_run(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> list[Path]:
    """Re-render a run's reports from its checked artifacts; return the paths written.

    Every file the manifest lists is checked first, and only the manifest's
    entries for the reports are updated: files it does not list are never
    read nor added, so a run from elsewhere stays data.
    """
    root = Path(run_dir)
    manifest = rundir.read_intact(root, action="render")
    pdf = rundir.RunPaths(Path()).pdf.as_posix() in manifest["artifacts"]
    written = render_run(root, templates_dir=templates_dir, pdf=pdf, manifest=manifest)
    artifacts = dict(manifest["artifacts"])
    for path in written:
        rel = path.relative_to(root).as_posix()
        artifacts[rel] = {"sha256": rundir.sha256_path(path), "size": path.stat().st_size}
    rundir.write_json(rundir.RunPaths(root).manifest, {**manifest, "artifacts": artifacts})
    return written


__all__ = [
    "FetchRefused",
    "RunFetcher",
    "build_context",
    "environment",
    "render_html",
    "render_pdf",
    "render_run",
    "rerender_run",
    "summary_paragraphs",
]
