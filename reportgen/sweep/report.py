"""The sweep report: every run of a sweep read back, summarised over seeds, rendered.

:func:`build_outputs` reads each finished run of the sweep (its
``metrics.json``, ``history.csv`` and ``predictions.csv``, each checked
against the run's manifest), computes the statistics over seeds with
:mod:`reportgen.evaluate.seeds`, draws the figures and returns the bytes of
``sweep.html``, ``sweep.pdf``, ``sweep.csv``, ``sweep.json`` and
``figures/*.png``.  Runs are read in the plan's order and nothing reads
the clock or a run's timings, so the bytes depend only on the runs'
artifacts: not on the executor, nor on the order the runs finished in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reportgen.artifacts.catalogue import FIGURES
from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import RunManifest, read_intact
from reportgen.artifacts.metrics import Metrics, read_metrics
from reportgen.artifacts.sweepdoc import (
    SCHEMA,
    SWEEP_METRICS,
    Comparison,
    ModelSummary,
    PointEntry,
    RunEntry,
    RunModel,
    SeedStats,
    SweepDocument,
)
from reportgen.artifacts.tables import csv_bytes, read_history, read_predictions
from reportgen.config.schema import GATE_METRICS
from reportgen.config.sweepspec import SweepSpec, value_text
from reportgen.core import text as text_mod
from reportgen.core.seeding import derive_seed
from reportgen.evaluate import seeds as seeds_mod
from reportgen.evaluate import statistics
from reportgen.evaluate.gate import METRIC_VALUES
from reportgen.figures import style
from reportgen.figures.sweep import (
    averaged_curves_figure,
    effect_figure,
    seed_dots_figure,
)
from reportgen.report.page import report_date
from reportgen.report.render import render_html, render_pdf
from reportgen.report.sweep_page import build_context
from reportgen.sweep.plan import POINT_CONFIG, REPORT_FILES, PlannedRun

HTML_NAME, PDF_NAME, CSV_NAME, JSON_NAME = REPORT_FILES
LEVEL = statistics.DEFAULT_LEVEL
ALPHA = statistics.DEFAULT_ALPHA
BOOTSTRAP_PURPOSE = "sweep-bootstrap"


@dataclass(frozen=True)
class RunData:
    """One planned run as the report sees it: its artifacts, or why it has none."""

    run: PlannedRun
    metrics: Metrics | None = None
    history: pd.DataFrame | None = None
    correct: Mapping[str, np.ndarray] | None = None  # model -> [N_test] bool
    error: str | None = None
    has_report: bool = False  # its manifest lists a report.html

    @property
    def ok(self) -> bool:
        return self.metrics is not None


@dataclass(frozen=True)
class Outputs:
    """The files of the sweep report, and the per-run table the gate reads."""

    files: dict[str, bytes]
    table: pd.DataFrame  # one row per run and model: point, seed, model, every gate metric


def read_run(out: Path, run: PlannedRun) -> RunData:
    """Return a finished run's metrics, history and per-image correctness, all checked."""
    root = out / run.key
    manifest = read_intact(root, RunManifest, action="report on")
    metrics = read_metrics(root, manifest)
    history = read_history(root, manifest)
    predictions = read_predictions(root, manifest)
    correct = {
        str(model): (rows["label"] == rows["prediction"]).to_numpy()
        for model, rows in predictions.groupby("model", sort=False)
    }
    has_report = RUN_FILES.html.as_posix() in manifest.artifacts
    return RunData(run, metrics, history, correct, has_report=has_report)


def read_runs(out: Path, planned: Sequence[PlannedRun], failed: Mapping[str, str]) -> list[RunData]:
    """Return every planned run, in plan order; a failed run carries its error."""
    return [
        RunData(run, error=failed[run.key]) if run.key in failed else read_run(out, run)
        for run in planned
    ]


def bootstrap_seed(spec: SweepSpec) -> int:
    """Return the seed of every bootstrap over seeds: fixed by the sweep's seeds."""
    return derive_seed(min(spec.seeds), BOOTSTRAP_PURPOSE)


def _metric(metrics: Metrics, model: str, name: str) -> float:
    value = METRIC_VALUES[name](metrics.models[model])
    return float("nan") if value is None else float(value)


