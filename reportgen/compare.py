"""Several runs side by side: the report of a hyper-parameter sweep.

:func:`compare_runs` reads two or more finished run directories — their
resolved ``config.toml``, ``metrics.json`` and ``history.csv`` — and writes
into one output directory:

``compare.html``
    One self-contained page: the settings that differ between the runs
    (all settings below them), every run's metrics in one table, and the
    validation curves of every run and model overlaid.
``compare.pdf``
    The same templates laid out by WeasyPrint, exactly as the run report is.
``compare_history.png``
    The overlaid validation curves.
``compare.csv``
    The metric table, one row per run and model.
``manifest.json``
    The SHA-256 of each file above and of each compared run's manifest.

The output directory is published like a run (built aside, swapped in
whole) and replaces only an empty directory or an earlier comparison.

Runs are labelled by their directory names (with parent directories added
where two names clash).  Nothing here reads the clock: the date shown is the
latest of the runs' report dates (``run.date``, else ``SOURCE_DATE_EPOCH``,
else 1970-01-01), so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reportgen import figures, formatting, report, rundir
from reportgen.config import Config, toml_value
from reportgen.context import GENERATOR, embed_png, read_config, report_date
from reportgen.errors import ConfigError, OutputError, RenderError
from reportgen.metrics import Metrics, Significance, read_metrics

ENTRY_TEMPLATE = "compare.html.j2"
HTML_NAME, PDF_NAME, FIGURE_NAME, CSV_NAME = (
    "compare.html",
    "compare.pdf",
    "compare_history.png",
    "compare.csv",
)
HISTORY_COLUMNS = ("model", "epoch", "val_loss", "val_accuracy")
NBSP = "\u00a0"


# --------------------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class RunInput:
    """What the comparison needs from one run directory."""

    label: str
    config: Config
    metrics: Metrics
    history: pd.DataFrame  # history.csv as written: one row per model and epoch
    manifest_sha256: str = ""  # of the run's manifest.json: which run exactly was compared


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Return a label per run: its directory name, or the fewest trailing parts that are unique.

    ``a/x``, ``b/y`` give ``x``, ``y``; ``a/x``, ``b/x``, ``c/y`` give ``a/x``, ``b/x``, ``c/y``.
    """
    parts = [Path(os.path.abspath(path)).parts[1:] for path in run_dirs]
    deepest = max((len(p) for p in parts), default=1)
    for depth in range(1, deepest + 1):
        labels = ["/".join(p[-depth:]) or "/" for p in parts]
        if len(set(labels)) == len(labels):
            break
    return labels


def _read_history(root: Path, manifest: Mapping[str, Any]) -> pd.DataFrame:
    path = rundir.RunPaths(root).history
    data = rundir.read_artifact(root, path.name, manifest)
    try:
        history = pd.read_csv(io.BytesIO(data))
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise RenderError(f"{path}: unreadable CSV: {e}") from e
    missing = [column for column in HISTORY_COLUMNS if column not in history.columns]
    if missing:
        raise RenderError(f"{path}: lacks column(s) {', '.join(missing)}")
    return history


def read_runs(run_dirs: Sequence[Path | str]) -> list[RunInput]:
    """Return the inputs of every run, refusing fewer than two runs or a directory that is not one.

    Raises
    ------
    ConfigError
        Fewer than two runs, or the same run given twice.
    RunDirError
        A directory is not a complete run, a file differs from its manifest, or
        a ``metrics.json`` does not fit its schema.
    RenderError
        A run's ``config.toml`` or ``history.csv`` is malformed.
    """
    roots = [Path(path) for path in run_dirs]
    if len(roots) < 2:
        raise ConfigError(f"compare needs at least two run directories; got {len(roots)}")
    seen: dict[Path, Path] = {}
    for root in roots:
        if (key := root.resolve()) in seen:
            raise ConfigError(f"run {root} is given twice (as {seen[key]} too)")
        seen[key] = root
    runs = []
    for root, label in zip(roots, run_labels(roots), strict=True):
        manifest = rundir.read_intact(root, action="compare")
        config, _ = read_config(root, manifest)
        metrics = read_metrics(root, manifest)
        manifest_sha256 = rundir.sha256_bytes(rundir.read_listed(root, rundir.MANIFEST))
        runs.append(
            RunInput(label, config, metrics, _read_history(root, manifest), manifest_sha256)
        )
    return runs


