"""Tests for reading a run into the report's context: checked inputs, figures, sentences, date."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from reportgen.artifacts import layout
from reportgen.artifacts.catalogue import FIGURES
from reportgen.artifacts.manifest import RunManifest, read_manifest
from reportgen.core.errors import RenderError, RunDirError
from reportgen.report import run_page, sentences
from tests import synthetic
from tests.synthetic import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run (read-only by convention: copy it to change it)."""
    return make_run(tmp_path_factory.mktemp("context") / "run")


@pytest.fixture(scope="module")
def page(run_dir: Path) -> run_page.RunPage:
    return run_page.build_context(run_dir, environ={})


@pytest.fixture
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


# --------------------------------------------------------------------------- what it holds


def test_models_carry_their_metrics_and_every_figure(page: run_page.RunPage) -> None:
    document = synthetic.metrics()
    assert [view.name for view in page.models] == list(document.models)
    for view in page.models:
        assert view.metrics == document.models[view.name]
        assert set(view.figures) == {  # 10 classes: no sub-matrix of the most confused
            k for k, f in FIGURES.items() if f.scope == "model" and k != "confused_classes"
        }
        assert view.confused_pair_rows == ()  # the matrix writes every count in its cells
        assert [f.name for f in view.pair_figures] == [
            g.figure for g in view.metrics.pair_galleries
        ]
    assert [f.name for f in page.shared_figures] == ["compare_curves", "lr"]
    assert page.significance == document.significance


def test_figure_text_comes_from_the_registry(page: run_page.RunPage) -> None:
    baseline = page.models[0]
    alt, caption = FIGURES["weights"].describe(model="baseline", n=10)
    assert (baseline.figures["weights"].alt, baseline.figures["weights"].caption) == (alt, caption)
    gallery = baseline.metrics.pair_galleries[0]
    figure = baseline.pair_figures[0]
    assert figure.alt == "Test images of class 4 that the baseline model predicted as 9"
    assert figure.caption == (
        f"True 4, predicted 9: {gallery.count} test images of the baseline model "
        f"(configured pair); {len(gallery.indices)} shown."
    )


def test_ci_level_comes_from_the_metrics(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", level=0.9)
    page = run_page.build_context(run, environ={})
    assert page.ci_level == 0.9
    assert "(90% CI " in page.summary[0] and "95%" not in page.summary[0]


def test_summary_sentences(page: run_page.RunPage) -> None:
    summary = page.summary
    assert summary[0].startswith("Test accuracy on the 1,000 test images: ")
    assert "for the baseline model (95% CI " in summary[0]
    assert " and " in summary[0] and "for the regularized model (95% CI" in summary[0]
    assert summary[1].startswith("The regularized model is significantly more accurate")
    assert "12 are classified correctly only by the baseline model" in summary[1]
    assert summary[2] == (
        "Curve diagnosis for the baseline model — Train and validation loss fall together."
    )
    assert "errs most on digit" in summary[4] and "most confused pairs" in summary[4]


def test_errors_sentence_without_errors(page: run_page.RunPage) -> None:
    clean = page.models[0].metrics.model_copy(update={"worst_classes": [], "confused_pairs": []})
    assert sentences.errors_sentence("baseline", clean, page.dataset) == (
        "The baseline model misclassifies none of the test images."
    )


def test_pipeline_manifest_can_be_passed_in(copy_run: Path) -> None:
    manifest = read_manifest(copy_run, RunManifest)
    (copy_run / layout.MANIFEST).unlink()
    page = run_page.build_context(copy_run, manifest=manifest, environ={})
    assert page.reproducibility.seed == 7


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
    assert run_page.build_context(run, environ=environ).date == expected


def test_bad_source_date_epoch_is_a_render_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", date=None)
    with pytest.raises(RenderError, match="SOURCE_DATE_EPOCH"):
        run_page.build_context(run, environ={"SOURCE_DATE_EPOCH": "yesterday"})


# --------------------------------------------------------------------------- broken runs


def test_not_a_run_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a reportgen run"):
        run_page.build_context(tmp_path)


@pytest.mark.parametrize(
    ("rel", "match"),
    [
        ("metrics.json", "metrics.json is missing"),
        ("config.toml", "config.toml is missing"),
        ("figures/lr.png", "figure figures/lr.png is missing"),
    ],
)
def test_missing_artifact(copy_run: Path, rel: str, match: str) -> None:
    (copy_run / rel).unlink()
    with pytest.raises(RunDirError, match=match):
        run_page.build_context(copy_run)


def test_tampered_artifact_is_refused(copy_run: Path) -> None:
    path = copy_run / "metrics.json"
    path.write_text(path.read_text().replace('"test_size": 1000', '"test_size": 1001'))
    with pytest.raises(RunDirError, match=re.escape("metrics.json does not match its SHA-256")):
        run_page.build_context(copy_run)


def test_a_model_without_one_of_its_figures_is_refused(copy_run: Path) -> None:
    document = synthetic.metrics()
    baseline = document.models["baseline"]
    figures = {k: v for k, v in baseline.figures.items() if k != "weights"}
    models = {**document.models, "baseline": baseline.model_copy(update={"figures": figures})}
    synthetic.write_metrics(copy_run, document.model_copy(update={"models": models}))
    with pytest.raises(RunDirError, match=r"models\.baseline\.figures: no 'weights' figure"):
        run_page.build_context(copy_run)


def test_a_figure_that_is_not_png_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "figures" / "lr.png").write_bytes(b"GIF89a")
    synthetic.rehash(copy_run)
    with pytest.raises(RenderError, match="not a PNG image"):
        run_page.build_context(copy_run)


