"""Tests for comparing runs: settings side by side, one metric table, overlaid validation curves.

The runs are the synthetic run of ``tests/synthetic.py`` with a changed
configuration, their own metrics (built through the metrics contract) and a
full ``history.csv``; no training.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from reportgen.artifacts import manifest as manifest_mod
from reportgen.artifacts.metrics import read_metrics
from reportgen.config import toml
from reportgen.config.loading import apply_overrides, parse_toml, validate
from reportgen.config.toml import to_toml
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, RunDirError
from reportgen.core.text import MISSING, pct
from reportgen.report import compare_page, render
from reportgen.report.page import PNG_SIGNATURE
from reportgen.run import compare
from tests import synthetic
from tests.synthetic import make_run

# (directory, --set overrides, test accuracy of baseline and regularized)
RUNS: list[tuple[str, list[str], tuple[float, float]]] = [
    ("sweep/run1", [], (0.9012, 0.9311)),
    ("sweep/run2", ["train.lr=0.003", "models.regularized.dropout=0.5"], (0.8876, 0.9402)),
    ("other/run1", ["train.epochs=5", 'run.date="2024-04-02"'], (0.9105, 0.9298)),
]
EQUAL_KEYS = ("seed", "train.optimizer", "models.baseline.dropout", "data.batch_size")


def make_variant(
    root: Path, overrides: list[str], accuracies: tuple[float, float], *, epochs: int = 3
) -> Path:
    """Write the synthetic run at ``root`` with ``overrides`` applied and its own numbers."""
    make_run(root)
    data = parse_toml((root / "config.toml").read_text(encoding="utf-8"), source="config.toml")
    config = validate(apply_overrides(data, overrides))
    fileio.write_atomic(root / "config.toml", to_toml(config))

    def edit(document: dict[str, Any]) -> None:
        for model, accuracy in zip(document["models"].values(), accuracies, strict=True):
            model.update(
                test_accuracy=accuracy,
                train_accuracy=accuracy + 0.03,
                train_test_gap=0.03,
                val_accuracy=accuracy - 0.01,
                epochs=epochs,
            )
            model["accuracy_ci"].update(low=accuracy - 0.02, high=accuracy + 0.015)
        significant = accuracies[1] > 0.935
        document["significance"]["mcnemar"]["p_value"] = 0.0004 if significant else 0.2
        document["significance"]["significant"] = significant

    metrics = synthetic.edited(edit)
    metrics.write(root / "metrics.json")

    rng = np.random.default_rng(int(accuracies[0] * 1e4))
    rows = [
        {
            "model": name,
            "epoch": epoch,
            "train_loss": 1 / epoch,
            "train_accuracy": 0.8 + epoch / 50,
            "val_loss": 1.1 / epoch + rng.random() / 10,
            "val_accuracy": 0.78 + epoch / 50,
            "lr": 0.001,
        }
        for name in metrics.models
        for epoch in range(1, epochs + 1)
    ]
    fileio.write_atomic(root / "history.csv", pd.DataFrame(rows).to_csv(index=False))

    synthetic.rehash(root)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("compare")
    return [make_variant(base / name, overrides, acc) for name, overrides, acc in RUNS]


@pytest.fixture(scope="module")
def outputs(runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("out") / "comparison"
    paths = compare.compare_runs(runs, out, environ={})
    return {path.name: path for path in paths}


@pytest.fixture(scope="module")
def html(outputs: dict[str, Path]) -> str:
    return outputs["compare.html"].read_text(encoding="utf-8")


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}".*?</section>', html, re.DOTALL)
    assert match is not None, anchor
    return match.group(0)


def _row_keys(section: str) -> list[str]:
    return re.findall(r'<th scope="row">([^<]+)</th>', section)


# --------------------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    ("paths", "labels"),
    [
        (["a/x", "b/y"], ["x", "y"]),
        (["a/x", "b/x", "c/y"], ["a/x", "b/x", "c/y"]),
        (["p/a/x", "q/a/x"], ["p/a/x", "q/a/x"]),
        (["x/", "sub/../y"], ["x", "y"]),
    ],
)
def test_run_labels(paths: list[str], labels: list[str]) -> None:
    assert compare_page.run_labels([Path(p) for p in paths]) == labels


def test_flatten() -> None:
    nested = {"seed": 1, "train": {"lr": 0.1}, "models": {"b": {"hidden": [2, 3]}}}
    assert toml.flatten(nested) == {"seed": 1, "train.lr": 0.1, "models.b.hidden": [2, 3]}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "unset"),
        (True, "true"),
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        (64, "64"),
        ("adam", '"adam"'),
        ('say "hi"', '"say \\"hi\\""'),
        ([[4, 9], [3, 8]], "[[4, 9], [3, 8]]"),
    ],
)
def test_setting_text(value: Any, text: str) -> None:
    assert toml.setting_text(value) == text


def test_setting_rows_mark_what_differs_from_the_first_run() -> None:
    rows = compare_page.setting_rows([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1, "b": 2, "c": 0}])
    by_key = {row.key: row for row in rows}
    assert [row.key for row in rows] == ["a", "b", "c"]
    assert not by_key["a"].differs and by_key["a"].changed == (False, False, False)
    assert by_key["b"].differs and by_key["b"].changed == (False, True, False)
    assert by_key["c"].values == (MISSING, MISSING, "0")


# --------------------------------------------------------------------------- the comparison


def test_writes_the_four_files(outputs: dict[str, Path]) -> None:
    assert sorted(outputs) == ["compare.csv", "compare.html", "compare.pdf", "compare_history.png"]
    assert outputs["compare_history.png"].read_bytes().startswith(PNG_SIGNATURE)


def test_differences_show_only_the_keys_that_differ(html: str) -> None:
    differences = _section(html, "compare-differences")
    assert _row_keys(differences) == [
        "run.date",
        "train.epochs",
        "train.lr",
        "models.regularized.dropout",
    ]
    for key in EQUAL_KEYS:
        assert f">{key}<" not in differences
    lr_row = re.search(r"<th scope=\"row\">train\.lr</th>(.*?)</tr>", differences, re.DOTALL)
    assert lr_row is not None
    assert re.findall(r"<td[^>]*>(.*?)</td>", lr_row.group(1)) == [
        "0.001",
        "<mark>0.003</mark>",
        "0.001",
    ]
    assert "first run, <strong>sweep/run1</strong>" in differences


@pytest.mark.parametrize(("count", "verb"), [(1, "is"), (2, "are")])
def test_differences_sentence_agrees_in_number(runs: list[Path], count: int, verb: str) -> None:
    inputs = compare.read_runs(runs[:2])
    page = compare_page.build_context(inputs, PNG_SIGNATURE, environ={})
    assert len(page.differences) >= count
    page = dataclasses.replace(page, differences=page.differences[:count])
    html = render.render_html(page)
    total = len(page.settings)
    assert f"{count} of the {total} resolved settings {verb} not the same" in html


def test_all_settings_highlight_the_differing_rows(html: str) -> None:
    settings = _section(html, "compare-settings")
    assert '<tr class="differs">\n<th scope="row">train.lr</th>' in settings
    for key in EQUAL_KEYS:
        assert f'<tr>\n<th scope="row">{key}</th>' in settings


def test_metric_table_has_a_row_per_run_and_model(
    outputs: dict[str, Path], html: str, runs: list[Path]
) -> None:
    table = pd.read_csv(outputs["compare.csv"])
    assert list(zip(table["run"], table["model"], strict=True)) == [
        (label, model)
        for label in ("sweep/run1", "sweep/run2", "other/run1")
        for model in ("baseline", "regularized")
    ]
    metrics_html = _section(html, "compare-metrics")
    for position, (_, _, accuracies) in enumerate(RUNS):
        metrics = read_metrics(runs[position], manifest_mod.read_manifest(runs[position]))
        assert metrics.significance is not None
        rows = table.iloc[2 * position : 2 * position + 2]
        assert list(rows["test_accuracy"]) == list(accuracies)
        for model, (_, row) in zip(metrics.models.values(), rows.iterrows(), strict=True):
            assert row["ci_low"] == model.accuracy_ci.low
            assert row["train_test_gap"] == model.train_test_gap
            assert row["verdict"] == metrics.significance.verdict
            assert pct(model.test_accuracy) in metrics_html
            assert f"{pct(model.accuracy_ci.low)} – " in metrics_html
    # the best regularized accuracy (run2) and the best baseline accuracy (other/run1) are bold
    assert '<td class="num best">94.02%</td>' in metrics_html
    assert '<td class="num best">91.05%</td>' in metrics_html
    assert metrics_html.count("num best") == 2
    assert "regularized better, p\u00a0&lt;\u00a00.001" in metrics_html
    assert "no significant difference, p\u00a0=\u00a00.200" in metrics_html


def test_html_is_self_contained(html: str, outputs: dict[str, Path]) -> None:
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)=["']//""", html)
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    png = base64.b64decode(sources[0].removeprefix("data:image/png;base64,"))
    assert png == outputs["compare_history.png"].read_bytes()
    assert "<style>" in html and "<link" not in html


