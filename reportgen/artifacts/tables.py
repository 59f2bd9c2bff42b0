"""A run's CSV files: their columns, and the one way each is written and read back.

``history.csv`` holds one row per model and epoch, ``predictions.csv`` one
row per model and test image, ``comparison.csv`` one row per model,
``per_class.csv`` one row per model and class (:class:`ClassRow`).  Every
CSV reportgen writes (these, and a comparison's and a sweep's tables) goes
through :func:`csv_bytes`: no index column, ``\\n`` line ends, UTF-8, so
equal tables are equal bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import Manifest, read_artifact, validation_problem
from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.significance import (
    ComparisonRow,
)
from reportgen.core.errors import RunDirError
from reportgen.core.text import first_few

HISTORY_COLUMNS = (
    "model", "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
)  # fmt: skip
# The first columns of predictions.csv; "file" follows "index" for an image folder, and one
# probability column per class, p0, p1, …, ends each row.
PREDICTION_COLUMNS = ("model", "index", "label", "label_name", "prediction", "prediction_name")
# curves/<model>.csv: one model's rows of history.csv, without the model column.
CURVE_COLUMNS = HISTORY_COLUMNS[1:]
# confusion/<model>.csv: one row per cell of the confusion matrix, classes by name.
CONFUSION_COLUMNS = ("actual", "predicted", "count")
# Nine significant digits: every float32 probability reads back as the same float32, so a
# run's predictions.csv re-reports (models.NAME.predictions) to the same numbers.
PROBABILITY_FORMAT = "%.9g"


class ClassRow(BaseModel):
    """One row of ``per_class.csv``: one model's numbers for one class, from ``metrics.json``.

    The report shows the worst classes of each per-class table; this file
    holds every class.  A value that was not measured (the logits were not
    finite, a class without test images has no AUC) is an empty cell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="model name")
    label: int = Field(ge=0, description="the class, by index")
    label_name: str = Field(description="the class, by name")
    support: int = Field(ge=0, description="test images of the class")
    precision: float = Field(description="of the predictions of this class, the share right")
    precision_low: float = Field(description="bootstrap interval of precision: lower bound")
    precision_high: float = Field(description="… upper bound")
    recall: float = Field(description="of the test images of this class, the share found")
    recall_low: float = Field(description="bootstrap interval of recall: lower bound")
    recall_high: float = Field(description="… upper bound")
    f1: float = Field(description="harmonic mean of precision and recall")
    f1_low: float = Field(description="bootstrap interval of F1: lower bound")
    f1_high: float = Field(description="… upper bound")
    errors: int = Field(ge=0, description="test images of the class misclassified")
    error_rate: float = Field(description="errors / support = 1 − recall")
    top_wrong_prediction: int | None = Field(
        description="the most frequent wrong prediction, by index (empty without errors)"
    )
    top_wrong_prediction_name: str | None = Field(description="… by name")
    top_wrong_count: int = Field(ge=0, description="how often it was predicted")
    auc: float | None = Field(description="one-vs-rest ROC AUC")
    average_precision: float | None = Field(description="one-vs-rest average precision")
    recall_difference: float | None = Field(
        description="this model's recall minus the first model's, on the second model's rows "
        "of a run that compares two (empty otherwise)"
    )
    recall_difference_low: float | None = Field(description="its paired bootstrap interval: low")
    recall_difference_high: float | None = Field(description="… high")
    recall_p_value: float | None = Field(description="exact McNemar test on the class's images")
    recall_p_adjusted: float | None = Field(description="Holm-adjusted over every class")
    recall_significant: bool | None = Field(description="recall_p_adjusted < alpha")


PER_CLASS_COLUMNS = tuple(ClassRow.model_fields)
# Columns of whole numbers that may be empty: written as integers, not as 3.0.
_OPTIONAL_INTEGERS = ("top_wrong_prediction",)


def csv_bytes(frame: pd.DataFrame, *, float_format: str | None = None) -> bytes:
    """Return a table as CSV bytes: no index, ``\\n`` line ends, floats that round-trip.

    ``float_format`` (a %-format) writes every float column as pandas'
    ``to_csv(float_format=...)`` would, byte for byte, a missing value as an
    empty cell.
    """
    if float_format is not None:
        text = _with_trailing_floats(frame, float_format)
        if text is not None:
            return text.encode("utf-8")
        frame = _floats_formatted(frame, float_format)
    text = frame.to_csv(index=False, lineterminator="\n")
    return text.encode("utf-8")


