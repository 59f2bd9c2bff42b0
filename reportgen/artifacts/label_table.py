"""``label_issues.csv``: one row per suspected label error, ranked, with each model's evidence.

The leading columns (:data:`LEADING_COLUMNS`) are the same for every run; then
each model, in training order, has four: ``<model>_p_label`` (its probability
of the given label), ``<model>_p_suggested`` (of the suggested class),
``<model>_margin`` (p_label − the largest other probability) and
``<model>_flagged`` (whether its confident class differs from the label).
Probabilities and margins are rounded to six decimals, as ``predictions.csv``'s.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.manifest import Manifest, read_artifact, validation_problem
from reportgen.core.errors import RunDirError
from reportgen.core.text import first_few

DECIMALS = 6


class ModelEvidence(BaseModel):
    """One model's evidence about one suspected image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p_label: float = Field(ge=0, le=1, description="the model's probability of the given label")
    p_suggested: float = Field(ge=0, le=1, description="… of the suggested class")
    margin: float = Field(ge=-1, le=1, description="p_label − the largest other probability")
    flagged: bool = Field(description="the model's confident class is not the label")


class LabelIssueRow(BaseModel):
    """One row of ``label_issues.csv``: a suspected image, its rank and the models' evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(ge=1, description="1 for the strongest evidence")
    index: int = Field(ge=0, description="position in the test split")
    file: str = Field(description="the image's file in the test folder; empty for IDX data")
    label: int = Field(ge=0, description="the given label, by index")
    label_name: str = Field(description="… by name")
    suggested: int = Field(ge=0, description="the class the models suggest instead, by index")
    suggested_name: str = Field(description="… by name")
    flagged_by: int = Field(ge=1, description="how many models flag the image")
    evidence: dict[str, ModelEvidence] = Field(description="model name → its evidence")


LEADING_COLUMNS = tuple(name for name in LabelIssueRow.model_fields if name != "evidence")
EVIDENCE_COLUMNS = tuple(ModelEvidence.model_fields)


def evidence_columns(models: Sequence[str]) -> list[str]:
    """Return the evidence columns of ``models``: ``baseline_p_label``, …, in order."""
    return [f"{model}_{column}" for model in models for column in EVIDENCE_COLUMNS]


def label_issues_frame(rows: Sequence[LabelIssueRow], models: Sequence[str]) -> pd.DataFrame:
    """Return ``label_issues.csv``'s table: one row per suspected image, by rank."""
    records = []
    for row in rows:
        record: dict[str, object] = {column: getattr(row, column) for column in LEADING_COLUMNS}
        for model in models:
            for column, value in row.evidence[model].model_dump().items():
                record[f"{model}_{column}"] = value
        records.append(record)
    return pd.DataFrame(records, columns=[*LEADING_COLUMNS, *evidence_columns(models)])


def read_label_issues(root: Path, manifest: Manifest, models: Sequence[str]) -> list[LabelIssueRow]:
    """Return a run's checked ``label_issues.csv``: listed, unchanged, every row validated.

    ``models`` are the models checked (``metrics.json``'s ``label_issues.models``).
    """
    rel = RUN_FILES.label_issues.as_posix()
    data = read_artifact(root, rel, manifest)
    text_columns = ("file", "label_name", "suggested_name")
    try:
        frame = pd.read_csv(
            io.BytesIO(data), dtype={c: str for c in text_columns},
            keep_default_na=False,
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError) as e:
        raise RunDirError(f"{root / rel}: unreadable CSV: {e}") from e
    expected = [*LEADING_COLUMNS, *evidence_columns(models)]
    missing = [column for column in expected if column not in frame.columns]
    if missing:
        raise RunDirError(f"{root / rel}: lacks column(s) {first_few(missing)}")
    rows = []
    for line, record in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        values = {column: record[column] for column in LEADING_COLUMNS}
        evidence = {
            model: {column: record[f"{model}_{column}"] for column in EVIDENCE_COLUMNS}
            for model in models
        }
        try:
            rows.append(LabelIssueRow.model_validate({**values, "evidence": evidence}))
        except ValidationError as e:
            raise RunDirError(f"{root / rel}: line {line}: {validation_problem(e)}") from e
    return rows
