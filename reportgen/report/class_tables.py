"""The report's per-class tables, bounded: the worst rows of each, whatever the class count.

Each table ranks the classes by its own measure (lowest F1, highest error
rate, lowest AUC, clearest recall difference); ties go to the class with
more test images, then by name, so the order never depends on how the
classes happen to be numbered.  A table shows at most ``report.table_rows``
rows and says how many it leaves out; ``per_class.csv`` holds every class.
With no more classes than that, the classification report and the
per-class errors keep their class order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypedDict, TypeVar

from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.model_metrics import (
    ClassError,
    ClassRanking,
    ClassScores,
    ModelMetrics,
)
from reportgen.artifacts.significance import (
    ClassRecallDifference,
    Significance,
)

Row = TypeVar("Row", ClassScores, ClassError, ClassRanking, ClassRecallDifference)
FULL_TABLE = RUN_FILES.per_class.as_posix()


class TableOptions(TypedDict):
    """How every per-class table of a report is bounded."""

    limit: int  # report.table_rows
    full_table: str  # the file that holds every row


@dataclass(frozen=True)
class ClassTable(Generic[Row]):
    """The rows a per-class table shows, and how many classes there are in all."""

    rows: tuple[Row, ...]
    total: int
    full_table: str = FULL_TABLE  # where every row is

    @property
    def cut(self) -> bool:
        """Return whether the table leaves classes out."""
        return len(self.rows) < self.total

    @property
    def note(self) -> str | None:
        """Return the line under a cut table: "20 of 300 classes shown; every class in …"."""
        if not self.cut:
            return None
        return (
            f"{len(self.rows):,} of {self.total:,} classes shown; every class in {self.full_table}"
        )


def ranked(
    rows: Sequence[Row],
    measure: Callable[[Row], tuple[float | bool, ...]],
    *,
    support: Callable[[Row], int],
    names: Sequence[str],
) -> list[Row]:
    """Return ``rows`` ordered by ``measure`` (smallest first), then larger support, then name."""
    return sorted(rows, key=lambda row: (*measure(row), -support(row), names[row.label]))


def bounded(
    rows: Sequence[Row],
    measure: Callable[[Row], tuple[float | bool, ...]],
    *,
    support: Callable[[Row], int],
    names: Sequence[str],
    limit: int,
    keep_order: bool = False,
    full_table: str = FULL_TABLE,
) -> ClassTable[Row]:
    """Return the table of ``rows``: all of them, or the ``limit`` first by :func:`ranked`.

    ``keep_order``: a table that fits keeps the order of ``rows`` (class order)
    instead of the ranking.
    """
    if keep_order and len(rows) <= limit:
        shown: Sequence[Row] = rows
    else:
        shown = ranked(rows, measure, support=support, names=names)[:limit]
    return ClassTable(tuple(shown), len(rows), full_table)


def scores_table(
    model: ModelMetrics, names: Sequence[str], *, limit: int, keep_order: bool, full_table: str
) -> ClassTable[ClassScores]:
    """Return the classification report's rows (or intervals'): lowest F1 first when ranked."""
    return bounded(model.classification_report.classes, lambda row: (row.f1,),
                   support=lambda row: row.support, names=names, limit=limit, keep_order=keep_order,
                   full_table=full_table)  # fmt: skip


def errors_table(
    model: ModelMetrics, names: Sequence[str], *, limit: int, full_table: str
) -> ClassTable[ClassError]:
    """Return the per-class errors: in class order when they fit, else highest error rate first."""
    return bounded(model.class_errors, lambda row: (-row.error_rate,),
                   support=lambda row: row.support, names=names, limit=limit, keep_order=True,
                   full_table=full_table)  # fmt: skip


def ranking_table(
    model: ModelMetrics, names: Sequence[str], *, limit: int, full_table: str
) -> ClassTable[ClassRanking]:
    """Return the one-vs-rest rows, lowest AUC first (undefined last); none when not measured."""
    rows = model.one_vs_rest.classes if model.one_vs_rest is not None else []
    return bounded(rows, lambda row: (row.auc is None, row.auc or 0.0),
                   support=lambda row: row.positives, names=names, limit=limit,
                   full_table=full_table)  # fmt: skip


def recall_table(
    significance: Significance, names: Sequence[str], *, limit: int, full_table: str
) -> ClassTable[ClassRecallDifference]:
    """Return the per-class recall differences, clearest first: adjusted p, then size."""
    return bounded(significance.class_recall.classes,
                   lambda row: (row.p_adjusted, -abs(row.estimate)),
                   support=lambda row: row.support, names=names, limit=limit,
                   full_table=full_table)  # fmt: skip