def _with_trailing_floats(frame: pd.DataFrame, float_format: str) -> str | None:
    """Return the CSV text of a table whose float columns end each row, or None for another.

    Each row's floats are formatted by one ``%`` of a row-long format (the
    probabilities of predictions.csv); pandas writes the columns before them
    and the header.  None, for the general path, when the floats are not a
    trailing block, a float is missing, or a cell of the other columns holds
    a line break (the lines would not pair up).
    """
    floats = [name for name in frame.columns if pd.api.types.is_float_dtype(frame[name].dtype)]
    leading = len(frame.columns) - len(floats)
    if not floats or leading < 2 or list(frame.columns[leading:]) != floats or frame.empty:
        return None
    values = frame[floats].to_numpy()
    if np.isnan(values).any():
        return None
    head = frame.iloc[:0].to_csv(index=False, lineterminator="\n")
    lines = frame.iloc[:, :leading].to_csv(index=False, header=False, lineterminator="\n")
    rows = lines.split("\n")[:-1]
    if len(rows) != len(frame):
        return None
    row_format = ",".join([float_format] * len(floats))
    body = [
        f"{row},{row_format % tuple(numbers)}"
        for row, numbers in zip(rows, values.tolist(), strict=True)
    ]
    return head + "\n".join(body) + "\n"


def _floats_formatted(frame: pd.DataFrame, float_format: str) -> pd.DataFrame:
    """Return ``frame`` with its float columns as strings formatted by ``float_format``.

    pandas formats each value through several Python calls; one ``%`` per
    value over plain floats is many times faster (predictions.csv holds a
    probability per test image, class and model: millions at hundreds of classes).
    """
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_float_dtype(values.dtype):
            columns[name] = [
                "" if value != value else float_format % value  # NaN: an empty cell
                for value in values.to_numpy().tolist()
            ]
        else:
            columns[name] = values
    return pd.DataFrame(columns, index=frame.index)


def history_frame(histories: Mapping[str, Sequence[Mapping[str, float]]]) -> pd.DataFrame:
    """Return ``history.csv``'s table: every model's epochs (model → epoch records), in order."""
    rows = [{"model": name, **record} for name, records in histories.items() for record in records]
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def curves_frame(history: pd.DataFrame, model: str) -> pd.DataFrame:
    """Return ``curves/<model>.csv``'s table: ``model``'s rows of ``history.csv``, epoch first."""
    rows = history[history["model"] == model]
    return rows.loc[:, list(CURVE_COLUMNS)].reset_index(drop=True)


