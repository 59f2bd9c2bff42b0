"""A model's test predictions read from a file: ``models.NAME.predictions``, no network at all.

Three formats, told apart by the file's suffix and columns:

- a CSV (``.csv``) with an ``index`` column (the image's position in the
  configured test split), a ``label`` column and one score column per class:
  ``p0 … p{K-1}`` are probabilities, ``logit0 … logit{K-1}`` are logits.
  Other columns are ignored, so a run's own ``predictions.csv`` is such a
  file; when it has a ``model`` column, the rows of the model of the same
  name are read (or the only model's, when there is one);
- an ``.npz`` with a ``probabilities`` or a ``logits`` array ``[N, K]``, a
  ``labels`` array ``[N]`` and optionally an ``index`` array ``[N]`` (without
  it, row i is test image i).

The scores are read into one preallocated float32 array ``[N_test, K]``,
row i holding test image i: a CSV in chunks of rows, an ``.npz`` array as it
is stored (one array at a time).  Every problem is one line naming the key
(exit status 2): scores that are not finite, probabilities outside [0, 1] or
whose row does not sum to 1 within :data:`SUM_TOLERANCE`, a class count that
is not the data's, an index outside the test split, given twice or not at
all, a label that is not the data's label at that index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from reportgen.core.errors import ConfigError
from reportgen.core.text import count, first_few, one_line

ScoreKind = Literal["probabilities", "logits"]
# |Σ_k p_k − 1| allowed per row: float32 softmax outputs are within 1e-6, and probabilities
# written with four decimals over tens of classes stay well within this.
SUM_TOLERANCE = 1e-3
_NAN_TEXT = ["", "nan", "NaN", "NAN", "NA", "N/A", "null"]
CHUNK_ROWS = 65_536  # rows parsed at a time: a few MB of text and scores
_SCORE_COLUMN = {"probabilities": re.compile(r"p(\d+)"), "logits": re.compile(r"logit(\d+)")}
_NPZ_SCORES: tuple[ScoreKind, ...] = ("probabilities", "logits")


@dataclass(frozen=True)
class Predictions:
    """A model's test scores, in test order, and what they are."""

    scores: np.ndarray  # [N_test, K] float32: row i is test image i
    kind: ScoreKind


class _Problem(Exception):
    """A problem with the file, as the second half of its one line."""


