"""A run's CSV files: their columns, and the one way each is written and read back.

``history.csv`` holds one row per model and epoch, ``predictions.csv`` one
row per model and test image, ``comparison.csv`` one row per model.  Every
CSV reportgen writes (these, and a comparison's and a sweep's tables) goes
through :func:`csv_bytes`: no index column, ``\\n`` line ends, UTF-8, so
equal tables are equal bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import Manifest, read_artifact
from reportgen.artifacts.metrics import ComparisonRow
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
PROBABILITY_FORMAT = "%.6f"  # six decimals: the probabilities as a reader needs them


def csv_bytes(frame: pd.DataFrame, *, float_format: str | None = None) -> bytes:
    """Return a table as CSV bytes: no index, ``\\n`` line ends, floats that round-trip."""
    text = frame.to_csv(index=False, float_format=float_format, lineterminator="\n")
    return text.encode("utf-8")


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
    rows = [
        (classes[actual], classes[predicted], int(count))
        for actual, row in enumerate(matrix)
        for predicted, count in enumerate(row)
    ]
    return pd.DataFrame(rows, columns=list(CONFUSION_COLUMNS))


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


def _read_csv(root: Path, rel: str, manifest: Manifest, columns: Sequence[str]) -> pd.DataFrame:
    data = read_artifact(root, rel, manifest)
    try:
        frame = pd.read_csv(io.BytesIO(data))
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
