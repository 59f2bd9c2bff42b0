"""The report's section on suspected label errors: its sentences, table and gallery.

Built from ``metrics.json``'s ``label_issues`` alone; the whole ranking is in
``label_issues.csv``, which the section names.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.artifacts.catalogue import FIGURES
from reportgen.artifacts.label_issues import GALLERY_IMAGES, LabelIssues
from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.metrics import Metrics
from reportgen.core.text import count, join, num, pct
from reportgen.report.page import Figure

METHOD_SENTENCE = (
    "How: a model's test predictions are out of sample, so they can question the labels by "
    "confident learning (Northcutt, Jiang & Chuang, JAIR 2021). Each class gets a threshold, "
    "the mean probability the model gives that class over the test images labelled with it; "
    "an image's confident class is its most probable class among those whose probability "
    "reaches their threshold, and the model flags the image when that class is not its label."
)
CAUTION = (
    "These are candidates for a person to look at, not confirmed errors: an image can be "
    "ambiguous, or the models can share a blind spot."
)
OFF = "Label checks are switched off for this run (report.label_issues = false)."
NO_MODEL = "No model's logits are finite, so no label was checked."


@dataclass(frozen=True)
class LabelModelRow:
    """One model's line of the table: its test errors, how many fall on suspected images."""

    model: str
    flagged: int
    errors: int
    errors_on_suspected: int
    share: float | None  # errors_on_suspected / errors; None without errors


@dataclass(frozen=True)
class LabelIssuesView:
    """What the section shows: sentences, the per-model table and the gallery (if any)."""

    paragraphs: tuple[str, ...]  # what was found, before the table
    method: tuple[str, ...] = ()  # how, after it
    rows: tuple[LabelModelRow, ...] = ()
    figure: Figure | None = None
    table: str = RUN_FILES.label_issues.as_posix()


def rule_sentence(models: list[str]) -> str:
    """Return how the models' flags are combined into one ranking, as a sentence."""
    if len(models) == 1:
        return (
            f"An image is suspected when the {models[0]} model flags it; the lower its margin "
            "(its probability of the label minus its largest probability of another class), "
            "the earlier it ranks, ties by test position."
        )
    every = "both models" if len(models) == 2 else f"all {len(models)} models"
    return (
        "An image is suspected when any model flags it. Images "
        f"{every} flag rank first, as independent doubts are stronger evidence than one, "
        "then those fewer models flag; within each group, the lower the margin (the "
        "probability of the label minus the largest probability of another class, averaged "
        "over the models), the earlier; ties go to the lower test position."
    )


def count_sentence(found: LabelIssues, test_size: int) -> str:
    """Return how many test labels are suspected, and how many every model doubts."""
    if found.count == 0:
        return "No test label is suspected: no model's confident class differs from a label."
    share = pct(found.count / test_size) if test_size else "–"
    text = (
        f"The models doubt the labels of {count(found.count, 'test image')} ({share} of the "
        "test split)"
    )
    if len(found.models) > 1:
        every = "both models" if len(found.models) == 2 else "every model"
        text += f"; {every} flag {num(found.flagged_by_all)} of them"
    return text + "."


def errors_sentence(rows: tuple[LabelModelRow, ...]) -> str:
    """Return how many of each model's test errors fall on suspected images."""
    parts = [
        f"{num(row.errors_on_suspected)} of the {row.model} model's "
        f"{count(row.errors, 'test error')}"
        + (f" ({pct(row.share)})" if row.share is not None else "")
        for row in rows
    ]
    return (
        f"Of the models' errors, {join(parts)} fall on these images: where such a label is "
        "wrong, the error is the label's, not the model's."
    )


def label_issues_view(metrics: Metrics, figure: Figure | None) -> LabelIssuesView:
    """Return the section's content; ``figure`` is the gallery, read by the caller."""
    found = metrics.label_issues
    if found is None:
        return LabelIssuesView(paragraphs=(OFF,))
    if not found.models:
        return LabelIssuesView(paragraphs=(NO_MODEL,))
    rows = tuple(
        LabelModelRow(
            model=name, flagged=check.flagged, errors=check.errors,
            errors_on_suspected=check.errors_on_suspected,
            share=check.errors_on_suspected / check.errors if check.errors else None,
        )
        for name, check in found.models.items()
    )  # fmt: skip
    found_text = count_sentence(found, metrics.dataset.test_size)
    if found.count:
        found_text += " " + errors_sentence(rows)
    method = f"{METHOD_SENTENCE} {rule_sentence(list(found.models))}"
    if found.count:
        method += " " + CAUTION
    return LabelIssuesView(paragraphs=(found_text,), method=(method,), rows=rows, figure=figure)


def gallery_text(found: LabelIssues) -> tuple[str, str]:
    """Return the gallery's alt text and caption."""
    return FIGURES["label_issues"].describe(
        n=min(found.count, GALLERY_IMAGES), images=count(found.count, "suspected image")
    )