def _seed_stats(runs: Sequence[RunData], model: str, metric: str, seed: int) -> SeedStats:
    values = [_metric(r.metrics, model, metric) for r in runs if r.metrics is not None]
    seeds = [r.run.seed for r in runs if r.metrics is not None]
    summary = seeds_mod.summarize(values, seed=seed, level=LEVEL)
    interval = summary.interval
    return SeedStats(
        seeds=seeds, values=[float(v) for v in values], mean=summary.mean, sd=summary.sd,
        low=interval.low if interval else None, high=interval.high if interval else None,
    )  # fmt: skip


def _comparison(
    scope: str,
    where: dict[str, str | None],
    names: tuple[str, str],
    pairs: Sequence[tuple[int, float, float, bool | None]],
    seed: int,
    subjects: tuple[str, str],
) -> Comparison:
    seeds = [p[0] for p in pairs]
    significant = [bool(p[3]) for p in pairs] if all(p[3] is not None for p in pairs) else None
    difference = seeds_mod.paired_difference(
        [p[1] for p in pairs], [p[2] for p in pairs], names=subjects,
        significant=significant, seed=seed, level=LEVEL,
    )  # fmt: skip
    interval = difference.interval
    return Comparison(
        scope=scope,  # type: ignore[arg-type]
        point=where.get("point"),
        model=where.get("model"),
        first=names[0],
        second=names[1],
        seeds=seeds,
        differences=list(difference.differences),
        mean=difference.mean,
        sd=difference.sd,
        low=interval.low if interval else None,
        high=interval.high if interval else None,
        level=LEVEL,
        probability=difference.probability,
        wins=difference.wins,
        ties=difference.ties,
        losses=difference.losses,
        seed_sd=difference.seed_sd,
        exceeds_seed_variation=difference.exceeds,
        significant_tests=difference.significant_tests,
        tests=difference.tests,
        sentence=seeds_mod.difference_sentence(difference),
    )


def model_comparisons(
    spec: SweepSpec, runs: Sequence[RunData], models: Sequence[str], seed: int
) -> list[Comparison]:
    """Return, per point, the paired comparison of the two models over seeds: the other model
    against the reference (``models`` lists the reference first)."""
    if len(models) < 2:
        return []
    first, second = models[0], models[1]
    found = []
    for point in spec.points:
        pairs = []
        for r in runs:
            if r.run.point == point.label and r.metrics is not None:
                significance = r.metrics.significance
                pairs.append((
                    r.run.seed, _metric(r.metrics, first, "test_accuracy"),
                    _metric(r.metrics, second, "test_accuracy"),
                    significance.significant if significance is not None else None,
                ))  # fmt: skip
        if pairs:
            subjects = (f"the {first} model", f"the {second} model")
            subjects = (
                subjects[0],
                subjects[1] + (f" at {point.label}" if len(spec.points) > 1 else ""),
            )
            found.append(_comparison("models", {"point": point.label}, (first, second), pairs,
                                     seed, subjects))  # fmt: skip
    return found


def point_comparisons(
    spec: SweepSpec, runs: Sequence[RunData], models: Sequence[str], seed: int
) -> list[Comparison]:
    """Return, per model, each point against the first point, paired by seed.

    The per-seed McNemar test compares the two runs' predictions on the same test images.
    """
    if len(spec.points) < 2:
        return []
    by_key = {(r.run.point, r.run.seed): r for r in runs}
    reference = spec.points[0].label
    found = []
    for model in models:
        for point in spec.points[1:]:
            pairs = []
            for s in spec.seeds:
                a, b = by_key[(reference, s)], by_key[(point.label, s)]
                if a.metrics is None or b.metrics is None or a.correct is None or b.correct is None:
                    continue
                test = statistics.mcnemar(a.correct[model], b.correct[model])
                pairs.append((s, _metric(a.metrics, model, "test_accuracy"),
                              _metric(b.metrics, model, "test_accuracy"),
                              test.p_value < ALPHA))  # fmt: skip
            if pairs:
                subjects = (reference, f"{point.label} (the {model} model)")
                found.append(_comparison("points", {"model": model}, (reference, point.label),
                                         pairs, seed, subjects))  # fmt: skip
    return found


def _models(runs: Sequence[RunData]) -> list[str]:
    """Return the runs' models, the reference first: the order every comparison takes."""
    for r in runs:
        if r.metrics is not None:
            paired = r.metrics.significance
            return list(paired.models) if paired is not None else list(r.metrics.models)
    return []


