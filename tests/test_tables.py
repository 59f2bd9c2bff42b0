"""per_class.csv: written from metrics.json through ClassRow, read back to the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reportgen.artifacts import tables
from reportgen.artifacts.manifest import read_any_manifest
from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    Divergence,
)
from reportgen.core import fileio
from reportgen.core.errors import RunDirError
from tests import synthetic


def _with_per_class(root: Path, data: bytes) -> Path:
    synthetic.make_run(root)
    fileio.write_atomic(root / "per_class.csv", data)
    synthetic.rehash(root)
    return root


def _named(document: Metrics, names: list[str]) -> Metrics:
    return synthetic.edited(lambda m: m["dataset"].update(classes=names), document)


def test_per_class_csv_holds_every_class_of_every_model_and_reads_back_the_same(
    tmp_path: Path,
) -> None:
    # Names a CSV reader would take for numbers or for "missing" stay names.
    names = ["NA", "null", "7", "empty?", "1.5", "None", "nan", "a,b", "“q”", "x"]
    document = _named(synthetic.metrics(), names)
    data = tables.csv_bytes(tables.per_class_frame(document))
    header = data.decode().splitlines()[0]
    assert header == ",".join(tables.PER_CLASS_COLUMNS)
    run = _with_per_class(tmp_path / "run", data)
    rows = tables.read_per_class(run, read_any_manifest(run))
    assert rows == tables.class_rows(document)
    assert [(row.model, row.label) for row in rows] == [
        (model, label) for model in synthetic.MODELS for label in range(10)
    ]
    baseline, regularized = rows[3], rows[13]
    scores = document.models["baseline"].classification_report.classes[3]
    assert (baseline.label_name, baseline.precision, baseline.f1_high) == (
        "empty?", scores.precision, scores.f1_ci.high,
    )  # fmt: skip
    ranking = document.models["baseline"].one_vs_rest
    assert ranking is not None and baseline.auc == ranking.classes[3].auc
    # The recall difference sits on the compared (second) model's rows only.
    assert document.significance is not None
    difference = document.significance.class_recall.classes[3]
    assert baseline.recall_difference is None and baseline.recall_significant is None
    assert regularized.recall_difference == difference.estimate
    assert regularized.recall_p_adjusted == difference.p_adjusted
    assert regularized.recall_significant is difference.significant


def test_a_model_without_errors_or_probabilities_leaves_those_cells_empty(tmp_path: Path) -> None:
    diverged = synthetic.metrics(divergence=Divergence(
        epoch=2, step=10, last_finite_loss=0.5, finite_logits=False
    ))  # fmt: skip
    document = synthetic.edited(
        lambda m: m["models"]["regularized"]["class_errors"][0].update(
            errors=0, error_rate=0.0, top_wrong_prediction=None, top_wrong_count=0
        ),
        diverged,
    )
    data = tables.csv_bytes(tables.per_class_frame(document))
    lines = data.decode().splitlines()
    assert lines[1].split(",")[-8:-6] == ["", ""]  # the baseline's AUC, average precision
    first_regularized = lines[11].split(",")
    wrong = tables.PER_CLASS_COLUMNS.index("top_wrong_prediction")
    assert first_regularized[wrong : wrong + 3] == ["", "", "0"]
    assert lines[2].split(",")[wrong] != "" and "." not in lines[2].split(",")[wrong]
    run = _with_per_class(tmp_path / "run", data)
    assert tables.read_per_class(run, read_any_manifest(run)) == tables.class_rows(document)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace(",auc,", ",area,"), r"lacks column\(s\) auc"),
        (lambda text: text.replace("\nbaseline,2,", "\nbaseline,two,"), r"line 4: label: "),
        (lambda text: text + "regularized,10\n", r"unreadable CSV|line 22: "),
    ],
)
def test_a_malformed_per_class_csv_is_refused_in_one_line(
    tmp_path: Path, edit: object, message: str
) -> None:
    text = tables.csv_bytes(tables.per_class_frame(synthetic.metrics())).decode()
    run = _with_per_class(tmp_path / "run", edit(text).encode())  # type: ignore[operator]
    with pytest.raises(RunDirError, match=message):
        tables.read_per_class(run, read_any_manifest(run))


def test_a_changed_per_class_csv_is_refused(tmp_path: Path) -> None:
    data = tables.csv_bytes(tables.per_class_frame(synthetic.metrics()))
    run = _with_per_class(tmp_path / "run", data)
    (run / "per_class.csv").write_bytes(data.replace(b"baseline", b"baseliNe", 1))
    with pytest.raises(RunDirError, match=r"per_class\.csv"):
        tables.read_per_class(run, read_any_manifest(run))


@pytest.mark.parametrize(
    "changed",
    [
        {},  # the fast path: floats end every row
        {"p1": [np.nan, np.inf, -0.0]},  # a missing value: an empty cell
        {"model": ["a", "line\nbreak", "c"]},  # a quoted line break among the leading cells
        {"index": [0.5, 1.0, 2.0]},  # a float before the last columns
    ],
)
def test_formatted_floats_are_the_bytes_pandas_writes(changed: dict) -> None:
    frame = pd.DataFrame(
        {
            "model": ["a", "b,c", 'd"e'],
            "index": [0, 1, 2],
            "p0": np.array([0.1, 1e-7, 1.0], dtype=np.float32),
            "p1": [np.inf, -0.0, 7.0],
            "p2": [np.float64(1 / 3), 123456789.0, 2.5e-300],
        }
        | changed
    )
    expected = frame.to_csv(index=False, float_format="%.9g", lineterminator="\n")
    assert tables.csv_bytes(frame, float_format="%.9g") == expected.encode("utf-8")
    assert "0.100000001" in expected  # float32 written by its own digits
    fast = tables._with_trailing_floats(frame, "%.9g")
    assert (fast is not None) == (not changed)  # the row-at-a-time path, where it applies