def confusion_frame(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> pd.DataFrame:
    """Return ``confusion/<model>.csv``'s table: every cell (actual, predicted, count), row-major.

    Aggregated, so a plotting tool reads k² rows instead of one per test image.
    """
    counts = np.asarray(matrix, dtype=np.int64).reshape(len(classes), len(classes))
    names = np.asarray(classes, dtype=object)
    actual, predicted, count = CONFUSION_COLUMNS
    columns = {actual: np.repeat(names, len(names)), predicted: np.tile(names, len(names)),
               count: counts.ravel()}  # fmt: skip
    return pd.DataFrame(columns, columns=list(CONFUSION_COLUMNS))


def predictions_frame(
    probabilities: Mapping[str, np.ndarray],
    *,
    labels: np.ndarray,
    index: np.ndarray,
    classes: Sequence[str],
    files: Sequence[str] = (),
) -> pd.DataFrame:
    """Return ``predictions.csv``'s table: per model and test image, its label and prediction.

    ``probabilities`` maps each model to its ``[N, classes]`` probabilities; a
    prediction is the most probable class (the lowest on ties).  Classes
    appear by index and by name; with ``files`` (an image folder), each row
    names its test image.
    """
    frames = []
    names = np.asarray(classes, dtype=object)
    named_files = {"file": list(files)} if files else {}
    for model, proba in probabilities.items():
        predicted = proba.argmax(axis=1)
        frame = pd.DataFrame(
            {"model": model, "index": index, **named_files, "label": labels,
             "label_name": names[labels], "prediction": predicted,
             "prediction_name": names[predicted]}
        )  # fmt: skip
        columns = [f"p{k}" for k in range(proba.shape[1])]
        frames.append(pd.concat([frame, pd.DataFrame(proba, columns=columns)], axis=1))
    return pd.concat(frames, ignore_index=True)


def comparison_frame(rows: Sequence[ComparisonRow]) -> pd.DataFrame:
    """Return ``comparison.csv``'s table: ``metrics.json``'s comparison rows."""
    return pd.DataFrame([row.model_dump() for row in rows])


def class_rows(metrics: Metrics) -> list[ClassRow]:
    """Return ``per_class.csv``'s rows: every model's classes, models in order, class 0 first."""
    names = metrics.dataset.classes
    differences = {}
    if metrics.significance is not None:  # on the second model's rows: its change from the first
        compared = metrics.significance.models[1]
        differences = {
            (compared, row.label): row for row in metrics.significance.class_recall.classes
        }
    rows = []
    for model, measured in metrics.models.items():
        ranked = measured.one_vs_rest.classes if measured.one_vs_rest is not None else []
        areas = {row.label: row for row in ranked}
        for scores, errors in zip(
            measured.classification_report.classes, measured.class_errors, strict=True
        ):
            label = scores.label
            area = areas.get(label)
            difference = differences.get((model, label))
            wrong = errors.top_wrong_prediction
            rows.append(
                ClassRow(
                    model=model, label=label, label_name=names[label], support=scores.support,
                    precision=scores.precision, precision_low=scores.precision_ci.low,
                    precision_high=scores.precision_ci.high,
                    recall=scores.recall, recall_low=scores.recall_ci.low,
                    recall_high=scores.recall_ci.high,
                    f1=scores.f1, f1_low=scores.f1_ci.low, f1_high=scores.f1_ci.high,
                    errors=errors.errors, error_rate=errors.error_rate,
                    top_wrong_prediction=wrong,
                    top_wrong_prediction_name=None if wrong is None else names[wrong],
                    top_wrong_count=errors.top_wrong_count,
                    auc=area.auc if area else None,
                    average_precision=area.average_precision if area else None,
                    recall_difference=difference.estimate if difference else None,
                    recall_difference_low=difference.low if difference else None,
                    recall_difference_high=difference.high if difference else None,
                    recall_p_value=difference.p_value if difference else None,
                    recall_p_adjusted=difference.p_adjusted if difference else None,
                    recall_significant=difference.significant if difference else None,
                )
            )  # fmt: skip
    return rows


def per_class_frame(metrics: Metrics) -> pd.DataFrame:
    """Return ``per_class.csv``'s table: :func:`class_rows`, one column per field."""
    frame = pd.DataFrame([row.model_dump() for row in class_rows(metrics)],
                         columns=list(PER_CLASS_COLUMNS))  # fmt: skip
    return frame.astype({column: "Int64" for column in _OPTIONAL_INTEGERS})


def _read_csv(
    root: Path,
    rel: str,
    manifest: Manifest,
    columns: Sequence[str],
    **options: Any,
) -> pd.DataFrame:
    data = read_artifact(root, rel, manifest)
    try:
        frame = pd.read_csv(io.BytesIO(data), **options)
    except (ValueError, pd.errors.ParserError) as e:
        raise RunDirError(f"{root / rel}: unreadable CSV: {e}") from e
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise RunDirError(f"{root / rel}: lacks column(s) {first_few(missing)}")
    return frame


def read_history(root: Path, manifest: Manifest) -> pd.DataFrame:
    """Return a run's checked ``history.csv``: listed, unchanged, with every history column."""
    return _read_csv(root, RUN_FILES.history.as_posix(), manifest, HISTORY_COLUMNS)


def read_predictions(root: Path, manifest: Manifest) -> pd.DataFrame:
    """Return a run's checked ``predictions.csv``: listed, unchanged, with its leading columns."""
    return _read_csv(root, RUN_FILES.predictions.as_posix(), manifest, PREDICTION_COLUMNS)


def read_per_class(root: Path, manifest: Manifest) -> list[ClassRow]:
    """Return a run's checked ``per_class.csv``: listed, unchanged, every row a :class:`ClassRow`.

    Floats are read back exactly as written (``csv_bytes`` writes each one so
    that it round-trips, and pandas reads it so), so a row equals the
    ``metrics.json`` value it came from.
    """
    rel = RUN_FILES.per_class.as_posix()
    # Class names are text whatever they look like ("7", "NA"); only an optional cell is empty.
    optional = [name for name, field in ClassRow.model_fields.items()
                if type(None) in get_args(field.annotation)]  # fmt: skip
    frame = _read_csv(
        root, rel, manifest, PER_CLASS_COLUMNS,
        dtype={"model": str, "label_name": str, "top_wrong_prediction_name": str},
        keep_default_na=False, na_values={name: [""] for name in optional},
    )  # fmt: skip
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    rows = []
    for line, record in enumerate(records, start=2):  # line 1 is the header
        try:
            rows.append(ClassRow.model_validate(record))
        except ValidationError as e:
            raise RunDirError(f"{root / rel}: line {line}: {validation_problem(e)}") from e
    return rows
