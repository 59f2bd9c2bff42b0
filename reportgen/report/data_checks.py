"""What the report says about the data: train–test duplicates and class balance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reportgen.artifacts.catalogue import FIGURES, MANY_CLASSES
from reportgen.artifacts.class_balance import ClassBalance
from reportgen.artifacts.duplicates import SHOWN_PAIRS, Duplicates, SplitDuplicates
from reportgen.artifacts.metrics import Metrics
from reportgen.core.text import count, join, join_some
from reportgen.report.page import Figure

# Reads a run's figure by name, with the alt text and caption to show (run_page.read_figure).
FigureReader = Callable[[str, str, str], Figure]


@dataclass(frozen=True)
class AccuracyRow:
    """One model's test accuracy on every test image and on those without a training duplicate."""

    model: str
    accuracy: float
    low: float
    high: float
    images: int  # test images without a duplicate in training
    accuracy_without: float | None
    low_without: float | None
    high_without: float | None


@dataclass(frozen=True)
class DuplicatesView:
    """The duplicates section: what was found, the gallery, the accuracy without duplicates."""

    found: bool
    sentences: list[str]
    method: str
    figure: Figure | None
    rows: list[AccuracyRow]


@dataclass(frozen=True)
class ClassBalanceView:
    """The class balance section: its figure and the sentence on under-represented classes."""

    figure: Figure
    sentence: str


def _split_phrase(found: SplitDuplicates, split: str) -> str:
    both = found.exact + found.near
    verb = "has" if both == 1 else "have"
    return (f"{count(both, 'test image')} {verb} a duplicate in the {split} split "
            f"({found.exact:,} with the same pixels, {found.near:,} near)")  # fmt: skip


def method_sentence(found: Duplicates) -> str:
    """Return how duplicates are found, in one sentence."""
    return (
        "Exact duplicates have the same pixels; near duplicates are at most "
        f"{found.threshold:g} apart in 1 − cosine similarity of the images made grey, centred "
        f"on their ink (so a shifted copy lines up again) and averaged down to {found.grid} × "
        f"{found.grid}, a threshold fixed for every data set."
    )


def duplicates_sentences(found: Duplicates) -> list[str]:
    """Return what the search found: one sentence when nothing, else the counts and their effect."""
    if found.pairs_total == 0:
        return ["No test image has an exact or near duplicate in the training or validation split."]
    sentences = [_split_phrase(found.train, "training").capitalize() + "; "
                 + _split_phrase(found.val, "validation") + "."]  # fmt: skip
    if found.pairs_total > len(found.pairs):
        sentences.append(f"metrics.json lists the first {len(found.pairs):,} of "
                         f"{found.pairs_total:,} pairs.")  # fmt: skip
    return sentences


def duplicates_view(metrics: Metrics, read: FigureReader) -> DuplicatesView | None:
    """Return the duplicates section, None when the run did not look for them."""
    found = metrics.duplicates
    if found is None:
        return None
    figure = None
    if found.figure is not None:
        shown = min(SHOWN_PAIRS, found.pairs_total)
        alt, caption = FIGURES["duplicates"].describe(
            threshold=f"{found.threshold:g}", shown=shown, total=f"{found.pairs_total:,}"
        )
        figure = read(found.figure, alt, caption)
    rows = []
    for name, model in metrics.models.items():
        without = found.accuracy_without.get(name)
        rows.append(AccuracyRow(
            model=name, accuracy=model.test_accuracy, low=model.accuracy_ci.low,
            high=model.accuracy_ci.high, images=without.images if without else 0,
            accuracy_without=without.accuracy if without else None,
            low_without=without.low if without else None,
            high_without=without.high if without else None,
        ))  # fmt: skip
    return DuplicatesView(found=found.pairs_total > 0, sentences=duplicates_sentences(found),
                          method=method_sentence(found), figure=figure, rows=rows)  # fmt: skip


SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def balance_sentence(balance: ClassBalance, classes: list[str]) -> str:
    """Return one sentence: every class is represented, or which are not, split by split."""
    rule = f"fewer than {balance.under_share:g} × the mean images per class of a split"
    if not balance.under_represented:
        return f"No class is under-represented ({rule}) in any split."
    parts = []
    for split, word in SPLIT_WORDS.items():
        rows = [row for row in balance.under_represented if row.split == split]
        if rows:
            named = [f"{classes[row.label]} ({row.images:,})" for row in rows]
            parts.append(f"in the {word} split (mean {rows[0].mean:,.1f}) {join_some(named)}")
    total = len({row.label for row in balance.under_represented})
    return (f"{count(total, 'class')} {'is' if total == 1 else 'are'} under-represented "
            f"({rule}): {join(parts)}.")  # fmt: skip


def class_balance_view(metrics: Metrics, read: FigureReader) -> ClassBalanceView | None:
    """Return the class balance section, None for a run written before it existed."""
    balance = metrics.class_balance
    if balance is None:
        return None
    classes = metrics.dataset.classes
    order = " (classes ordered by their training share)" if len(classes) > MANY_CLASSES else ""
    alt, caption = FIGURES["class_balance"].describe(order=order)
    return ClassBalanceView(figure=read(balance.figure, alt, caption),
                            sentence=balance_sentence(balance, classes))  # fmt: skip
