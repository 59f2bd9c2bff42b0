"""Tests for reading a run into the report's context: checked inputs, sentences, the date."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from reportgen import context, rundir
from reportgen.errors import RenderError, RunDirError
from tests.synthetic import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run (read-only by convention: copy it to change it)."""
    return make_run(tmp_path_factory.mktemp("context") / "run")


@pytest.fixture(scope="module")
def page(run_dir: Path) -> dict[str, Any]:
    return context.build_context(run_dir, environ={})


@pytest.fixture
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


# --------------------------------------------------------------------------- the date


@pytest.mark.parametrize(
    ("date", "environ", "expected"),
    [
        ("2024-03-01", {"SOURCE_DATE_EPOCH": "86400"}, "2024-03-01"),
        (None, {"SOURCE_DATE_EPOCH": "1700000000"}, "2023-11-14"),
        (None, {}, "1970-01-01"),
    ],
)
def test_report_date_never_reads_the_clock(
    tmp_path: Path, date: str | None, environ: dict[str, str], expected: str
) -> None:
    run = make_run(tmp_path / "run", date=date)
    assert context.build_context(run, environ=environ)["date"] == expected


def test_bad_source_date_epoch_is_a_render_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", date=None)
    with pytest.raises(RenderError, match="SOURCE_DATE_EPOCH"):
        context.build_context(run, environ={"SOURCE_DATE_EPOCH": "yesterday"})


# --------------------------------------------------------------------------- broken runs


def test_not_a_run_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a reportgen run"):
        context.build_context(tmp_path)


@pytest.mark.parametrize(
    ("rel", "error", "match"),
    [
        ("metrics.json", RunDirError, "metrics.json is missing"),
        ("config.toml", RunDirError, "config.toml is missing"),
        ("figures/lr.png", RunDirError, "figure figures/lr.png is missing"),
    ],
)
def test_missing_artifact(copy_run: Path, rel: str, error: type[Exception], match: str) -> None:
    (copy_run / rel).unlink()
    with pytest.raises(error, match=match):
        context.build_context(copy_run)


def test_tampered_artifact_is_refused(copy_run: Path) -> None:
    path = copy_run / "metrics.json"
    path.write_text(path.read_text().replace('"test_size": 1000', '"test_size": 1001'))
    with pytest.raises(RunDirError, match=re.escape("metrics.json does not match its SHA-256")):
        context.build_context(copy_run)


def _rewrite_metrics(root: Path, edit: Any) -> None:
    """Edit metrics.json and record its new hash, as a consistent (if broken) run."""
    path = root / "metrics.json"
    metrics = json.loads(path.read_text())
    edit(metrics)
    rundir.write_json(path, metrics)
    manifest = json.loads((root / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(root)
    rundir.write_json(root / rundir.MANIFEST, manifest)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda m: m["models"]["baseline"].pop("accuracy_ci"),
            "models.baseline: missing key 'accuracy_ci.level'",
        ),
        (lambda m: m.pop("significance"), "missing key 'significance'"),
        (lambda m: m["significance"]["mcnemar"].pop("p_value"), "'mcnemar.p_value'"),
        (lambda m: m["models"]["baseline"]["figures"].pop("weights"), "no 'weights' figure"),
        (lambda m: m["figures"].update(lr="../../outside.png"), "points outside the run"),
        (lambda m: m.update(schema=2), "not a schema 1 metrics document"),
        (lambda m: m["models"]["baseline"].update(test_accuracy="high"), "malformed metrics.json"),
    ],
)
def test_malformed_metrics_is_a_render_error(copy_run: Path, edit: Any, match: str) -> None:
    _rewrite_metrics(copy_run, edit)
    with pytest.raises(RenderError, match=re.escape(match)):
        context.build_context(copy_run)


def test_invalid_json_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "metrics.json").write_text("{not json")
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(copy_run)
    rundir.write_json(copy_run / rundir.MANIFEST, manifest)
    with pytest.raises(RenderError, match="invalid JSON"):
        context.build_context(copy_run)


def test_a_figure_that_is_not_png_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "figures" / "lr.png").write_bytes(b"GIF89a")
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    manifest["artifacts"] = rundir.artifact_hashes(copy_run)
    rundir.write_json(copy_run / rundir.MANIFEST, manifest)
    with pytest.raises(RenderError, match="not a PNG image"):
        context.build_context(copy_run)


def test_pipeline_manifest_can_be_passed_in(copy_run: Path) -> None:
    manifest = json.loads((copy_run / rundir.MANIFEST).read_text())
    (copy_run / rundir.MANIFEST).unlink()
    page = context.build_context(copy_run, manifest=manifest, environ={})
    assert page["reproducibility"]["seed"] == 7


# --------------------------------------------------------------------------- sentences


def test_summary_sentences(page: dict[str, Any]) -> None:
    summary = page["summary"]
    assert summary[0].startswith("Test accuracy on the 1,000 test images: ")
    assert "for the baseline model (95% CI " in summary[0]
    assert " and " in summary[0] and "for the regularized model (95% CI" in summary[0]
    assert summary[1].startswith("The regularized model is significantly more accurate")
    assert "12 are classified correctly only by the baseline model" in summary[1]
    assert summary[2] == (
        "Curve diagnosis for the baseline model — Train and validation loss fall together."
    )
    assert "errs most on digit" in summary[4] and "most confused pairs" in summary[4]


def test_errors_sentence_without_errors() -> None:
    model: dict[str, Any] = {"class_errors": [], "worst_classes": [], "confused_pairs": []}
    assert context.errors_sentence("baseline", model) == (
        "The baseline model misclassifies none of the test images."
    )