def test_malformed_config_is_a_render_error(copy_run: Path) -> None:
    (copy_run / "config.toml").write_text("seed = 'x'\n")
    synthetic.rehash(copy_run)
    with pytest.raises(RenderError, match=r"config\.toml: seed"):
        run_page.build_context(copy_run)


# --------------------------------------------------------------------------- deeper evaluation


def test_summary_ends_with_calibration_and_per_class_differences(page: run_page.RunPage) -> None:
    document = synthetic.metrics()
    assert page.summary[-3:] == [
        document.models["baseline"].calibration.verdict,
        document.models["regularized"].calibration.verdict,
        "Per class, no recall difference between the baseline and regularized models is "
        "significant (Holm’s correction for 10 classes, α = 0.05).",
    ]
    # The summary says it once; the model comparison gives the numbers, in metrics' verdict.
    assert document.significance.class_recall.verdict not in page.summary


def test_new_tables_list_classes_worst_first(page: run_page.RunPage) -> None:
    for view in page.models:
        f1 = [row.f1 for row in view.interval_rows.rows]
        auc = [row.auc for row in view.ranking_rows.rows]
        assert f1 == sorted(f1) and len(f1) == 10
        assert auc == sorted(auc) and len(auc) == 10
        # 10 classes fit in report.table_rows (20): these two keep the class order.
        assert [row.label for row in view.class_rows.rows] == list(range(10))
        assert [row.label for row in view.error_rows.rows] == list(range(10))
        for table in (view.class_rows, view.interval_rows, view.error_rows, view.ranking_rows):
            assert (table.total, table.cut, table.note) == (10, False, None)
    assert page.class_recall_rows is not None
    p_adjusted = [row.p_adjusted for row in page.class_recall_rows.rows]
    assert p_adjusted == sorted(p_adjusted) and len(p_adjusted) == 10
    assert page.classes == [str(k) for k in range(10)]
    worst = page.models[0].ranking_rows.rows[0]
    assert page.ranking_sentences["baseline"].endswith(
        f"; its probabilities rank class {worst.label} worst (AUC {worst.auc:.4f})."
    )


def test_attribution_figures_say_where_the_wrong_evidence_lies(page: run_page.RunPage) -> None:
    baseline = page.models[0]
    shown = baseline.metrics.attributions
    assert [f.name for f in baseline.attribution_figures] == [g.figure for g in shown.galleries]
    grid, pair = baseline.attribution_figures[:2]
    assert grid.caption.startswith("Why the baseline model chose the wrong class: ")
    assert "black-image baseline, 50 steps" in grid.caption
    # The synthetic regions repeat "top centre", "centre", "top centre", "bottom left", none.
    assert grid.caption.endswith(
        "The cell of a 3 × 3 grid over the image that holds most evidence for the predicted "
        "over the true class is the top centre in 4 of 10 images; then the centre (2) and "
        "the bottom left (2)."
    )
    assert pair.alt == (
        "Test images of 4 that the baseline model predicted as 9, beside Integrated "
        "Gradients maps toward 9 and toward 4"
    )
    assert "holds most evidence for 9 over 4 is the top centre" in pair.caption


