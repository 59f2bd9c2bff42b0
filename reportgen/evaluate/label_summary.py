"""Suspected label errors -> ``metrics.json``'s ``label_issues`` and ``label_issues.csv``'s rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reportgen.artifacts.catalogue import figure_name
from reportgen.artifacts.label_issues import FIRST_LISTED, LabelIssues, ModelLabelCheck
from reportgen.artifacts.label_table import DECIMALS, LabelIssueRow, ModelEvidence
from reportgen.evaluate.label_issues import SuspectedLabels, errors_on, suspected_labels


@dataclass(frozen=True)
class LabelFindings:
    """What the run found about its test labels: the metrics part and the table."""

    metrics: LabelIssues
    rows: list[LabelIssueRow]


def _rounded(value: float) -> float:
    return round(float(value), DECIMALS) + 0.0  # + 0.0: no "-0.0" in the table


def issue_rows(
    found: SuspectedLabels,
    probabilities: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    classes: Sequence[str],
    files: Sequence[str] = (),
) -> list[LabelIssueRow]:
    """Return one row per suspected image, by rank, with each model's evidence."""
    rows = []
    for rank, (index, suggested, flagged_by) in enumerate(
        zip(found.order, found.suggested, found.flagged_by, strict=True), start=1
    ):
        label = int(labels[index])
        evidence = {
            name: ModelEvidence(
                p_label=_rounded(proba[index, label]),
                p_suggested=_rounded(proba[index, suggested]),
                margin=_rounded(found.checks[name].margin[index]),
                flagged=bool(found.checks[name].flagged[index]),
            )
            for name, proba in probabilities.items()
        }
        rows.append(
            LabelIssueRow(
                rank=rank, index=int(index), file=files[index] if files else "", label=label,
                label_name=classes[label], suggested=int(suggested),
                suggested_name=classes[int(suggested)], flagged_by=int(flagged_by),
                evidence=evidence,
            )
        )  # fmt: skip
    return rows


def find_label_issues(
    probabilities: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    classes: Sequence[str],
    files: Sequence[str] = (),
) -> LabelFindings:
    """Return the suspected label errors of the test split, from the models' test probabilities.

    ``probabilities`` holds the models to use, in training order: those with
    finite logits (equal probabilities say nothing about a label).  Without
    any, nothing is suspected.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not probabilities:
        empty = LabelIssues(method="confident-joint-off-diagonal", ranking="normalized-margin",
                            combination="any-model", models={}, count=0, flagged_by_all=0,
                            first=[], figure=None)  # fmt: skip
        return LabelFindings(empty, [])
    found = suspected_labels(probabilities, labels)
    checks = {}
    for name, proba in probabilities.items():
        check = found.checks[name]
        predictions = np.asarray(proba).argmax(axis=1)
        checks[name] = ModelLabelCheck(
            thresholds=[None if np.isnan(t) else min(1.0, float(t)) for t in check.thresholds],
            flagged=int(check.flagged.sum()),
            errors=int(np.count_nonzero(predictions != labels)),
            errors_on_suspected=errors_on(found.order, labels, predictions),
        )
    count = len(found.order)
    metrics = LabelIssues(
        method="confident-joint-off-diagonal",
        ranking="normalized-margin",
        combination="any-model",
        models=checks,
        count=count,
        flagged_by_all=int(np.count_nonzero(found.flagged_by == len(probabilities))),
        first=[int(i) for i in found.order[:FIRST_LISTED]],
        figure=figure_name("label_issues") if count else None,
    )
    rows = issue_rows(found, probabilities, labels, classes=classes, files=files)
    return LabelFindings(metrics, rows)
