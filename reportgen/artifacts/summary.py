"""``summary.json``: the few numbers a CI job shows, as one typed document.

Built by :func:`reportgen.evaluate.gate.summary` from a run's metrics and
thresholds, written with :meth:`Summary.write`, read back with
:func:`parse_summary`; ``summary.md`` shows the same numbers as a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reportgen.artifacts.manifest import validation_problem
from reportgen.artifacts.noninferiority import NonInferiority
from reportgen.core.errors import RunDirError
from reportgen.core.fileio import write_json

Fraction = Annotated[float, Field(ge=0, le=1)]
DiagnosisLabel = Literal["overfitting", "underfitting", "good fit", "learning rate too high"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ModelSummary(_Contract):
    """One model's headline: test accuracy with its interval, and how training went."""

    test_accuracy: Fraction
    ci_low: Fraction
    ci_high: Fraction
    diverged: bool
    diagnosis: list[DiagnosisLabel]


class PairedSummary(_Contract):
    """The paired test of the first two models."""

    p_value: Fraction
    significant: bool
    verdict: str


class ThresholdResult(_Contract):
    """One ``MODEL.METRIC >= minimum`` check of the CI gate and its outcome."""

    key: str
    minimum: Fraction
    value: float | None  # None: the metric was not measured (a diverged model's), which fails
    passed: bool


class Summary(_Contract):
    """The whole ``summary.json``."""

    run: str
    models: dict[str, ModelSummary]
    significance: PairedSummary | None
    thresholds: list[ThresholdResult]
    # The non-inferiority gate (gate.fail_if_worse); absent when that key is not set.
    non_inferiority: NonInferiority | None = Field(default=None, exclude_if=lambda v: v is None)
    passed: bool  # every threshold held, and the candidate is not worse

    def write(self, path: Path) -> None:
        """Write ``summary.json`` atomically, keys sorted."""
        write_json(path, self.model_dump(mode="json"))


def parse_summary(data: bytes | str, *, source: str = "summary.json") -> Summary:
    """Return ``summary.json`` text as :class:`Summary`; anything else is one line naming a field.

    Raises :class:`RunDirError` naming the first field that does not fit.
    """
    try:
        return Summary.model_validate_json(data)
    except ValidationError as e:
        raise RunDirError(f"{source}: {validation_problem(e)}") from e
