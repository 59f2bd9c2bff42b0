"""Predictions on corrupted test images -> accuracy per corruption and severity, mCE, paired tests.

Every accuracy gets a percentile-bootstrap interval from the run's own
resamples (:func:`reportgen.evaluate.statistics.resample_indices`, drawn once
for all the conditions and models, so the intervals are paired).  The corruption
error follows Hendrycks & Dietterich (ICLR 2019): a model's errors summed over
the severities of a corruption, divided by the reference model's sum, and the
mean corruption error (mCE) averages that over the corruptions; the relative
CE divides the summed *losses* of accuracy (error − clean error) instead.
Between two models, each corruption's images at the middle severity get an
exact McNemar test, Holm-corrected over the corruptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reportgen.artifacts.robustness import (
    CorruptionAccuracy,
    CorruptionTest,
    ModelRobustness,
    Robustness,
    SeverityAccuracy,
)
from reportgen.config.robustness import CorruptionName, RobustnessSection
from reportgen.core import text
from reportgen.data.corruptions import CORRUPTIONS
from reportgen.evaluate import per_class, statistics
from reportgen.evaluate.corrupted import Condition

FIGURES = ("robustness", "corruptions")  # accuracy against severity; the corrupted example


@dataclass(frozen=True)
class Measured:
    """What the section is computed from: the labels and each model's predictions per condition."""

    positions: np.ndarray  # [n] test positions measured
    labels: np.ndarray  # [n] their labels
    predictions: Mapping[str, Mapping[Condition, np.ndarray]]  # model → condition → [n]


def bootstrap_matrix(correct: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Return the accuracy of each row of ``correct`` ``[k, n]`` on each resample ``[R, k]``.

    The same numbers as :func:`statistics.bootstrap_accuracies` (the same
    resampled positions, counted exactly), but as one product of how often
    each image is drawn with the correctness matrix, so that a hundred rows
    cost about what one does.
    """
    rows, n = correct.shape
    weights = correct.T.astype(np.float64)  # [n, k]
    counts = np.empty((resamples, rows), dtype=np.float64)
    for start, index in statistics.resample_indices(n, resamples=resamples, seed=seed):
        chunk = index.shape[0]
        flat = (index + n * np.arange(chunk)[:, np.newaxis]).ravel()
        drawn = np.bincount(flat, minlength=chunk * n).reshape(chunk, n)  # [chunk, n]
        counts[start : start + chunk] = drawn @ weights  # integers below 2**53: exact
    return counts / n


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def robustness(
    measured: Measured,
    *,
    settings: RobustnessSection,
    test_images: int,
    example: int,
    skipped: Mapping[str, str],
    resamples: int,
    seed: int,
    level: float = statistics.DEFAULT_LEVEL,
    alpha: float = statistics.DEFAULT_ALPHA,
) -> Robustness:
    """Return the robustness section of ``metrics.json`` from the measured predictions.

    ``skipped`` holds the models that were not measured and why; ``seed`` is
    the bootstrap's (the run's accuracy intervals use the same).
    """
    corruptions = list(settings.corruptions)
    severities = list(settings.severities)
    names = list(measured.predictions)
    keys: list[tuple[str, Condition]] = [
        (model, (name, severity))
        for model in names
        for name, severity in [(None, 0), *((c, s) for c in corruptions for s in severities)]
    ]
    correct = np.stack(
        [measured.predictions[model][cond] == measured.labels for model, cond in keys]
    ) if keys else np.zeros((0, len(measured.labels)), dtype=bool)  # fmt: skip
    samples = (bootstrap_matrix(correct, resamples=resamples, seed=seed)
               if keys else np.zeros((resamples, 0)))  # fmt: skip
    accuracy: dict[tuple[str, Condition], statistics.Interval] = {
        key: statistics.percentile_interval(samples[:, row], estimate=float(correct[row].mean()),
                                            level=level)
        for row, key in enumerate(keys)
    }  # fmt: skip
    reference = names[0] if names else None

    def errors(model: str, corruption: CorruptionName) -> tuple[float, float]:
        clean = 1.0 - accuracy[(model, (None, 0))].estimate
        summed = sum(1.0 - accuracy[(model, (corruption, s))].estimate for s in severities)
        return summed, summed - len(severities) * clean

    models: dict[str, ModelRobustness] = {}
    for model in names:
        rows = []
        for corruption in corruptions:
            own, own_loss = errors(model, corruption)
            assert reference is not None
            ref, ref_loss = errors(reference, corruption)
            rows.append(CorruptionAccuracy(
                corruption=corruption,
                severities=[
                    SeverityAccuracy(severity=s, accuracy=i.estimate, low=i.low, high=i.high)
                    for s in severities
                    for i in [accuracy[(model, (corruption, s))]]
                ],
                corruption_error=_ratio(own, ref),
                relative_corruption_error=_ratio(own_loss, ref_loss),
            ))  # fmt: skip
        models[model] = ModelRobustness(
            clean_accuracy=accuracy[(model, (None, 0))].estimate,
            corruptions=rows,
            mce=_mean([row.corruption_error for row in rows]),
            relative_mce=_mean([row.relative_corruption_error for row in rows]),
        )
    tests: list[CorruptionTest] = []
    compared = (names[0], names[1]) if len(names) >= 2 else None
    if compared is not None:
        tests = paired_tests(measured, compared, corruptions, settings.middle_severity(), alpha)
    return Robustness(
        corruptions=corruptions,
        severities=severities,
        test_images=test_images,
        images=len(measured.positions),
        example=example,
        level=level,
        resamples=resamples,
        reference=reference,
        models=models,
        skipped=dict(skipped),
        tests=tests,
        compared=compared,
        alpha=alpha,
        verdict=verdict(models, tests, compared, skipped=skipped, alpha=alpha),
        figures=list(FIGURES) if names else [],
    )


def paired_tests(
    measured: Measured,
    compared: tuple[str, str],
    corruptions: Sequence[CorruptionName],
    severity: int,
    alpha: float,
) -> list[CorruptionTest]:
    """Return McNemar's test of two models under each corruption at ``severity``, Holm-corrected."""
    first, second = (measured.predictions[m] for m in compared)
    found = [
        statistics.mcnemar(first[(c, severity)] == measured.labels,
                           second[(c, severity)] == measured.labels)
        for c in corruptions
    ]  # fmt: skip
    adjusted = per_class.holm([t.p_value for t in found]) if found else np.zeros(0)
    return [
        CorruptionTest(corruption=c, severity=severity, b=t.b, c=t.c, p_value=t.p_value,
                       p_adjusted=float(p), significant=bool(p < alpha))
        for c, t, p in zip(corruptions, found, adjusted, strict=True)
    ]  # fmt: skip