def read_predictions(
    path: Path,
    *,
    key: str,
    labels: np.ndarray,
    num_classes: int,
    model: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Predictions:
    """Return the predictions in ``path`` for the test split whose labels are ``labels``.

    ``key`` names the setting in messages (``models.baseline.predictions``);
    ``model`` picks a CSV's rows when it has a ``model`` column.

    Raises
    ------
    ConfigError
        The file is missing, unreadable or its contents do not fit the test
        split (one line naming ``key``, the file and the first problem).
    """
    if not path.is_file():
        raise ConfigError(f"{key}: {path}: no such file")
    try:
        if path.suffix.lower() == ".npz":
            return _read_npz(path, labels=labels, num_classes=num_classes)
        return _read_csv(path, labels=labels, num_classes=num_classes, model=model,
                         chunk_rows=chunk_rows)  # fmt: skip
    except _Problem as e:
        raise ConfigError(f"{key}: {path}: {e}") from e
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ConfigError(f"{key}: {path}: unreadable: {one_line(e)}") from e


# --------------------------------------------------------------------------- checks


def score_columns(columns: list[str], num_classes: int) -> tuple[ScoreKind, list[str]]:
    """Return whether the columns hold probabilities or logits, and their names in class order."""
    found = {
        kind: sorted((int(m.group(1)), c) for c in columns if (m := pattern.fullmatch(c)))
        for kind, pattern in _SCORE_COLUMN.items()
    }
    present = [kind for kind, named in found.items() if named]
    if len(present) != 1:
        what = "both p<k> and logit<k>" if present else "no p<k> or logit<k>"
        raise _Problem(
            f"has {what} columns; give one score column per class, p0, p1, … (probabilities) "
            "or logit0, logit1, … (logits)"
        )
    kind: ScoreKind = "probabilities" if present[0] == "probabilities" else "logits"
    classes = [k for k, _ in found[kind]]
    if classes != list(range(num_classes)):
        prefix = "p" if kind == "probabilities" else "logit"
        raise _Problem(
            f"has {count(len(classes), 'score column')} "
            f"({first_few([c for _, c in found[kind]], 3)}); "
            f"the data have {num_classes} classes: {prefix}0 … {prefix}{num_classes - 1}"
        )
    return kind, [c for _, c in found[kind]]


RowName = Callable[[int], str]  # a block's row i as a message names it: "line 7", "row 5"


def check_scores(block: np.ndarray, kind: ScoreKind, *, row: RowName) -> None:
    """Refuse scores that are not finite, or probabilities that are not a distribution."""
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        raise _Problem(f"{row(int(np.argmin(finite)))}: a score is not finite (NaN or infinite)")
    if kind == "logits":
        return
    inside = ((block >= 0) & (block <= 1)).all(axis=1)
    if not inside.all():
        raise _Problem(f"{row(int(np.argmin(inside)))}: a probability outside [0, 1]")
    total = block.sum(axis=1, dtype=np.float64)
    summed = np.abs(total - 1.0) <= SUM_TOLERANCE
    if not summed.all():
        bad = int(np.argmin(summed))
        raise _Problem(
            f"{row(bad)}: the probabilities sum to {total[bad]:.6g}, not 1 (within "
            f"{SUM_TOLERANCE:g}); logits belong in logit<k> columns"
        )


class _Filling:
    """The scores in test order, and which test positions have been given."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        self.labels = labels
        self.scores = scores
        self.seen = np.zeros(len(labels), dtype=bool)

    def put(self, index: np.ndarray, given: np.ndarray, block: np.ndarray | None,
            row: RowName) -> None:  # fmt: skip
        """Check a block's positions and labels, and copy its scores in (None: in place)."""
        n = len(self.labels)
        outside = (index < 0) | (index >= n)
        if outside.any():
            at = int(np.argmax(outside))
            raise _Problem(
                f"{row(at)}: index {index[at]} is outside the test split of "
                f"{count(n, 'image')} (positions 0 … {n - 1}; check data.limit_test)"
            )
        order = np.argsort(index, kind="stable")
        repeated = np.flatnonzero(np.diff(index[order]) == 0)
        if len(repeated):
            raise _Problem(f"index {index[order[repeated[0]]]} is given twice")
        again = self.seen[index]
        if again.any():
            raise _Problem(f"index {index[int(np.argmax(again))]} is given twice")
        wrong = given != self.labels[index]
        if wrong.any():
            at = int(np.argmax(wrong))
            raise _Problem(
                f"{row(at)}: label {given[at]} at index {index[at]}, but the test split's "
                f"label there is {self.labels[index[at]]} (another split or another order?)"
            )
        if block is not None:
            self.scores[index] = block
        self.seen[index] = True

    def done(self) -> np.ndarray:
        if not self.seen.all():
            absent = np.flatnonzero(~self.seen)
            listed = first_few([str(i) for i in absent[:4]], 3)
            raise _Problem(
                f"{count(len(absent), 'test image')} of {len(self.seen):,} have no row "
                f"(missing index {listed})"
            )
        return self.scores


# --------------------------------------------------------------------------- CSV


def _csv_chunks(path: Path, usecols: list[str], dtypes: dict[str, str],
                chunk_rows: int) -> Iterator[pd.DataFrame]:  # fmt: skip
    # A model's name is text whatever it looks like ("NA"); a score may be written NaN.
    missing = {c: _NAN_TEXT for c in usecols if c != "model"}
    yield from pd.read_csv(path, usecols=usecols, dtype=dtypes, chunksize=chunk_rows,
                           keep_default_na=False, na_values=missing)  # fmt: skip


def _wanted_model(path: Path, model: str | None, chunk_rows: int) -> str:
    """Return which model's rows of a CSV with a ``model`` column to read."""
    names: list[str] = []
    for chunk in _csv_chunks(path, ["model"], {"model": "str"}, chunk_rows):
        names += [n for n in pd.unique(chunk["model"]) if n not in names]
    if model in names:
        return model
    if len(names) == 1:
        return names[0]
    raise _Problem(
        f"holds the predictions of {first_few([repr(n) for n in names], 5)} and none named "
        f"{model!r}; choose one with predictions_model"
    )


def _read_csv(
    path: Path, *, labels: np.ndarray, num_classes: int, model: str | None, chunk_rows: int
) -> Predictions:
    columns = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in ("index", "label") if c not in columns]
    if missing:
        raise _Problem(f"lacks the column(s) {', '.join(missing)}")
    kind, scored = score_columns(columns, num_classes)
    wanted = _wanted_model(path, model, chunk_rows) if "model" in columns else None
    usecols = ["index", "label", *scored, *(["model"] if wanted is not None else [])]
    dtypes = {"index": "int64", "label": "int64", "model": "str",
              **dict.fromkeys(scored, "float32")}  # fmt: skip
    filling = _Filling(labels, np.empty((len(labels), num_classes), dtype=np.float32))
    line = 2  # line 1 is the header
    for chunk in _csv_chunks(path, usecols, dtypes, chunk_rows):
        lines = np.arange(line, line + len(chunk))
        line += len(chunk)
        if wanted is not None:
            keep = (chunk["model"] == wanted).to_numpy()
            chunk, lines = chunk[keep], lines[keep]
        block = chunk[scored].to_numpy(dtype=np.float32)

        def row(i: int, lines: np.ndarray = lines) -> str:
            return f"line {lines[i]}"

        check_scores(block, kind, row=row)
        filling.put(chunk["index"].to_numpy(), chunk["label"].to_numpy(), block, row)
    return Predictions(filling.done(), kind)


