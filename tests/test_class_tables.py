"""The report's per-class tables: the worst K of N, ties to the larger class, then by name."""

from __future__ import annotations

import pytest

from reportgen.artifacts.model_metrics import (
    ClassError,
)
from reportgen.report import class_tables

NAMES = ["delta", "alpha", "charlie", "bravo", "echo"]


def _error(label: int, support: int, errors: int) -> ClassError:
    return ClassError(
        label=label, support=support, errors=errors, error_rate=errors / support,
        top_wrong_prediction=None if errors == 0 else (label + 1) % 5, top_wrong_count=errors,
    )  # fmt: skip


# Every class is wrong half the time except "echo"; "charlie" and "bravo" have 20 test
# images, "delta" and "alpha" 10.
ERRORS = [_error(0, 10, 5), _error(1, 10, 5), _error(2, 20, 10), _error(3, 20, 10),
          _error(4, 10, 0)]  # fmt: skip


def _errors(limit: int) -> class_tables.ClassTable[ClassError]:
    return class_tables.bounded(
        ERRORS, lambda row: (-row.error_rate,), support=lambda row: row.support, names=NAMES,
        limit=limit, keep_order=True, full_table="per_class.csv",
    )  # fmt: skip


def test_a_cut_table_ranks_ties_by_support_then_by_name_and_says_so() -> None:
    table = _errors(3)
    assert [NAMES[row.label] for row in table.rows] == ["bravo", "charlie", "alpha"]
    assert table.cut and table.total == 5
    assert table.note == "3 of 5 classes shown; every class in per_class.csv"


@pytest.mark.parametrize("limit", [5, 20])
def test_a_table_that_fits_keeps_class_order_and_says_nothing(limit: int) -> None:
    table = _errors(limit)
    assert list(table.rows) == ERRORS
    assert not table.cut and table.note is None


def test_a_ranked_table_that_fits_is_still_ranked() -> None:
    table = class_tables.bounded(
        ERRORS, lambda row: (-row.error_rate,), support=lambda row: row.support, names=NAMES,
        limit=20,
    )  # fmt: skip
    assert [NAMES[row.label] for row in table.rows] == [
        "bravo", "charlie", "alpha", "delta", "echo",
    ]  # fmt: skip
    assert table.note is None


def test_thousands_are_counted_with_separators() -> None:
    table = class_tables.ClassTable(rows=tuple(ERRORS[:2]), total=1_300, full_table="metrics.json")
    assert table.note == "2 of 1,300 classes shown; every class in metrics.json"