def _titles(tests: Sequence[CorruptionTest]) -> str:
    return text.join([CORRUPTIONS[t.corruption].title for t in tests])


def verdict(
    models: Mapping[str, ModelRobustness],
    tests: Sequence[CorruptionTest],
    compared: tuple[str, str] | None,
    *,
    skipped: Mapping[str, str],
    alpha: float,
) -> str:
    """Return plain sentences: which model is more robust, by mCE, and where significantly."""
    notes = " ".join(skipped.values())
    if compared is None:
        if not models:
            return notes or "No model was measured under corruption."
        only = next(iter(models))
        lead = f"Only the {only} model is measured under corruption, so nothing is compared."
        return f"{lead} {notes}".strip()
    first, second = compared
    mce = models[second].mce
    if mce is None:
        lead = (
            f"The {first} model makes no error under any corruption, so the corruption "
            f"errors of the {second} model cannot be expressed relative to it."
        )
    else:
        better = second if mce < 1 else first if mce > 1 else None
        ratio = f"mCE {text.pct(mce, 1)} of the {first} model's"
        lead = (
            f"The {better} model is more robust to these corruptions ({ratio})."
            if better is not None
            else f"The two models are equally robust to these corruptions ({ratio})."
        )
    severity = tests[0].severity
    wins = [t for t in tests if t.significant and t.c > t.b]
    losses = [t for t in tests if t.significant and t.b > t.c]
    where = f"At severity {severity} (McNemar, Holm-adjusted p < {alpha:g}), the {second} model"
    if not wins and not losses:
        detail = f"{where} is significantly better or worse under no corruption."
    else:
        parts = []
        if wins:
            parts.append(f"significantly more accurate under {_titles(wins)}")
        if losses:
            parts.append(f"significantly less accurate under {_titles(losses)}")
        detail = f"{where} is {' and '.join(parts)}."
    return " ".join(part for part in (lead, detail, notes) if part)