# --------------------------------------------------------------------------- .npz


def _read_npz(path: Path, *, labels: np.ndarray, num_classes: int) -> Predictions:
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        present = [k for k in _NPZ_SCORES if k in names]
        if len(present) != 1 or "labels" not in names:
            raise _Problem(
                f"holds {first_few(sorted(names), 5) or 'no arrays'}; an .npz needs "
                "'probabilities' or 'logits' (not both), 'labels' and optionally 'index'"
            )
        kind: ScoreKind = present[0]
        given = np.asarray(archive["labels"])
        index = np.asarray(archive["index"]) if "index" in names else None
        scores = archive[kind]  # the one copy of the scores, in the file's dtype
    if scores.ndim != 2 or scores.shape[1] != num_classes:
        raise _Problem(
            f"'{kind}' has shape {list(scores.shape)}; the data have {num_classes} classes: "
            f"[N, {num_classes}]"
        )
    if given.shape != (len(scores),) or not np.issubdtype(given.dtype, np.integer):
        raise _Problem(f"'labels' must be {len(scores):,} integers, one per row of '{kind}'")
    if index is None:
        if len(scores) != len(labels):
            raise _Problem(
                f"has {count(len(scores), 'row')} and no 'index'; the test split has "
                f"{count(len(labels), 'image')}"
            )
        index = np.arange(len(scores))
    elif index.shape != (len(scores),) or not np.issubdtype(index.dtype, np.integer):
        raise _Problem(f"'index' must be {len(scores):,} integers, one per row of '{kind}'")
    scores = scores.astype(np.float32, copy=False)
    for start in range(0, len(scores), CHUNK_ROWS):  # a block at a time: no big temporaries

        def row(i: int, start: int = start) -> str:
            return f"row {start + i}"

        check_scores(scores[start : start + CHUNK_ROWS], kind, row=row)
    index = index.astype(np.int64, copy=False)
    given = given.astype(np.int64, copy=False)
    if len(scores) == len(labels) and np.array_equal(index, np.arange(len(labels))):
        filling = _Filling(labels, scores)  # in test order already: checked, kept as it is
        filling.put(index, given, None, lambda i: f"row {i}")
    else:
        filling = _Filling(labels, np.empty((len(labels), num_classes), dtype=np.float32))
        filling.put(index, given, scores, lambda i: f"row {i}")
    return Predictions(filling.done(), kind)