def test_evidence_sentence_without_images_or_evidence() -> None:
    gallery = synthetic.metrics().models["baseline"].attributions.galleries[1]
    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    empty = gallery.model_copy(update={"images": []})
    assert sentences.evidence_sentence(empty, classes) == "No image to attribute."
    none = gallery.model_copy(
        update={"images": [i.model_copy(update={"region": None}) for i in gallery.images]}
    )
    assert (
        sentences.evidence_sentence(none, classes) == "No pixel holds evidence for nine over four."
    )


def test_attributions_switched_off(copy_run: Path) -> None:
    def off(data: dict[str, Any]) -> None:
        for model in data["models"].values():
            for gallery in model["attributions"]["galleries"]:
                del data["figures"][gallery["figure"]]
            model["attributions"] = None

    synthetic.write_metrics(copy_run, synthetic.edited(off))
    page = run_page.build_context(copy_run, environ={})
    assert all(view.attribution_figures == () for view in page.models)


def test_a_cut_table_points_to_per_class_csv_or_in_an_older_run_to_metrics_json(
    copy_run: Path,
) -> None:
    from reportgen.artifacts import tables
    from reportgen.core import fileio

    with open(copy_run / "config.toml", "a", encoding="utf-8") as config:
        config.write("\n[report]\ntable_rows = 3\n")
    synthetic.rehash(copy_run)
    older = run_page.build_context(copy_run, environ={})
    baseline = older.models[0]
    shown = (baseline.class_rows, baseline.interval_rows, baseline.error_rows,
             baseline.ranking_rows)  # fmt: skip
    assert [len(table.rows) for table in shown] == [3] * 4
    assert baseline.error_rows.note == "3 of 10 classes shown; every class in metrics.json"
    document = synthetic.metrics()
    fileio.write_atomic(copy_run / "per_class.csv",
                        tables.csv_bytes(tables.per_class_frame(document)))  # fmt: skip
    synthetic.rehash(copy_run)
    page = run_page.build_context(copy_run, environ={})
    assert page.class_recall_rows is not None
    assert page.class_recall_rows.note == "3 of 10 classes shown; every class in per_class.csv"
    # Cut, the errors are ranked: highest rate first (the synthetic classes are all of 100).
    rates = [row.error_rate for row in page.models[0].error_rows.rows]
    expected = sorted((row.error_rate for row in document.models["baseline"].class_errors),
                      reverse=True)[:3]  # fmt: skip
    assert rates == expected
    assert page.models[0].figures["class_errors"].caption == (
        "Per-class error rate (1 − recall) of the baseline model on the test set: the 3 of 10 "
        "classes of highest error rate, ranked as the per-class errors table; every class in "
        "per_class.csv."
    )


def test_attributions_say_what_a_larger_image_cut(page: run_page.RunPage, copy_run: Path) -> None:
    assert [view.attribution_scope for view in page.models] == [None, None]  # 28 × 28: nothing

    def larger(data: dict[str, Any]) -> None:
        data["dataset"]["image_shape"] = [1, 128, 128]
        for model in data["models"].values():
            model["attributions"]["steps"] = 9  # what attribution.plan gives 128 px for 50

    synthetic.write_metrics(copy_run, synthetic.edited(larger))
    larger_page = run_page.build_context(copy_run, environ={})
    scopes = [view.attribution_scope for view in larger_page.models]
    said = (
        "At 128 × 128 pixels the maps are made for the first 3 images of each grid and gallery "
        "rather than 12 and 9 steps rather than the 50 of report.attribution_steps, so that "
        "they cost about what they do for 28 × 28 images."
    )
    assert scopes == [said, said]
