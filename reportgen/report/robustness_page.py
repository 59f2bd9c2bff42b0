"""The robustness section of the run report: its sentences, table rows and figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reportgen.artifacts.catalogue import FIGURES
from reportgen.artifacts.robustness import CorruptionTest, Robustness
from reportgen.config.robustness import middle_severity
from reportgen.core import text
from reportgen.data.corruptions import CORRUPTIONS
from reportgen.report.page import Figure

# Reads figure NAME of the run with its alt text and caption.
FigureReader = Callable[[str, str, str], Figure]

MCE_NOTE = (
    "Corruption error (CE), after Hendrycks & Dietterich (2019): a model's test errors under "
    "one corruption, summed over the severities, divided by the same sum for the {reference} "
    "model, so the {reference} model's CE is 100% and a CE below 100% means fewer errors than "
    "it. The mean corruption error (mCE) is the unweighted mean of the CEs over the "
    "corruptions. McNemar's exact test compares the two models on the same corrupted images "
    "at severity {severity}, b counting those only the {first} model gets right and c those "
    "only the {second} model gets right; the p-values are Holm-adjusted over the corruptions."
)


@dataclass(frozen=True)
class CorruptionRow:
    """One corruption: its title, each model's accuracy at the middle severity and CE, the test."""

    title: str
    parameter: str  # the parameter at the middle severity, e.g. "σ = 0.18", "±30°"
    accuracy: list[float]  # per model, at the middle severity
    corruption_error: list[float | None]  # per model after the reference (whose CE is 100%)
    test: CorruptionTest | None


@dataclass(frozen=True)
class RobustnessView:
    """What the robustness section displays."""

    lead: str  # what was measured, on how many images
    verdict: str
    note: str  # how the CE is normalised and the tests made
    models: list[str]
    relative: list[str]  # the models whose CE the table shows: all but the reference
    severity: int  # the middle severity: the table's and the tests'
    clean: list[float]  # per model, on the same images
    mce: list[float | None]  # per model after the reference
    rows: list[CorruptionRow]
    compared: bool  # the table has McNemar columns
    figures: list[Figure]


def lead_sentence(found: Robustness) -> str:
    """Return what was measured: how many corruptions, severities and test images."""
    severities = found.severities
    span = (f"severities {severities[0]}–{severities[-1]}" if len(severities) > 1
            and severities == list(range(severities[0], severities[-1] + 1))
            else f"severit{'y' if len(severities) == 1 else 'ies'} "
            f"{text.join([str(s) for s in severities])}")  # fmt: skip
    images = (
        f"a subsample of {found.images:,} of the {found.test_images:,} test images, drawn by "
        "the run's seed (report.robustness.images: by default 1,000, fewer for images over "
        "28 × 28 pixels)"
        if found.images < found.test_images
        else f"all {found.test_images:,} test images"
    )
    return (
        f"Each model with a network classified {images} under "
        f"{text.count(len(found.corruptions), 'corruption')} at {span}; each image's noise, "
        "direction or sign comes from a seed of its own, so the corrupted images are the same "
        "for every model and every run with this seed."
    )


def robustness_view(
    found: Robustness | None, read: FigureReader, *, image_shape: tuple[int, int, int]
) -> RobustnessView | None:
    """Return the section's view of ``metrics.json``'s robustness; None when it was not measured.

    ``image_shape`` (``[C, H, W]``) turns a size relative to the image into pixels.
    """
    if found is None:
        return None
    models = list(found.models)
    severity = middle_severity(found.severities)
    position = found.severities.index(severity)
    tests = {t.corruption: t for t in found.tests}
    rows = []
    for order, name in enumerate(found.corruptions):
        corruption = CORRUPTIONS[name]
        per_model = [found.models[m].corruptions[order] for m in models]
        rows.append(CorruptionRow(
            title=corruption.title,
            parameter=corruption.setting(severity, min(image_shape[1:])),
            accuracy=[row.severities[position].accuracy for row in per_model],
            corruption_error=[row.corruption_error for row in per_model[1:]],
            test=tests.get(name),
        ))  # fmt: skip
    figures = []
    images = text.count(found.images, "test image")
    for figure in found.figures:
        alt, caption = FIGURES[figure].describe(
            images=images, level=text.level(found.level), index=f"{found.example:,}",
            severity=severity,
        )  # fmt: skip
        figures.append(read(figure, alt, caption))
    first, second = found.compared or ("first", "second")
    return RobustnessView(
        lead=lead_sentence(found),
        verdict=found.verdict,
        note=MCE_NOTE.format(reference=found.reference, severity=severity, first=first,
                             second=second) if found.compared else "",
        models=models,
        relative=models[1:],
        severity=severity,
        clean=[found.models[m].clean_accuracy for m in models],
        mce=[found.models[m].mce for m in models[1:]],
        rows=rows,
        compared=found.compared is not None,
        figures=figures,
    )  # fmt: skip