def _run_entry(r: RunData) -> RunEntry:
    models = {}
    significance = None
    if r.metrics is not None:
        significance = r.metrics.significance
        for name, m in r.metrics.models.items():
            models[name] = RunModel(
                test_accuracy=m.test_accuracy, macro_f1=m.classification_report.macro_avg.f1,
                val_accuracy=m.val_accuracy, diverged=m.divergence is not None,
            )  # fmt: skip
    return RunEntry(
        key=r.run.key, point=r.run.point, seed=r.run.seed,
        status="ok" if r.ok else "failed", error=r.error,
        report=f"{r.run.key}/{RUN_FILES.html.as_posix()}" if r.ok and r.has_report else None,
        models=models,
        mcnemar_p_value=significance.mcnemar.p_value if significance else None,
        significant=significance.significant if significance else None,
    )  # fmt: skip


def build_document(spec: SweepSpec, runs: Sequence[RunData], date: str) -> SweepDocument:
    """Return ``sweep.json``'s document: per point and model over seeds, every run, comparisons."""
    seed = bootstrap_seed(spec)
    models = _models(runs)
    points = []
    for point in spec.points:
        finished = [r for r in runs if r.run.point == point.label and r.ok]
        summaries = {}
        if finished:
            summaries = {
                model: ModelSummary(
                    test_accuracy=_seed_stats(finished, model, "test_accuracy", seed),
                    macro_f1=_seed_stats(finished, model, "macro_f1", seed),
                )
                for model in models
            }
        points.append(
            PointEntry(
                label=point.label,
                overrides=dict(point.overrides),
                config=f"points/{point.label}/{POINT_CONFIG}",
                models=summaries,
            )
        )
    comparisons = model_comparisons(spec, runs, models, seed)
    comparisons += point_comparisons(spec, runs, models, seed)
    return SweepDocument.model_validate(
        {
            "schema": SCHEMA, "title": spec.title, "date": date, "kind": spec.kind,
            "seeds": list(spec.seeds), "keys": list(spec.keys), "level": LEVEL,
            "points": points, "runs": [_run_entry(r) for r in runs], "comparisons": comparisons,
        },
        strict=False,
    )  # fmt: skip


def sweep_csv(spec: SweepSpec, document: SweepDocument) -> bytes:
    """Return ``sweep.csv``: one row per run, the swept values, every model's metrics."""
    overrides = {p.label: p.overrides for p in document.points}
    models = list(dict.fromkeys(m for run in document.runs for m in run.models))
    rows = []
    for run in document.runs:
        row: dict[str, Any] = {"run": run.key, "point": run.point, "seed": run.seed}
        for key in spec.keys:
            value = overrides[run.point].get(key)
            row[key] = None if value is None else value_text(value)
        row["status"] = run.status
        for model in models:
            m = run.models.get(model)
            row[f"{model}_test_accuracy"] = m.test_accuracy if m else None
            row[f"{model}_macro_f1"] = m.macro_f1 if m else None
            row[f"{model}_val_accuracy"] = m.val_accuracy if m else None
            row[f"{model}_diverged"] = m.diverged if m else None
        row["mcnemar_p_value"] = run.mcnemar_p_value
        row["significant"] = run.significant
        row["report"] = run.report
        row["error"] = run.error
        rows.append(row)
    return csv_bytes(pd.DataFrame(rows))


def gate_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """Return one row per finished run and model with every metric a threshold may name."""
    rows = []
    for r in runs:
        if r.metrics is None:
            continue
        for model in r.metrics.models:
            row = {"point": r.run.point, "seed": r.run.seed, "model": model}
            row.update({name: _metric(r.metrics, model, name) for name in GATE_METRICS})
            rows.append(row)
    return pd.DataFrame(rows, columns=["point", "seed", "model", *GATE_METRICS])