def test_date_is_the_latest_run_date(html: str) -> None:
    assert '<time datetime="2024-04-02">2024-04-02</time>' in html


def test_outputs_are_byte_identical_across_calls(
    runs: list[Path], outputs: dict[str, Path], tmp_path: Path
) -> None:
    again = compare.compare_runs(runs, tmp_path / "again", environ={})
    for path in again:
        assert path.read_bytes() == outputs[path.name].read_bytes(), path.name


def test_pdf(outputs: dict[str, Path]) -> None:
    reader = PdfReader(io.BytesIO(outputs["compare.pdf"].read_bytes()))
    assert reader.metadata is not None and reader.metadata.title == "Comparison of 3 runs"
    assert "/ID" not in reader.trailer
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Settings that differ" in text and "models.regularized.dropout" in text
    assert "Comparison of sweep/run1, sweep/run2, other/run1" in text  # page footer


def test_without_pdf(runs: list[Path], tmp_path: Path) -> None:
    paths = compare.compare_runs(runs[:2], tmp_path, pdf=False, environ={})
    assert sorted(p.name for p in paths) == ["compare.csv", "compare.html", "compare_history.png"]


# --------------------------------------------------------------------------- refusals


def test_refuses_a_single_run(runs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least two run directories; got 1"):
        compare.compare_runs(runs[:1], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_the_same_run_twice(runs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is given twice"):
        compare.compare_runs([runs[0], runs[1], runs[0].parent / ".." / "sweep" / "run1"], tmp_path)


def test_refuses_a_directory_that_is_not_a_run(runs: list[Path], tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(RunDirError, match=r"notes: not a reportgen run \(no manifest\.json\)"):
        compare.compare_runs([runs[0], tmp_path / "notes"], tmp_path / "out")
    with pytest.raises(RunDirError, match="no such run directory"):
        compare.compare_runs([runs[0], tmp_path / "missing"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_a_tampered_history(runs: list[Path], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(runs[1], tmp_path / "copy"))
    with open(copy / "history.csv", "a", encoding="utf-8") as f:
        f.write("baseline,9,0.1,0.9,0.1,0.9,0.001\n")
    with pytest.raises(RunDirError, match=r"history\.csv: SHA-256 .*tampered"):
        compare.compare_runs([runs[0], copy], tmp_path / "out")


def test_refuses_a_history_without_validation_columns(runs: list[Path], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(runs[1], tmp_path / "copy"))
    fileio.write_atomic(copy / "history.csv", "model,epoch,train_loss\nbaseline,1,0.5\n")
    synthetic.rehash(copy)
    with pytest.raises(RunDirError, match=r"history\.csv: lacks column.*val_loss, val_accuracy"):
        compare.compare_runs([runs[0], copy], tmp_path / "out")