# --------------------------------------------------------------------------- settings


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a nested table as ``{"dotted.key": value}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def setting_text(value: Any) -> str:
    """Return a setting as TOML writes it (``"adam"``, ``0.001``, ``[256, 128]``), or ``unset``."""
    return "unset" if value is None else toml_value(value)


@dataclass(frozen=True)
class SettingRow:
    """One configuration key across the runs."""

    key: str
    values: tuple[str, ...]  # per run, as TOML writes it
    changed: tuple[bool, ...]  # per run: differs from the first run
    differs: bool  # not the same in every run


def setting_rows(configs: Sequence[Mapping[str, Any]]) -> list[SettingRow]:
    """Return a row per key of any of the flattened ``configs``, in the order they first appear."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    rows = []
    for key in keys:
        values = tuple(setting_text(c[key]) if key in c else formatting.MISSING for c in configs)
        changed = tuple(value != values[0] for value in values)
        rows.append(SettingRow(key, values, changed, any(changed)))
    return rows


# --------------------------------------------------------------------------- metrics


def _paired_text(significance: Significance | None) -> str:
    """Return the McNemar result in a few words: ``"regularized better, p < 0.001"``."""
    if significance is None:
        return formatting.MISSING
    first, second = significance.models
    # No-break spaces keep "p < 0.001" on one line in a narrow table cell.
    p_text = formatting.p_equals(significance.mcnemar.p_value).replace(" ", NBSP)
    if not significance.significant:
        return f"no significant difference, {p_text}"
    better = second if significance.difference.estimate > 0 else first
    return f"{better} better, {p_text}"


def metric_rows(runs: Sequence[RunInput]) -> list[dict[str, Any]]:
    """Return one flat row per run and model: accuracies, CI, gap and the run's paired test."""
    rows = []
    for run in runs:
        significance = run.metrics.significance
        mcnemar = significance.mcnemar if significance is not None else None
        for name, model in run.metrics.models.items():
            ci = model.accuracy_ci
            rows.append(
                {
                    "run": run.label,
                    "model": name,
                    "test_accuracy": model.test_accuracy,
                    "ci_level": ci.level,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "train_accuracy": model.train_accuracy,
                    "val_accuracy": model.val_accuracy,
                    "train_test_gap": model.train_test_gap,
                    "epochs": model.epochs,
                    "diverged": model.divergence is not None,
                    "mcnemar_b": mcnemar.b if mcnemar else None,
                    "mcnemar_c": mcnemar.c if mcnemar else None,
                    "mcnemar_p_value": mcnemar.p_value if mcnemar else None,
                    "significant": significance.significant if significance else None,
                    "verdict": significance.verdict if significance else None,
                }
            )
    return rows


def csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Return the metric rows as CSV with ``\\n`` line ends and round-trip floats."""
    return pd.DataFrame(list(rows)).to_csv(index=False, lineterminator="\n").encode("utf-8")


# --------------------------------------------------------------------------- the figure


def history_frame(runs: Sequence[RunInput]) -> pd.DataFrame:
    """Return every run's history in one long table with a leading ``run`` column."""
    frames = [run.history.assign(run=run.label) for run in runs]
    history = pd.concat(frames, ignore_index=True)
    return history[["run", *[c for c in history.columns if c != "run"]]]


# --------------------------------------------------------------------------- context