def _dot_tables(document: SweepDocument, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, summary = [], []
    for point in document.points:
        for model, entry in point.models.items():
            seed_stats: SeedStats = getattr(entry, metric)
            for s, v in zip(seed_stats.seeds, seed_stats.values, strict=True):
                rows.append({"point": point.label, "model": model, "seed": s, "value": v})
            nan = float("nan")
            summary.append({
                "point": point.label, "model": model, "mean": seed_stats.mean,
                "sd": nan if seed_stats.sd is None else seed_stats.sd,
                "low": nan if seed_stats.low is None else seed_stats.low,
                "high": nan if seed_stats.high is None else seed_stats.high,
            })  # fmt: skip
    columns = ["point", "model", "seed", "value"]
    summary_columns = ["point", "model", "mean", "sd", "low", "high"]
    return pd.DataFrame(rows, columns=columns), pd.DataFrame(summary, columns=summary_columns)


def _curves(runs: Sequence[RunData], label: str) -> pd.DataFrame:
    frames = [
        r.history.assign(seed=r.run.seed)
        for r in runs
        if r.run.point == label and r.history is not None
    ]
    columns = ["model", "seed", "epoch", "val_loss", "val_accuracy"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _effect_rows(spec: SweepSpec, document: SweepDocument, key: str | None) -> pd.DataFrame:
    """Return the rows of one effect figure: per run and model, x, line, seed, test accuracy."""
    points = {p.label: p for p in spec.points}
    others = [k for k in spec.keys if k != key] if key is not None else []
    rows = []
    for run in document.runs:
        point = points[run.point]
        x = run.point if key is None else point.value(key)
        rest = ", ".join(f"{k.split('.')[-1]}={value_text(point.value(k))}" for k in others)
        for model, m in run.models.items():
            line = model if key is None or not rest else f"{model}, {rest}"
            rows.append({"x": x, "line": line, "seed": run.seed, "value": m.test_accuracy})
    return pd.DataFrame(rows, columns=["x", "line", "seed", "value"])


def figure_pngs(
    spec: SweepSpec, runs: Sequence[RunData], document: SweepDocument
) -> list[tuple[str, bytes, str, str]]:
    """Return every figure as (name, PNG bytes, alt text, caption), in page order."""
    level = text_mod.level(LEVEL)
    found = []
    for metric, label in SWEEP_METRICS.items():
        rows, summary = _dot_tables(document, metric)
        fig = seed_dots_figure(rows, summary, metric=label, level=LEVEL)
        alt, caption = FIGURES["seed_dots"].describe(metric=label.capitalize(), level=level)
        found.append((f"seeds_{metric}", style.render_png(fig), alt, caption))
    for i, point in enumerate(spec.points):
        history = _curves(runs, point.label)
        if history.empty:  # no run of the point finished: the tables say so
            continue
        fig = averaged_curves_figure(history, point=point.label)
        seeds = history["seed"].nunique()
        alt, caption = FIGURES["averaged_curves"].describe(point=point.label, seeds=seeds)
        found.append((f"curves_{i + 1}", style.render_png(fig), alt, caption))
    numeric = spec.kind == "grid"
    keys: list[str | None] = (
        list(spec.keys) if numeric else ([None] if len(spec.points) > 1 else [])
    )
    for i, key in enumerate(keys):
        rows = _effect_rows(spec, document, key)
        values = [p.value(key) for p in spec.points] if key is not None else []
        is_number = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        categorical = key is None or not is_number
        order = [p.label for p in spec.points] if key is None else list(dict.fromkeys(values))
        if categorical and key is not None:
            rows = rows.assign(x=rows["x"].map(value_text))
            order = [value_text(v) for v in order]
        name = key or "point"
        fig = effect_figure(rows, key=name, metric="test accuracy", categorical=categorical,
                            order=order)  # fmt: skip
        alt, caption = FIGURES["effect"].describe(metric="Test accuracy", key=name)
        found.append((f"effect_{i + 1}", style.render_png(fig), alt, caption))
    return found


def build_outputs(
    spec: SweepSpec,
    planned: Sequence[PlannedRun],
    out: Path,
    failed: Mapping[str, str],
    *,
    pdf: bool = True,
) -> Outputs:
    """Return the bytes of every file of the sweep report, rendered in memory."""
    runs = read_runs(out, planned, failed)
    day = planned[0].config.run.date or report_date(planned[0].config, {}).day
    document = build_document(spec, runs, day)
    pngs = figure_pngs(spec, runs, document)
    page = build_context(spec, document, pngs)
    files = {
        HTML_NAME: render_html(page).encode("utf-8"),
        CSV_NAME: sweep_csv(spec, document),
        JSON_NAME: document.json_bytes(),
    }
    if pdf:
        files[PDF_NAME] = render_pdf(page, out)
    for name, png, _alt, _caption in pngs:
        files[f"figures/{name}.png"] = png
    return Outputs(files, gate_table(runs))
