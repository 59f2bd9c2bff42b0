"""``reportgen compare``: several finished runs -> one comparison, published like a run.

:func:`compare_runs` reads two or more finished run directories — their
resolved ``config.toml``, ``metrics.json`` and ``history.csv`` — and writes
into one output directory:

``compare.html``
    One self-contained page (:mod:`reportgen.report.compare_page`).
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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from reportgen.artifacts import layout, publish
from reportgen.artifacts.layout import ComparePaths
from reportgen.artifacts.manifest import CompareManifest, RunManifest, artifact_hashes, read_intact
from reportgen.artifacts.metrics import read_metrics
from reportgen.artifacts.runconfig import read_config
from reportgen.artifacts.tables import csv_bytes, read_history
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, OutputError
from reportgen.figures import style, training
from reportgen.report.compare_page import RunInput, build_context, metric_rows, run_labels
from reportgen.report.render import render_html, render_pdf


def read_runs(run_dirs: Sequence[Path | str]) -> list[RunInput]:
    """Return the inputs of every run, refusing fewer than two runs or a directory that is not one.

    Raises
    ------
    ConfigError
        Fewer than two runs, or the same run given twice.
    RunDirError
        A directory is not a complete run, a file differs from its manifest, a
        ``metrics.json`` does not fit its schema or a ``history.csv`` lacks columns.
    RenderError
        A run's ``config.toml`` is malformed.
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
        manifest = read_intact(root, RunManifest, action="compare")
        config, _ = read_config(root, manifest)
        metrics = read_metrics(root, manifest)
        manifest_sha256 = fileio.sha256_bytes(fileio.read_listed(root, layout.MANIFEST))
        runs.append(RunInput(label, config, metrics, read_history(root, manifest), manifest_sha256))
    return runs


def history_frame(runs: Sequence[RunInput]) -> pd.DataFrame:
    """Return every run's history in one long table with a leading ``run`` column."""
    frames = [run.history.assign(run=run.label) for run in runs]
    history = pd.concat(frames, ignore_index=True)
    return history[["run", *[c for c in history.columns if c != "run"]]]


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
        its ``metrics.json`` or ``history.csv`` does not fit its schema.
    RenderError
        An input's ``config.toml`` is malformed, or a template or the PDF layout fails.
    """
    out = Path(out_dir)
    publish.check_target(out, kind=layout.COMPARE_KIND)
    runs = read_runs(run_dirs)
    figure_png = style.render_png(training.compare_history_figure(history_frame(runs)))
    page = build_context(runs, figure_png, environ=environ)
    names = ComparePaths(Path())
    outputs = {
        names.html: render_html(page, templates_dir=templates_dir).encode("utf-8"),
        names.figure: figure_png,
        names.csv: csv_bytes(pd.DataFrame(metric_rows(runs))),
    }
    if pdf:
        outputs[names.pdf] = render_pdf(page, out, templates_dir=templates_dir)
    try:
        with publish.open_staging(out, resume=False, kind=layout.COMPARE_KIND) as staging:
            for name, data in outputs.items():
                fileio.write_atomic(staging / name, data)
            CompareManifest(
                inputs={run.label: run.manifest_sha256 for run in runs},
                artifacts=artifact_hashes(staging),
            ).write(ComparePaths(staging).manifest)
            publish.publish(staging, out, kind=layout.COMPARE_KIND)
    except OSError as e:
        raise OutputError(f"cannot write the comparison into {out}: {e}") from e
    return [out / name for name in outputs]