def _best_flags(rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Return, per row, whether it has the highest test accuracy of its model across runs."""
    best: dict[str, float] = {}
    for row in rows:
        if not row["diverged"]:
            best[row["model"]] = max(best.get(row["model"], -1.0), row["test_accuracy"])
    return [not row["diverged"] and row["test_accuracy"] == best[row["model"]] for row in rows]


def build_context(
    runs: Sequence[RunInput], figure_png: bytes, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return everything the comparison templates display."""
    environ = os.environ if environ is None else environ
    date = max((report_date(run.config, environ) for run in runs), key=lambda d: d.epoch)
    settings = setting_rows([flatten(run.config.model_dump(mode="json")) for run in runs])
    plain_rows = metric_rows(runs)
    rows = [
        {**row, "best": best} for row, best in zip(plain_rows, _best_flags(plain_rows), strict=True)
    ]
    groups = []
    for run in runs:
        significance = run.metrics.significance
        groups.append(
            {
                "label": run.label,
                "models": [row for row in rows if row["run"] == run.label],
                "paired": _paired_text(significance),
                "verdict": significance.verdict if significance else None,
            }
        )
    authors = sorted({run.config.run.author for run in runs})
    alt, caption = figures.FIGURES["compare_history"].describe()
    return {
        "pdf": False,
        "fonts": [],
        "lang": "en",
        "generator": GENERATOR,
        "title": f"Comparison of {len(runs)} runs",
        "author": ", ".join(authors),
        "date": date.day,
        "timestamp": date.timestamp,
        "epoch": date.epoch,
        "labels": [run.label for run in runs],
        "differences": [row for row in settings if row.differs],
        "settings": settings,
        "metric_groups": groups,
        "ci_level": rows[0]["ci_level"],
        "history_figure": embed_png(
            "compare_history", FIGURE_NAME, figure_png, alt=alt, caption=caption
        ),
    }


# --------------------------------------------------------------------------- rendering


def render_html(context: Mapping[str, Any], *, templates_dir: Path | str | None = None) -> str:
    """Return the comparison as one self-contained HTML document; writes nothing."""
    return report.render_html(context, templates_dir=templates_dir, entry=ENTRY_TEMPLATE)


def render_pdf(
    context: Mapping[str, Any], out_dir: Path | str, *, templates_dir: Path | str | None = None
) -> bytes:
    """Return the comparison as PDF bytes, through the run report's confined URL fetcher."""
    return report.render_pdf(context, out_dir, templates_dir=templates_dir, entry=ENTRY_TEMPLATE)


def compare_runs(
    run_dirs: Sequence[Path | str],
    out_dir: Path | str,
    *,
    pdf: bool = True,
    templates_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the comparison of ``run_dirs`` into ``out_dir``; return the paths written.

    Parameters
    ----------
    run_dirs
        Two or more run directories, in the order to show them.
    out_dir
        Where ``compare.html``, ``compare.pdf``, ``compare_history.png`` and
        ``compare.csv`` go (created if missing).
    pdf
        Also write ``compare.pdf``.
    templates_dir
        A directory of templates searched before the packaged ones.
    environ
        Where ``SOURCE_DATE_EPOCH`` is read from; default ``os.environ``.

    Everything is rendered in memory first, so a failure writes nothing;
    each file is then written atomically.

    Raises
    ------
    ConfigError
        Fewer than two runs, or one run given twice.
    RunDirError
        An input is not a complete run, its files differ from its manifest, or
        its ``metrics.json`` does not fit its schema.
    RenderError
        An input's ``config.toml`` or ``history.csv`` is malformed, or a
        template or the PDF layout fails.
    """
    out = Path(out_dir)
    rundir.check_target(out, kind=rundir.COMPARE_KIND)
    runs = read_runs(run_dirs)
    history = history_frame(runs)
    figure_png = figures.render_png(figures.compare_history_figure(history))
    context = build_context(runs, figure_png, environ=environ)
    outputs = {
        HTML_NAME: render_html(context, templates_dir=templates_dir).encode("utf-8"),
        FIGURE_NAME: figure_png,
        CSV_NAME: csv_bytes(metric_rows(runs)),
    }
    if pdf:
        outputs[PDF_NAME] = render_pdf(context, out, templates_dir=templates_dir)
    try:
        staging = rundir.open_staging(out, resume=False, kind=rundir.COMPARE_KIND)
        for name, data in outputs.items():
            rundir.write_atomic(staging / name, data)
        manifest = {
            "schema": 1,
            "kind": rundir.COMPARE_KIND,
            "inputs": {run.label: run.manifest_sha256 for run in runs},
            "artifacts": rundir.artifact_hashes(staging),
        }
        rundir.write_json(staging / rundir.MANIFEST, manifest)
        rundir.publish(staging, out, kind=rundir.COMPARE_KIND)
    except OSError as e:
        raise OutputError(f"cannot write the comparison into {out}: {e}") from e
    return [out / name for name in outputs]


__all__ = [
    "RunInput",
    "SettingRow",
    "build_context",
    "compare_runs",
    "flatten",
    "read_runs",
    "render_html",
    "render_pdf",
    "run_labels",
    "setting_rows",
]
