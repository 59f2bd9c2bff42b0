"""Tests for the metrics.json contract: what runs write fits it, anything else is one clear line.

The schema table of docs/metrics-schema.md is checked against the models here, field by
field, so the documentation cannot drift from the types either; rerun with
``REPORTGEN_UPDATE_README=1`` to rewrite the table after changing a field.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from reportgen.artifacts import manifest
from reportgen.artifacts.metrics import Metrics, parse_metrics, read_metrics
from reportgen.cli.main import main
from reportgen.core.errors import RunDirError
from reportgen.report import mail, run_page
from tests import synthetic

SCHEMA_PAGE = Path(__file__).resolve().parents[1] / "docs" / "metrics-schema.md"
UPDATE_README = os.environ.get("REPORTGEN_UPDATE_README") == "1"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.make_run(tmp_path_factory.mktemp("metrics") / "run")


@pytest.fixture
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


# --------------------------------------------------------------------------- what runs write


def test_the_synthetic_run_reads_back_equal(run_dir: Path) -> None:
    assert read_metrics(run_dir, manifest.read_manifest(run_dir)) == synthetic.metrics()


def test_a_pipeline_run_fits_the_contract_byte_for_byte(quick_run: Path) -> None:
    text = (quick_run / "metrics.json").read_text()
    document = read_metrics(quick_run, manifest.read_manifest(quick_run))
    assert json.dumps(document.dump(), indent=2, sort_keys=True) + "\n" == text
    assert list(document.models) == ["baseline", "regularized"]


# --------------------------------------------------------------------------- refusals


def _edit(root: Path, edit: Any) -> None:
    """Edit metrics.json as JSON and record its new hash, as a consistent (if broken) run."""
    path = root / "metrics.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    synthetic.rehash(root)


BASELINE = "models.baseline"
_NOWHERE = {"epoch": None, "step": None, "last_finite_loss": None}
EDITS: dict[str, tuple[Any, str]] = {
    "number is a string": (
        lambda m: m["models"]["baseline"].update(test_accuracy="high"),
        f"{BASELINE}.test_accuracy: Input should be a valid number",
    ),
    "count is a boolean": (
        lambda m: m["models"]["baseline"].update(epochs=True),
        f"{BASELINE}.epochs: Input should be a valid integer",
    ),
    "accuracy above 1": (
        lambda m: m["models"]["baseline"].update(test_accuracy=1.5),
        f"{BASELINE}.test_accuracy: Input should be less than or equal to 1",
    ),
    "older file without a field": (
        lambda m: m["models"]["baseline"].pop("accuracy_ci"),
        f"{BASELINE}.accuracy_ci: Field required",
    ),
    "unknown field": (
        lambda m: m["models"]["baseline"].update(accuracy=0.9),
        f"{BASELINE}.accuracy: Extra inputs are not permitted",
    ),
    "nested in a list": (
        lambda m: m["models"]["baseline"]["class_errors"][3].update(label="three"),
        f"{BASELINE}.class_errors[3].label: Input should be a valid integer",
    ),
    "no significance": (lambda m: m.pop("significance"), "significance: Field required"),
    "no p-value": (
        lambda m: m["significance"]["mcnemar"].pop("p_value"),
        "significance.mcnemar.p_value: Field required",
    ),
    "another schema": (
        lambda m: m.update(schema=1),
        "schema 1 is not schema 3, which this version of reportgen reads: run it again",
    ),
    "not an object": (lambda m: m.clear(), "schema: Field required (and 6 more)"),
    "a figure outside the run": (
        lambda m: m["figures"].update(lr="../../outside.png"),
        "figures: '../../outside.png' is not a relative path inside the run",
    ),
    "a model the paired test does not know": (
        lambda m: m["significance"].update(models=["baseline", "other"]),
        "significance.models: no model 'other'",
    ),
    "a worst class without its row": (
        lambda m: m["models"]["baseline"].update(class_errors=[]),
        f"{BASELINE}: worst_classes: no class_errors row for ",
    ),
    "a figure not listed": (
        lambda m: m["figures"].pop("baseline_weights"),
        "models.baseline.figures.weights: figure 'baseline_weights' is not listed under figures",
    ),
    "a probability measure missing although the logits are finite": (
        lambda m: m["models"]["baseline"].update(calibration=None),
        f"{BASELINE}: calibration: null although the logits are finite",
    ),
    "a divergence that is none": (
        lambda m: m["models"]["baseline"].update(divergence=_NOWHERE),
        f"{BASELINE}.divergence: a divergence needs an epoch or finite_logits false",
    ),
    "a divergence at an epoch without its step": (
        lambda m: m["models"]["baseline"].update(divergence={**_NOWHERE, "epoch": 1}),
        f"{BASELINE}.divergence: epoch and step are both set or both null",
    ),
    "a probability measure of logits that are not finite": (
        lambda m: m["models"]["baseline"].update(divergence={**_NOWHERE, "finite_logits": False}),
        f"{BASELINE}: test_loss: measured although the logits are not finite",
    ),
    "an unknown diagnosis": (
        lambda m: m["models"]["baseline"]["diagnosis"]["labels"].append("fine"),
        f"{BASELINE}.diagnosis.labels[1]: Input should be 'overfitting', 'underfitting'",
    ),
}


@pytest.mark.parametrize(("edit", "match"), EDITS.values(), ids=EDITS.keys())
def test_a_malformed_file_is_one_line_naming_the_field(
    copy_run: Path, edit: Any, match: str
) -> None:
    _edit(copy_run, edit)
    with pytest.raises(RunDirError) as error:
        read_metrics(copy_run, manifest.read_manifest(copy_run))
    assert str(error.value).startswith(f"{copy_run / 'metrics.json'}: {match}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "Invalid JSON: key must be a string at line 1 column 2"),
        ("[]", "Input should be an object"),
    ],
)
def test_what_is_not_a_metrics_document(text: str, match: str) -> None:
    with pytest.raises(RunDirError, match=re.escape(f"metrics.json: {match}")):
        parse_metrics(text)


def test_nan_is_refused_even_where_json_allows_it() -> None:
    document = synthetic.metrics().dump()
    document["models"]["baseline"]["test_loss"] = float("nan")
    with pytest.raises(RunDirError, match=r"test_loss: Input should be a finite number"):
        parse_metrics(json.dumps(document))


@pytest.mark.parametrize("command", ["render", "email", "compare"])
def test_every_reader_exits_2_naming_the_field(
    copy_run: Path, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(copy_run, EDITS["number is a string"][0])
    other = synthetic.make_run(tmp_path / "other")
    args = {
        "render": ["render", str(copy_run)],
        "email": [
            "email",
            str(copy_run),
            "--to",
            "a@example.org",
            "--eml-out",
            str(tmp_path / "m"),
        ],
        "compare": ["compare", str(copy_run), str(other), "--out", str(tmp_path / "c")],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"reportgen: error: {copy_run / 'metrics.json'}: "
        "models.baseline.test_accuracy: Input should be a valid number\n"
    )


def _logits_not_finite(document: dict[str, Any]) -> None:
    """Make the regularized model one whose logits were not finite, as a run writes it."""
    model = document["models"]["regularized"]
    model.update(divergence={**_NOWHERE, "finite_logits": False}, test_loss=None,
                 calibration=None, one_vs_rest=None, attributions=None)  # fmt: skip
    model["figure_notes"].update(
        {kind: f"The {kind} figure cannot be drawn." for kind in ("reliability", "roc", "pr")}
    )


def test_every_reader_takes_a_model_whose_logits_are_not_finite(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(copy_run, _logits_not_finite)
    model = read_metrics(copy_run, manifest.read_manifest(copy_run)).models["regularized"]
    assert not model.finite_logits and model.divergence is not None
    assert main(["--quiet", "render", str(copy_run)]) == 0
    html = (copy_run / "report.html").read_text()
    assert "This model diverged." in html
    assert html.count("Not measured: the regularized model&#39;s logits are not finite.") == 2
    assert "The roc figure cannot be drawn." in html
    page = run_page.build_context(copy_run, environ={})
    assert "regularized" in mail.default_subject(page).split("(diverged)")[0]
    assert "WARNING: The regularized model's logits" in mail.plain_text(page)
    other = synthetic.make_run(tmp_path / "other")
    assert main(["--quiet", "compare", str(copy_run), str(other), "--out", str(tmp_path / "c"),
                 "--no-pdf"]) == 0  # fmt: skip
    assert "diverged" in (tmp_path / "c" / "compare.html").read_text()
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- the schema page


def _type_name(annotation: Any) -> str:
    """Return how the schema page names a field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " or ".join(json.dumps(arg) for arg in args)
    if origin is list:
        return f"array of {_type_name(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(_type_name(arg) for arg in args) + "]"
    if origin is dict:
        return f"object of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
    return names[annotation]


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """Return the model inside a field's type, and how a path steps into it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _nested(args[0])
    if origin in (types.UnionType, typing.Union):
        found = [_nested(arg) for arg in args if arg is not type(None)]
        return found[0] if len(found) == 1 else (None, "")
    if origin is list:
        return _nested(args[0])[0], "[]"
    if origin is dict:
        return _nested(args[1])[0], ".*"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    return None, ""


def schema_rows(model: type[BaseModel] = Metrics, prefix: str = "") -> Iterator[tuple[str, ...]]:
    """Yield ``(field path, type, description)`` for every field of ``model``, depth first."""
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        yield f"`{path}`", _type_name(field.annotation), field.description or ""
        inner, step = _nested(field.annotation)
        if inner is not None:
            yield from schema_rows(inner, f"{path}{step}.")


def _schema_table() -> tuple[str, str]:
    text = SCHEMA_PAGE.read_text(encoding="utf-8")
    table = re.search(r"\| field \| type \| description \|\n(?:\|.*\|\n)+", text)
    assert table is not None, "docs/metrics-schema.md has no field table"
    return text, table.group(0)


def test_every_field_is_documented_in_the_schema_page() -> None:
    rows = ["| field | type | description |", "| --- | --- | --- |"]
    rows += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
             for row in schema_rows()]  # fmt: skip
    expected = "\n".join(rows) + "\n"
    text, table = _schema_table()
    if UPDATE_README:
        SCHEMA_PAGE.write_text(text.replace(table, expected), encoding="utf-8")
        table = expected
    assert table == expected, (
        "docs/metrics-schema.md's table differs from reportgen/artifacts/metrics.py; if the "
        "change is intended, rerun with REPORTGEN_UPDATE_README=1"
    )


def test_every_field_has_a_description() -> None:
    missing = [path for path, _, description in schema_rows() if not description]
    assert missing == []
